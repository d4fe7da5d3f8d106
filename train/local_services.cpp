#include "train/local_services.h"

#include <iostream>

#include "model/pretrained.h"
#include "reward/registry.h"
#include "reward/server.h"
#include "rollout/engine.h"
#include "rollout/model_tokenizer.h"
#include "rollout/service/server.h"
#include "tokenizer/tokenizer.h"

namespace grpo {

LocalServices::LocalServices(const RunConfig& run) {
  if (!run.reward.address.empty()) {
    reward_address_ = run.reward.address;
  } else {
    const Config reward_config =
        run.reward.config.empty() ? Config::parse("", "<reward defaults>") : Config::load(run.reward.config);
    reward::ServerOptions options = reward::server_options_from_config(reward_config);
    options.address = "127.0.0.1:0";
    reward_ = std::make_unique<reward::RewardServer>(reward::registry_from_config(reward_config), options);
    reward_->start();
    reward_address_ = reward_->address();
  }

  if (!run.rollout.addresses.empty()) {
    rollout_addresses_ = run.rollout.addresses;
    return;
  }
  // Each worker: its own model copy (FP8 quantised on load for dtype fp8) and engine. The
  // tokenizer is shared (read-only) and outlives the servers.
  tokenizer_ = std::make_unique<Tokenizer>(*load_model_tokenizer(run.model.path, run.model.tokenizer, true));
  const rollout::EngineOptions& eo = run.rollout.engine;  // max_batched_tokens >= max_seqs (rollout/options.h)
  for (int w = 0; w < run.rollout.workers; ++w) {
    ModelOptions mo = ModelOptions::for_dtype(run.rollout.dtype);
    mo.device = run.run.device;
    std::shared_ptr<const CausalLM> model = load_causal_lm(run.model.path, mo);
    auto engine = std::make_shared<rollout::Engine>(model, /*version=*/0, eo, tokenizer_.get());
    rollout::ServerOptions so;
    so.address = "127.0.0.1:0";
    rollouts_.push_back(std::make_unique<rollout::RolloutServer>(engine, so));
    rollouts_.back()->start();
    rollout_addresses_.push_back(rollouts_.back()->address());
  }
}

LocalServices::~LocalServices() {
  for (auto& r : rollouts_) r->shutdown();
  if (reward_) reward_->shutdown();
}

}  // namespace grpo
