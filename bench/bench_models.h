// The model the engine benchmarks run: bench/configs/dsv3-small.json with random weights, EOS ids
// cleared so that every sequence runs to its length (fixed work per run). Paths are relative to the
// repository root.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/deepseek.h"
#include "model/init.h"
#include "model/model_config.h"

namespace grpo::bench {

inline const std::string kSmallConfig = "bench/configs/dsv3-small.json";

inline ModelConfig small_config() {
  ModelConfig config = ModelConfig::load(kSmallConfig);
  config.eos_token_ids.clear();
  return config;
}

// Random fp32 weights of `config` (init_weights, seed 1): the state every benchmark model loads.
inline std::map<std::string, at::Tensor> random_state(const ModelConfig& config) {
  DeepseekModel master(config);
  init_weights(master, 1);
  return master.state_dict();
}

// A model of `config` built with `options` holding `state` (FP8 options quantise it).
inline std::shared_ptr<DeepseekModel> model_with(const ModelConfig& config,
                                                 const std::map<std::string, at::Tensor>& state,
                                                 const ModelOptions& options) {
  auto m = std::make_shared<DeepseekModel>(config, options);
  m->load_state(state, "init");
  return m;
}

// A prompt of `len` token ids in [2, vocab) from an xorshift stream seeded by `seed`.
inline std::vector<int64_t> prompt_of(int64_t len, int64_t vocab, uint64_t seed) {
  std::vector<int64_t> p;
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < len; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    p.push_back(static_cast<int64_t>(2 + x % (vocab - 2)));
  }
  return p;
}

}  // namespace grpo::bench
