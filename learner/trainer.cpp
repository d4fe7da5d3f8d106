#include "learner/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>

#include "common/crc32c.h"
#include "common/error.h"
#include "common/hash.h"
#include "learner/expert_parallel.h"
#include "learner/minibatch_loss.h"
#include "learner/off_policy.h"
#include "learner/train_batch.h"
#include "learner/trainer_state.h"
#include "learner/zero1.h"

namespace grpo {
namespace {

// Whether every completion of `groups` carries the rollout's routes.
bool carry_routes(const std::vector<ScoredGroup>& groups) {
  for (const ScoredGroup& g : groups)
    for (const Completion& c : g.completions)
      if (c.routes.empty()) return false;
  return !groups.empty();
}

std::map<std::string, at::Tensor> cloned_state(const CausalLM& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, t] : m.state_dict()) out[name] = t.detach().clone();
  return out;
}

uint32_t weights_checksum(const std::map<std::string, at::Tensor>& weights) {
  uint32_t crc = 0;
  for (const auto& [name, t] : weights) {
    const at::Tensor c = t.detach().cpu().contiguous();
    crc = crc32c(name, crc);
    crc = crc32c(c.data_ptr(), c.numel() * c.element_size(), crc);
  }
  return crc;
}

double imbalance(const std::vector<at::Tensor>& loads) {
  double worst = 0;
  for (const at::Tensor& l : loads) {
    if (!l.defined()) continue;
    const at::Tensor d = l.to(at::kDouble);
    const double mean = d.mean().item<double>();
    if (mean > 0) worst = std::max(worst, d.max().item<double>() / mean);
  }
  return worst;
}

// Under expert parallelism, rank `rank`'s contiguous block of `rows` ([n] -> [n·(r+1)/W - n·r/W]).
at::Tensor rank_rows(const at::Tensor& rows, int rank, int world) {
  const int64_t n = rows.size(0), begin = n * rank / world, end = n * (rank + 1) / world;
  return rows.narrow(0, begin, end - begin);
}

// How this rank's block of `rows` fits the whole under expert parallelism (train_batch.h RankPart).
RankPart rank_part(const TrainBatch& batch, const at::Tensor& rows, int world, int64_t rows_per_forward,
                   LossAggregation mode) {
  RankPart part;
  part.passes = forward_passes((rows.size(0) + world - 1) / world, rows_per_forward);
  part.whole = loss_normaliser(batch.select(rows), mode);
  return part;
}

// The log-probs of every row of `batch` ([B, T-1]): in one process directly; under expert
// parallelism each rank computes its block of rows and the ranks all-gather them.
// With `routes` (one process only): also the routers' own choice (completion_logprobs).
at::Tensor batch_logprobs(const CausalLM& model, const TrainBatch& batch, int64_t rows_per_forward,
                          const rollout::SamplingParams& sampling, Distributed* dist, bool pack,
                          at::Tensor* routes = nullptr) {
  if (!dist) return completion_logprobs(model, batch, rows_per_forward, sampling, nullptr, routes, pack);
  const int world = dist->size();
  const int64_t n = batch.rows(), width = batch.mask.size(1), most = (n + world - 1) / world;
  const at::Tensor all = at::arange(n, at::kLong);
  RankPart part;  // passes only: no loss here
  part.passes = forward_passes(most, rows_per_forward);
  const at::Tensor mine = completion_logprobs(model, batch.select(rank_rows(all, dist->rank(), world)),
                                              rows_per_forward, sampling, &part, nullptr, pack);  // [n_r, T_r-1]
  at::Tensor padded = at::zeros({most, width}, batch.mask.options());                             // [most, T-1]
  padded.narrow(0, 0, mine.size(0)).narrow(1, 0, mine.size(1)).copy_(mine);
  const at::Tensor gathered = dist->all_gather(padded);  // [W, most·(T-1)]
  std::vector<at::Tensor> blocks;
  blocks.reserve(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r)
    blocks.push_back(gathered[r].view({most, width}).narrow(0, 0, rank_rows(all, r, world).size(0)));
  return at::cat(blocks);
}

// Under expert parallelism, one mini-batch's statistics over all ranks: the loss terms summed
// (each rank's are its share of the whole), the token means re-weighted by the ranks' tokens.
void all_reduce_stats(Distributed& dist, MiniBatchStats& m) {
  at::Tensor v = at::tensor({m.loss, m.policy_loss, m.tokens, m.kl * m.tokens, m.entropy * m.tokens,
                             m.clip_fraction * m.tokens, m.dual_clip_fraction * m.tokens, m.approx_kl * m.tokens},
                            at::kDouble);
  dist.all_reduce_sum(v);
  const auto a = v.accessor<double, 1>();
  const double tokens = std::max(1.0, a[2]);
  m.loss = a[0];
  m.policy_loss = a[1];
  m.tokens = a[2];
  m.kl = a[3] / tokens;
  m.entropy = a[4] / tokens;
  m.clip_fraction = a[5] / tokens;
  m.dual_clip_fraction = a[6] / tokens;
  m.approx_kl = a[7] / tokens;
  all_reduce_loads(dist, m.expert_load);
}

// freeze_router: the routers (`...mlp.gate.weight`) get no update; AdamW skips a parameter
// without a gradient (weight decay included).
void drop_router_grads(CausalLM& policy) {
  static const std::string router = "mlp.gate.weight";
  for (auto& [name, t] : policy.named_trainable())
    if (name.size() >= router.size() && name.compare(name.size() - router.size(), router.size(), router) == 0)
      t.mutable_grad() = at::Tensor();
}

}  // namespace

std::map<std::string, double> TrainStats::as_map() const {
  return {{"loss", loss},
          {"policy_loss", policy_loss},
          {"kl", kl},
          {"entropy", entropy},
          {"clip_fraction", clip_fraction},
          {"dual_clip_fraction", dual_clip_fraction},
          {"approx_kl", approx_kl},
          {"grad_norm_mean", grad_norm_mean},
          {"grad_norm_max", grad_norm_max},
          {"skipped_steps", skipped_steps},
          {"lr", lr},
          {"reward_mean", reward_mean},
          {"advantage_abs_mean", advantage_abs_mean},
          {"tokens", tokens},
          {"sequences", sequences},
          {"optimizer_steps", optimizer_steps},
          {"seconds", seconds},
          {"expert_load_imbalance", expert_load_imbalance}};
}

// ---- the trainer ---------------------------------------------------------------------------

Trainer::Trainer(std::shared_ptr<CausalLM> policy, TrainerOptions options, Distributed* dist)
    : policy_(std::move(policy)), options_(std::move(options)), dist_(dist), state_(std::make_unique<State>()) {
  if (!policy_) throw InputError("Trainer: no policy model");
  validate_trainer_options(options_, [](const std::string& key) { return "trainer option '" + key + "'"; });
  const ModelOptions want = options_.model_options(), have = policy_->options();
  if (have.fp8 || have.compute_dtype != want.compute_dtype || have.param_dtype != want.param_dtype)
    throw InputError(std::string("Trainer: trainer.dtype '") + options_.dtype +
                     "' needs the policy built with compute " + c10::toString(want.compute_dtype) + " / parameters " +
                     c10::toString(want.param_dtype) + ", got compute " + c10::toString(have.compute_dtype) +
                     " / parameters " + c10::toString(have.param_dtype) + (have.fp8 ? " (FP8)" : "") +
                     "; load it with TrainerOptions::model_options()");
  if (dist_) {
    const int rank = dist_->rank(), world = dist_->size();
    if (have.expert_rank != rank || have.expert_ranks != world)
      throw InputError("Trainer: rank " + std::to_string(rank) + " of " + std::to_string(world) +
                       " needs the policy's expert shard " + std::to_string(rank) + " of " + std::to_string(world) +
                       " (ModelOptions expert_rank / expert_ranks), got shard " + std::to_string(have.expert_rank) +
                       " of " + std::to_string(have.expert_ranks));
    expert_sharded(*policy_).set_routed_experts(std::make_shared<ExpertParallel>(*dist_));
  } else if (options_.zero1) {
    throw InputError(
        "Trainer: trainer.zero1 shards the optimizer state over expert-parallel ranks; "
        "run with `grpo learner --job grpo` or leave it out");
  }
  const LmSpec spec = policy_->spec();
  if (options_.routing_replay != RoutingReplay::kOff && spec.moe_layers == 0)
    throw InputError("Trainer: trainer.routing_replay needs a MoE model; " + spec.model_type + " has no MoE layers");
  if (options_.routing_replay == RoutingReplay::kOldPolicy && dist_)
    throw InputError("Trainer: trainer.routing_replay: old_policy is not supported with expert parallelism yet");
  if (spec.moe_layers > 0 && options_.bias_update_gamma > 0)
    std::cerr << "warning: trainer.bias_update_gamma " << options_.bias_update_gamma << " > 0: "
              << (options_.freeze_router ? "freeze_router keeps the correction biases fixed anyway"
                  : options_.routing_replay != RoutingReplay::kOff
                      ? "the correction biases move the routers away from the replayed routes"
                      : "the correction biases move the routing between the rollouts' weights and the trainer's")
              << "; RL usually runs with bias_update_gamma: 0 (the default)\n";
  policy_->set_requires_grad(true);
  state_->bind_optimizer(*policy_, options_, dist_);
  if (options_.kl_coef > 0) {
    auto initial = cloned_state(*policy_);
    state_->initial_checksum = weights_checksum(initial);
    state_->reference = make_reference(initial, "reference (initial policy)");
  }
}

std::shared_ptr<CausalLM> Trainer::make_reference(const std::map<std::string, at::Tensor>& weights,
                                                  const std::string& source) const {
  std::shared_ptr<CausalLM> m = policy_->make_empty(policy_->options());
  m->load_state(weights, source);
  if (dist_) expert_sharded(*m).set_routed_experts(std::make_shared<ExpertParallel>(*dist_));
  return m;
}

Trainer::~Trainer() = default;

TrainStats Trainer::step(const std::vector<ScoredGroup>& groups) {
  const auto start = std::chrono::steady_clock::now();
  if (options_.threads > 0) at::set_num_threads(static_cast<int>(options_.threads));
  const LmSpec cfg = policy_->spec();
  const at::ScalarType value_dtype = options_.model_options().compute_dtype == at::kDouble ? at::kDouble : at::kFloat;
  const int64_t pad_id = cfg.eos_token_ids.empty() ? 0 : cfg.eos_token_ids.front();
  TrainBatch batch = make_train_batch(groups, {cfg.vocab_size, cfg.max_position_embeddings, options_.overlong_filter},
                                      pad_id, value_dtype);

  if (options_.advantage == AdvantageEstimator::kRloo && batch.group_size < 2)
    throw InputError("trainer: advantage rloo needs groups of at least 2 completions, got " +
                     std::to_string(batch.group_size));
  // The rollout's routes: replayed by every forward of the step (R3), and whenever the groups carry
  // them compared with the trainer's own routing (the expert-disagreement metric).
  at::Tensor rollout_routes;  // [B, T-1, L_moe, k]
  if (options_.routing_replay == RoutingReplay::kRollout || (cfg.moe_layers > 0 && carry_routes(groups)))
    rollout_routes =
        replay_routes(groups, {cfg.moe_layers, cfg.num_experts_per_tok, cfg.n_routed_experts}, batch.mask.size(1));
  if (options_.routing_replay == RoutingReplay::kRollout) batch.routes = rollout_routes;
  TrainStats st;
  st.tokens = batch.tokens();
  st.sequences = double(batch.rows());
  const double tokens = std::max(1.0, st.tokens);

  // Old (and reference) log-probs under the weights as they are now. R2: the later forwards
  // (reference, training) replay the routes of this one.
  at::Tensor own_routes;  // the trainer's routers' own choice in this pass (one process)
  const bool r2 = options_.routing_replay == RoutingReplay::kOldPolicy;
  batch.old_logp = batch_logprobs(*policy_, batch, options_.micro_batch_size, options_.sampling(), dist_,
                                  options_.pack_sequences, r2 || rollout_routes.defined() ? &own_routes : nullptr);
  if (r2) batch.routes = own_routes;
  at::Tensor rewards = batch.rewards;  // [B] float64
  const bool kl_in_loss = state_->reference && !options_.kl_in_reward;
  if (state_->reference) {
    batch.ref_logp = batch_logprobs(*state_->reference, batch, options_.micro_batch_size, options_.sampling(), dist_,
                                    options_.pack_sequences);
    if (options_.kl_in_reward) {
      at::Tensor kl = kl_penalty(batch.old_logp, batch.ref_logp, options_.kl_estimator) * batch.mask;  // [B, T-1]
      st.kl = kl.sum().item<double>() / tokens;
      rewards = rewards - options_.kl_coef * kl.sum(1).to(at::kDouble);
    }
  }
  st.reward_mean = rewards.mean().item<double>();
  batch.advantages = group_advantages(rewards, batch.group_size, options_.advantage).to(value_dtype);
  st.advantage_abs_mean = batch.advantages.abs().mean().item<double>();
  st.mismatch = measure_mismatch(batch.old_logp, batch.rollout_logp, batch.advantages, batch.mask, options_.off_policy,
                                 options_.policy.tis_cap);
  if (rollout_routes.defined() && own_routes.defined())
    for (const auto& [name, value] : expert_disagreement(own_routes, rollout_routes, batch.mask))
      st.mismatch[name] = value;

  LossSpec spec;
  spec.policy = options_.policy;
  spec.off_policy = options_.off_policy;
  spec.kl_coef = kl_in_loss ? options_.kl_coef : 0.0;
  spec.kl_estimator = options_.kl_estimator;
  spec.entropy_coef = options_.entropy_coef;
  spec.sampling = options_.sampling();
  LrSchedule schedule{options_.lr, options_.warmup_steps, options_.total_steps, options_.lr_decay,
                      options_.min_lr_ratio};
  st.lr = lr_at(schedule, steps_done_);

  const int64_t n = batch.rows(), chunks = std::min(options_.mini_batches, n);
  std::vector<at::Tensor> step_loads;
  double seen_tokens = 0;
  for (int64_t epoch = 0; epoch < options_.ppo_epochs; ++epoch) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(splitmix64(
        options_.seed ^ splitmix64(static_cast<uint64_t>(steps_done_) * 1000003u + static_cast<uint64_t>(epoch))));
    const at::Tensor order = at::randperm(n, gen, at::TensorOptions().dtype(at::kLong));  // [B]
    for (const at::Tensor& rows : at::tensor_split(order, chunks)) {
      state_->zero_grad();
      MiniBatchStats m;
      double norm = 0;
      if (dist_) {  // this rank's block of the mini-batch; gradients and statistics summed over ranks
        const RankPart part = rank_part(batch, rows, dist_->size(), options_.micro_batch_size, spec.policy.aggregation);
        const TrainBatch mine = batch.select(rank_rows(rows, dist_->rank(), dist_->size()));
        m = accumulate_minibatch(*policy_, mine, spec, options_.micro_batch_size, options_.pack_sequences, &part);
        all_reduce_stats(*dist_, m);
        all_reduce_gradients(*dist_, state_->sharded);
        if (options_.freeze_router) drop_router_grads(*policy_);
        norm = clip_grad_norm(*dist_, state_->sharded, options_.max_grad_norm);
      } else {
        m = accumulate_minibatch(*policy_, batch.select(rows), spec, options_.micro_batch_size,
                                 options_.pack_sequences);
        if (options_.freeze_router) drop_router_grads(*policy_);
        norm = clip_grad_norm(state_->params, options_.max_grad_norm);
      }
      if (std::isfinite(norm)) {
        state_->optimizer->step(st.lr);
        if (state_->zero1) state_->zero1->all_gather();  // the other ranks' ranges of the replicated parameters
      } else {
        st.skipped_steps += 1;  // a non-finite gradient: no update from this mini-batch
      }
      state_->zero_grad();
      if (options_.bias_update_gamma > 0 && !options_.freeze_router && !m.expert_load.empty())
        policy_->update_correction_biases(m.expert_load, options_.bias_update_gamma);
      add_expert_loads(step_loads, m.expert_load);

      st.optimizer_steps += 1;
      st.loss += m.loss;
      st.policy_loss += m.policy_loss;
      st.grad_norm_mean += norm;
      st.grad_norm_max = std::max(st.grad_norm_max, norm);
      st.entropy += m.entropy * m.tokens;
      st.clip_fraction += m.clip_fraction * m.tokens;
      st.dual_clip_fraction += m.dual_clip_fraction * m.tokens;
      st.approx_kl += m.approx_kl * m.tokens;
      if (kl_in_loss) st.kl += m.kl * m.tokens;
      seen_tokens += m.tokens;
    }
  }
  const double steps = std::max(1.0, st.optimizer_steps), seen = std::max(1.0, seen_tokens);
  for (double* v : {&st.loss, &st.policy_loss, &st.grad_norm_mean}) *v /= steps;
  for (double* v : {&st.entropy, &st.clip_fraction, &st.dual_clip_fraction, &st.approx_kl}) *v /= seen;
  if (kl_in_loss) st.kl /= seen;
  st.expert_load_imbalance = imbalance(step_loads);

  end_step();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return st;
}

void Trainer::skip_step() { end_step(); }

void Trainer::end_step() {
  ++steps_done_;
  if (state_->reference && options_.ref_refresh_steps > 0 && steps_done_ % options_.ref_refresh_steps == 0) {
    state_->reference->load_state(cloned_state(*policy_), "reference refresh (policy)");
    state_->reference_is_initial = false;
  }
}

}  // namespace grpo
