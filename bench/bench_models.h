// The model the engine benchmarks run: bench/configs/dsv3-small.json with random weights, EOS ids
// cleared so that every sequence runs to its length (fixed work per run). Paths are relative to the
// repository root.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "model/deepseek.h"
#include "model/model_config.h"

namespace grpo::bench {

inline const std::string kSmallConfig = "bench/configs/dsv3-small.json";

inline ModelConfig small_config() {
  ModelConfig config = ModelConfig::load(kSmallConfig);
  config.eos_token_ids.clear();
  return config;
}

// A model of `config` built with `options` holding `state` (FP8 options quantise it).
inline std::shared_ptr<DeepseekModel> model_with(const ModelConfig& config,
                                                 const std::map<std::string, at::Tensor>& state,
                                                 const ModelOptions& options) {
  auto m = std::make_shared<DeepseekModel>(config, options);
  m->load_state(state, "init");
  return m;
}

}  // namespace grpo::bench
