#include "learner/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/crc32c.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/hash.h"
#include "learner/expert_parallel.h"
#include "learner/minibatch_loss.h"
#include "learner/sharded_checkpoint.h"
#include "learner/train_batch.h"
#include "learner/zero1.h"
#include "model/checkpoint.h"
#include "model/pretrained.h"
#include "model/safetensors.h"

namespace fs = std::filesystem;

namespace grpo {
namespace {

constexpr int kStateFormat = 1;
constexpr const char* kTrainerDir = "trainer";
constexpr const char* kStateFile = "state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kReferenceFile = "reference.safetensors";
constexpr const char* kReferencePrefix = "reference/";  // expert-parallel: reference tensors in the rank's state file

bool is_bias_buffer(const std::string& name) {
  static const std::string suffix = "e_score_correction_bias";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Checks `o`; `key` names an option in the error ("run.yaml: key 'trainer.lr'" or "trainer option 'lr'").
void validate(const TrainerOptions& o, const std::function<std::string(const std::string&)>& key) {
  auto require = [&](bool ok, const std::string& name, const std::string& what) {
    if (!ok) throw InputError(key(name) + ": " + what);
  };
  require(o.lr >= 0 && std::isfinite(o.lr), "lr", "expected a finite number >= 0");
  require(o.warmup_steps >= 0, "warmup_steps", "expected >= 0");
  require(o.total_steps >= 0, "total_steps", "expected >= 0");
  require(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1, "min_lr_ratio", "expected a number in [0, 1]");
  require(o.adam_beta1 >= 0 && o.adam_beta1 < 1, "adam_beta1", "expected a number in [0, 1)");
  require(o.adam_beta2 >= 0 && o.adam_beta2 < 1, "adam_beta2", "expected a number in [0, 1)");
  require(o.adam_eps > 0, "adam_eps", "expected > 0");
  require(o.weight_decay >= 0, "weight_decay", "expected >= 0");
  require(o.ppo_epochs >= 1, "ppo_epochs", "expected >= 1");
  require(o.mini_batches >= 1, "mini_batches", "expected >= 1");
  require(o.micro_batch_size >= 1, "micro_batch_size", "expected >= 1");
  require(o.policy.clip_low >= 0 && o.policy.clip_low < 1, "clip_low", "expected a number in [0, 1)");
  require(o.policy.clip_high >= 0, "clip_high", "expected >= 0");
  require(o.policy.dual_clip_c <= 0 || o.policy.dual_clip_c > 1, "dual_clip", "expected > 1 (or <= 0 to disable)");
  require(o.policy.tis_cap >= 0, "tis_cap", "expected >= 0 (0 disables truncated importance sampling)");
  require(o.policy.aggregation != LossAggregation::kSeqMeanTokenSumNorm || o.policy.norm_length > 0, "norm_length",
          "seq-mean-token-sum-norm needs norm_length > 0 (e.g. the maximum completion length)");
  require(o.kl_coef >= 0, "kl_coef", "expected >= 0");
  require(o.temperature > 0 && std::isfinite(o.temperature), "temperature", "expected a finite number > 0");
  require(o.ref_refresh_steps >= 0, "ref_refresh_steps", "expected >= 0");
  require(o.bias_update_gamma >= 0, "bias_update_gamma", "expected >= 0");
  require(o.threads >= 0, "threads", "expected >= 0");
  try {
    o.model_options();
  } catch (const InputError& e) {
    throw InputError(key("dtype") + ": " + e.what());
  }
}

std::map<std::string, at::Tensor> cloned_state(const DeepseekModel& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, t] : m.state_dict()) out[name] = t.detach().clone();
  return out;
}

uint32_t weights_checksum(const std::map<std::string, at::Tensor>& weights) {
  uint32_t crc = 0;
  for (const auto& [name, t] : weights) {
    const at::Tensor c = t.detach().contiguous();
    crc = crc32c(name, crc);
    crc = crc32c(c.data_ptr(), c.numel() * c.element_size(), crc);
  }
  return crc;
}

std::vector<std::pair<std::string, at::Tensor>> named_trainable(DeepseekModel& m) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& [name, t] : m.named_parameters())
    if (!is_bias_buffer(name)) out.emplace_back(name, *t);
  return out;
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
at::Tensor batch_logprobs(const DeepseekModel& model, const TrainBatch& batch, int64_t rows_per_forward,
                          double temperature, Distributed* dist) {
  if (!dist) return completion_logprobs(model, batch, rows_per_forward, temperature);
  const int world = dist->size();
  const int64_t n = batch.rows(), width = batch.mask.size(1), most = (n + world - 1) / world;
  const at::Tensor all = at::arange(n, at::kLong);
  RankPart part;  // passes only: no loss here
  part.passes = forward_passes(most, rows_per_forward);
  const at::Tensor mine = completion_logprobs(model, batch.select(rank_rows(all, dist->rank(), world)),
                                              rows_per_forward, temperature, &part);  // [n_r, T_r-1]
  at::Tensor padded = at::zeros({most, width}, batch.mask.options());                 // [most, T-1]
  padded.narrow(0, 0, mine.size(0)).narrow(1, 0, mine.size(1)).copy_(mine);
  const at::Tensor gathered = dist->all_gather(padded);  // [W, most·(T-1)]
  std::vector<at::Tensor> blocks;
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

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw InputError("checkpoint '" + path.string() + "': cannot read the file");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InputError("checkpoint '" + path.string() + "': not valid JSON: " + e.what());
  }
}

template <class T>
T json_field(const nlohmann::json& j, const std::string& key, const fs::path& path) {
  if (!j.is_object() || !j.contains(key))
    throw InputError("checkpoint '" + path.string() + "': no entry '" + key + "'");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw InputError("checkpoint '" + path.string() + "': entry '" + key + "' has the wrong type");
  }
}

}  // namespace

// ---- options -------------------------------------------------------------------------------

ModelOptions TrainerOptions::model_options() const {
  ModelOptions m;
  if (dtype == "fp32" || dtype == "float32") {
    m.compute_dtype = m.param_dtype = at::kFloat;
  } else if (dtype == "bf16" || dtype == "bfloat16") {
    m.compute_dtype = at::kBFloat16;  // fp32 master weights
    m.param_dtype = at::kFloat;
  } else if (dtype == "fp64" || dtype == "float64") {
    m.compute_dtype = m.param_dtype = at::kDouble;
  } else {
    throw InputError("training dtype '" + dtype + "': expected fp32, bf16 or fp64");
  }
  return m;
}

TrainerOptions trainer_options_from_config(const Config& c) {
  c.require_known({"lr",
                   "warmup_steps",
                   "total_steps",
                   "lr_decay",
                   "min_lr_ratio",
                   "adam_beta1",
                   "adam_beta2",
                   "adam_eps",
                   "weight_decay",
                   "max_grad_norm",
                   "ppo_epochs",
                   "mini_batches",
                   "micro_batch_size",
                   "advantage",
                   "clip_low",
                   "clip_high",
                   "dual_clip",
                   "loss_agg",
                   "norm_length",
                   "tis_cap",
                   "kl_coef",
                   "kl_estimator",
                   "kl_in_reward",
                   "ref_refresh_steps",
                   "entropy_coef",
                   "temperature",
                   "bias_update_gamma",
                   "dtype",
                   "threads",
                   "seed",
                   "overlong_filter",
                   "zero1"});
  TrainerOptions o;
  // An enum spelled wrong: the parser's message, prefixed by where the key is.
  auto parse = [&](const std::string& key, const std::string& fallback, auto parser) {
    const std::string value = c.get<std::string>(key, fallback);
    try {
      return parser(value);
    } catch (const InputError& e) {
      throw InputError(c.where(key) + ": " + e.what());
    }
  };
  o.lr = c.get<double>("lr", o.lr);
  o.warmup_steps = c.get<int64_t>("warmup_steps", o.warmup_steps);
  o.total_steps = c.get<int64_t>("total_steps", o.total_steps);
  o.lr_decay = parse("lr_decay", "constant", parse_lr_decay);
  o.min_lr_ratio = c.get<double>("min_lr_ratio", o.min_lr_ratio);
  o.adam_beta1 = c.get<double>("adam_beta1", o.adam_beta1);
  o.adam_beta2 = c.get<double>("adam_beta2", o.adam_beta2);
  o.adam_eps = c.get<double>("adam_eps", o.adam_eps);
  o.weight_decay = c.get<double>("weight_decay", o.weight_decay);
  o.max_grad_norm = c.get<double>("max_grad_norm", o.max_grad_norm);
  o.ppo_epochs = c.get<int64_t>("ppo_epochs", o.ppo_epochs);
  o.mini_batches = c.get<int64_t>("mini_batches", o.mini_batches);
  o.micro_batch_size = c.get<int64_t>("micro_batch_size", o.micro_batch_size);
  o.advantage = parse("advantage", "grpo", parse_advantage_estimator);
  o.policy.clip_low = c.get<double>("clip_low", o.policy.clip_low);
  o.policy.clip_high = c.get<double>("clip_high", o.policy.clip_high);
  o.policy.dual_clip_c = c.get<double>("dual_clip", o.policy.dual_clip_c);
  o.policy.aggregation = parse("loss_agg", "token-mean", parse_loss_aggregation);
  o.policy.norm_length = c.get<double>("norm_length", o.policy.norm_length);
  o.policy.tis_cap = c.get<double>("tis_cap", o.policy.tis_cap);
  o.kl_coef = c.get<double>("kl_coef", o.kl_coef);
  o.kl_estimator = parse("kl_estimator", "k3", parse_kl_estimator);
  o.kl_in_reward = c.get<bool>("kl_in_reward", o.kl_in_reward);
  o.ref_refresh_steps = c.get<int64_t>("ref_refresh_steps", o.ref_refresh_steps);
  o.entropy_coef = c.get<double>("entropy_coef", o.entropy_coef);
  o.temperature = c.get<double>("temperature", o.temperature);
  o.bias_update_gamma = c.get<double>("bias_update_gamma", o.bias_update_gamma);
  o.overlong_filter = c.get<bool>("overlong_filter", o.overlong_filter);
  o.zero1 = c.get<bool>("zero1", o.zero1);
  o.dtype = c.get<std::string>("dtype", o.dtype);
  o.threads = c.get<int64_t>("threads", o.threads);
  const int64_t seed = c.get<int64_t>("seed", static_cast<int64_t>(o.seed));
  if (seed < 0) throw InputError(c.where("seed") + ": expected >= 0");
  o.seed = static_cast<uint64_t>(seed);
  validate(o, [&](const std::string& key) { return c.where(key); });
  return o;
}

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
          {"rollout_mismatch", rollout_mismatch},
          {"reward_mean", reward_mean},
          {"advantage_abs_mean", advantage_abs_mean},
          {"tokens", tokens},
          {"sequences", sequences},
          {"optimizer_steps", optimizer_steps},
          {"seconds", seconds},
          {"expert_load_imbalance", expert_load_imbalance}};
}

// ---- the trainer ---------------------------------------------------------------------------

struct Trainer::State {
  std::unique_ptr<AdamW> optimizer;
  std::vector<at::Tensor> params;            // the optimizer's tensors, for clipping
  ShardedParameters sharded;                 // the same, replicated / experts (expert parallel)
  std::unique_ptr<Zero1> zero1;              // with options.zero1: this rank's range of the replicated ones
  std::shared_ptr<DeepseekModel> reference;  // null when kl_coef == 0
  bool reference_is_initial = true;
  uint32_t initial_checksum = 0;  // of the initial policy (the reference's origin)

  // Drops every trainable parameter's gradient (AdamW's zero_grad reaches only its slices, a part
  // of the replicated parameters under ZeRO-1).
  void zero_grad() {
    for (at::Tensor& p : params) p.mutable_grad() = at::Tensor();
  }

  void bind_optimizer(DeepseekModel& policy, const TrainerOptions& o, Distributed* dist) {
    auto named = named_trainable(policy);
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

Trainer::Trainer(std::shared_ptr<DeepseekModel> policy, TrainerOptions options, Distributed* dist)
    : policy_(std::move(policy)), options_(std::move(options)), dist_(dist), state_(std::make_unique<State>()) {
  if (!policy_) throw InputError("Trainer: no policy model");
  validate(options_, [](const std::string& key) { return "trainer option '" + key + "'"; });
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
    policy_->set_routed_experts(std::make_shared<ExpertParallel>(*dist_));
  } else if (options_.zero1) {
    throw InputError(
        "Trainer: trainer.zero1 shards the optimizer state over expert-parallel ranks; "
        "run with `grpo learner --job grpo` or leave it out");
  }
  policy_->set_requires_grad(true);
  state_->bind_optimizer(*policy_, options_, dist_);
  if (options_.kl_coef > 0) {
    auto initial = cloned_state(*policy_);
    state_->initial_checksum = weights_checksum(initial);
    state_->reference = make_reference(initial, "reference (initial policy)");
  }
}

std::shared_ptr<DeepseekModel> Trainer::make_reference(const std::map<std::string, at::Tensor>& weights,
                                                       const std::string& source) const {
  auto m = std::make_shared<DeepseekModel>(policy_->config(), policy_->options());
  m->load_state(weights, source);
  if (dist_) m->set_routed_experts(std::make_shared<ExpertParallel>(*dist_));
  return m;
}

Trainer::~Trainer() = default;

TrainStats Trainer::step(const std::vector<ScoredGroup>& groups) {
  const auto start = std::chrono::steady_clock::now();
  if (options_.threads > 0) at::set_num_threads(static_cast<int>(options_.threads));
  const ModelConfig& cfg = policy_->config();
  const at::ScalarType value_dtype = options_.model_options().compute_dtype == at::kDouble ? at::kDouble : at::kFloat;
  const int64_t pad_id = cfg.eos_token_ids.empty() ? 0 : cfg.eos_token_ids.front();
  TrainBatch batch = make_train_batch(groups, {cfg.vocab_size, cfg.max_position_embeddings, options_.overlong_filter},
                                      pad_id, value_dtype);

  if (options_.advantage == AdvantageEstimator::kRloo && batch.group_size < 2)
    throw InputError("trainer: advantage rloo needs groups of at least 2 completions, got " +
                     std::to_string(batch.group_size));
  TrainStats st;
  st.tokens = batch.tokens();
  st.sequences = double(batch.rows());
  const double tokens = std::max(1.0, st.tokens);

  // Old (and reference) log-probs under the weights as they are now.
  batch.old_logp = batch_logprobs(*policy_, batch, options_.micro_batch_size, options_.temperature, dist_);  // [B, T-1]
  st.rollout_mismatch = ((batch.old_logp - batch.rollout_logp).abs() * batch.mask).sum().item<double>() / tokens;
  at::Tensor rewards = batch.rewards;  // [B] float64
  const bool kl_in_loss = state_->reference && !options_.kl_in_reward;
  if (state_->reference) {
    batch.ref_logp = batch_logprobs(*state_->reference, batch, options_.micro_batch_size, options_.temperature, dist_);
    if (options_.kl_in_reward) {
      at::Tensor kl = kl_penalty(batch.old_logp, batch.ref_logp, options_.kl_estimator) * batch.mask;  // [B, T-1]
      st.kl = kl.sum().item<double>() / tokens;
      rewards = rewards - options_.kl_coef * kl.sum(1).to(at::kDouble);
    }
  }
  st.reward_mean = rewards.mean().item<double>();
  batch.advantages = group_advantages(rewards, batch.group_size, options_.advantage).to(value_dtype);
  st.advantage_abs_mean = batch.advantages.abs().mean().item<double>();

  LossSpec spec;
  spec.policy = options_.policy;
  spec.kl_coef = kl_in_loss ? options_.kl_coef : 0.0;
  spec.kl_estimator = options_.kl_estimator;
  spec.entropy_coef = options_.entropy_coef;
  spec.temperature = options_.temperature;
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
        m = accumulate_minibatch(*policy_, mine, spec, options_.micro_batch_size, &part);
        all_reduce_stats(*dist_, m);
        all_reduce_gradients(*dist_, state_->sharded);
        norm = clip_grad_norm(*dist_, state_->sharded, options_.max_grad_norm);
      } else {
        m = accumulate_minibatch(*policy_, batch.select(rows), spec, options_.micro_batch_size);
        norm = clip_grad_norm(state_->params, options_.max_grad_norm);
      }
      if (std::isfinite(norm)) {
        state_->optimizer->step(st.lr);
        if (state_->zero1) state_->zero1->all_gather();  // the other ranks' ranges of the replicated parameters
      } else {
        st.skipped_steps += 1;  // a non-finite gradient: no update from this mini-batch
      }
      state_->zero_grad();
      if (options_.bias_update_gamma > 0 && !m.expert_load.empty())
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

// ---- checkpoints ---------------------------------------------------------------------------

void Trainer::save_checkpoint(const std::string& dir_in) const {
  std::string dir_str = dir_in;
  while (dir_str.size() > 1 && dir_str.back() == '/') dir_str.pop_back();
  const fs::path dir(dir_str), stage(dir_str + ".tmp");
  std::string reference = "none";
  if (state_->reference) reference = state_->reference_is_initial ? "initial" : "saved";
  nlohmann::json state = {{"format", kStateFormat},
                          {"steps_done", steps_done_},
                          {"seed", options_.seed},
                          {"reference", reference},
                          {"initial_checksum", state_->initial_checksum},
                          {"zero1", options_.zero1}};
  if (dist_) {  // every rank its own tensors, optimizer state and reference experts (trainer.h)
    const at::Tensor sums = dist_->all_gather(at::tensor({int64_t(state_->initial_checksum)}, at::kLong));  // [W, 1]
    state["world_size"] = dist_->size();
    state["initial_checksum"] = std::vector<int64_t>(sums.data_ptr<int64_t>(), sums.data_ptr<int64_t>() + sums.numel());
    ShardedSave save;
    save.weights.dtype = dtype_of(policy_->options().param_dtype);
    save.rank_state = state_->optimizer->state();
    if (reference == "saved")
      for (const auto& [name, t] : state_->reference->state_dict()) save.rank_state[kReferencePrefix + name] = t;
    save.texts[std::string(kTrainerDir) + "/" + kStateFile] = state.dump(2) + "\n";
    save_sharded_pretrained(*dist_, *policy_, dir.string(), save);
    return;
  }
  try {
    fs::remove_all(stage);  // leftover of an interrupted save
    SaveOptions save;
    save.dtype = dtype_of(policy_->options().param_dtype);  // master weights exactly
    save_pretrained(*policy_, stage.string(), save);
    const fs::path sub = stage / kTrainerDir;
    fs::create_directories(sub);
    save_tensors(sub / kOptimizerFile, state_->optimizer->state());
    if (reference == "saved") save_tensors(sub / kReferenceFile, state_->reference->state_dict());
    const std::string text = state.dump(2) + "\n";
    const std::string state_path = (sub / kStateFile).string();
    write_text_atomic(state_path, text);
    publish_dir(stage.string(), dir.string());
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(stage, ignored);
    throw InputError("cannot write checkpoint '" + dir.string() + "': " + e.what());
  }
}

void Trainer::load_checkpoint(const std::string& dir_in) {
  const fs::path dir(dir_in), sub = dir / kTrainerDir;
  const fs::path state_path = sub / kStateFile;
  const nlohmann::json state = read_json(state_path);
  if (json_field<int>(state, "format", state_path) != kStateFormat)
    throw InputError("checkpoint '" + state_path.string() + "': unknown format " + state.at("format").dump());
  const int64_t steps_done = json_field<int64_t>(state, "steps_done", state_path);
  const uint64_t seed = json_field<uint64_t>(state, "seed", state_path);
  const std::string reference = json_field<std::string>(state, "reference", state_path);
  if (steps_done < 0) throw InputError("checkpoint '" + state_path.string() + "': steps_done is negative");
  if (reference != "none" && reference != "initial" && reference != "saved")
    throw InputError("checkpoint '" + state_path.string() + "': entry 'reference' is '" + reference +
                     "', expected none, initial or saved");
  const int world = dist_ ? dist_->size() : 1, rank = dist_ ? dist_->rank() : 0;
  const int saved_world = state.contains("world_size") ? json_field<int>(state, "world_size", state_path) : 1;
  if (saved_world != world)
    throw InputError("checkpoint '" + state_path.string() + "': saved by " + std::to_string(saved_world) +
                     " expert-parallel ranks, this trainer runs on " + std::to_string(world) +
                     " (the optimizer state is per rank)");
  if (state.value("zero1", false) != options_.zero1)
    throw InputError("checkpoint '" + state_path.string() +
                     "': saved with trainer.zero1=" + (options_.zero1 ? "false" : "true") +
                     ", this trainer has trainer.zero1=" + (options_.zero1 ? "true" : "false") +
                     " (the optimizer state is sharded differently)");
  uint32_t checksum = 0;
  if (dist_) {
    const auto sums = json_field<std::vector<int64_t>>(state, "initial_checksum", state_path);
    if (int(sums.size()) != world)
      throw InputError("checkpoint '" + state_path.string() + "': entry 'initial_checksum' needs one value per rank");
    checksum = static_cast<uint32_t>(sums[rank]);
  } else {
    checksum = json_field<uint32_t>(state, "initial_checksum", state_path);
  }

  // Read and check everything before changing anything.
  std::map<std::string, at::Tensor> weights;
  for (auto& [name, t] : load_weights(dir.string(), policy_->options().param_dtype)) weights[name] = t.clone();
  const fs::path optimizer_path = dist_ ? dir / rank_state_file(rank) : sub / kOptimizerFile;
  std::map<std::string, at::Tensor> optimizer_state, saved_reference;
  for (auto& [name, t] : load_tensors(optimizer_path)) {
    if (dist_ && name.rfind(kReferencePrefix, 0) == 0)
      saved_reference[name.substr(std::string(kReferencePrefix).size())] = t;
    else
      optimizer_state[name] = t;
  }
  State probe;  // the optimizer this trainer binds, to check the saved state's names and shapes
  probe.bind_optimizer(*policy_, options_, dist_);
  probe.optimizer->load_state(optimizer_state, optimizer_path.string());
  std::shared_ptr<DeepseekModel> new_reference = state_->reference;
  if (state_->reference && reference == "saved") {
    const fs::path ref_path = dist_ ? optimizer_path : sub / kReferenceFile;
    new_reference = make_reference(dist_ ? saved_reference : load_tensors(ref_path), ref_path.string());
  } else if (state_->reference && reference == "initial" && checksum != state_->initial_checksum) {
    throw InputError("checkpoint '" + state_path.string() +
                     "': its reference model is the run's initial policy, but this Trainer was constructed "
                     "from a different policy (checksum mismatch); construct it from the run's initial model");
  }
  policy_->load_state(weights, dir.string());  // all or nothing

  // Commit: the policy's tensors are new objects, so the optimizer is re-bound to them.
  policy_->set_requires_grad(true);
  state_->bind_optimizer(*policy_, options_, dist_);
  state_->optimizer->load_state(optimizer_state, optimizer_path.string());
  if (new_reference != state_->reference) state_->reference_is_initial = false;
  state_->reference = new_reference;
  steps_done_ = steps_done;
  options_.seed = seed;
}

}  // namespace grpo
