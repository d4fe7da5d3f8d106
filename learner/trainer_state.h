// Internal to the trainer (trainer.cpp, trainer_checkpoint.cpp): what Trainer::State holds, the
// optimizer and the reference model, and which parameters are trained. Not a public header.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "learner/expert_parallel.h"
#include "learner/optim.h"
#include "learner/trainer.h"
#include "learner/zero1.h"

namespace grpo {

struct Trainer::State {
  std::unique_ptr<AdamW> optimizer;
  std::vector<at::Tensor> params;       // the optimizer's tensors, for clipping
  ShardedParameters sharded;            // the same, replicated / experts (expert parallel)
  std::unique_ptr<Zero1> zero1;         // with options.zero1: this rank's range of the replicated ones
  std::shared_ptr<CausalLM> reference;  // null when kl_coef == 0
  bool reference_is_initial = true;
  uint32_t initial_checksum = 0;  // of the initial policy (the reference's origin)

  // Drops every trainable parameter's gradient (AdamW's zero_grad reaches only its slices, a part
  // of the replicated parameters under ZeRO-1).
  void zero_grad() {
    for (at::Tensor& p : params) p.mutable_grad() = at::Tensor();
  }

  void bind_optimizer(CausalLM& policy, const TrainerOptions& o, Distributed* dist) {
    auto named = policy.named_trainable();
    params.clear();
    for (auto& [name, t] : named) params.push_back(t);
    sharded = sharded_parameters(policy);
    const AdamWOptions adam{o.adam_beta1, o.adam_beta2, o.adam_eps, o.weight_decay};
    if (!o.zero1) {
      optimizer = std::make_unique<AdamW>(std::move(named), adam);
      return;
    }
    zero1 = std::make_unique<Zero1>(*dist, sharded.replicated);
    std::vector<ParamSlice> owned = whole_slices(sharded.experts);
    owned.insert(owned.begin(), zero1->owned().begin(), zero1->owned().end());
    optimizer = std::make_unique<AdamW>(std::move(owned), adam);
  }
};

}  // namespace grpo
