#include "learner/trainer_options.h"

#include "common/error.h"

namespace grpo {

RoutingReplay parse_routing_replay(const std::string& name) {
  if (name == "off") return RoutingReplay::kOff;
  if (name == "rollout") return RoutingReplay::kRollout;
  if (name == "old_policy") return RoutingReplay::kOldPolicy;
  throw InputError("routing_replay '" + name + "': expected off, rollout or old_policy");
}

void validate_trainer_options(const TrainerOptions& o, const std::function<std::string(const std::string&)>& key) {
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
  const OffPolicyOptions& op = o.off_policy;
  const bool gspo = op.policy_loss == PolicyLossKind::kGspo;
  require(op.gspo_clip_low >= 0 && op.gspo_clip_low < 1, "gspo_clip_low", "expected a number in [0, 1)");
  require(op.gspo_clip_high >= 0, "gspo_clip_high", "expected >= 0");
  require(!gspo || o.policy.aggregation == LossAggregation::kSeqMeanTokenMean, "loss_agg",
          "policy_loss gspo averages over sequences (Zheng et al. 2025): expected seq-mean-token-mean");
  require(!gspo || o.policy.tis_cap == 0, "tis_cap",
          "truncated importance sampling weights the ppo token loss; with policy_loss gspo use mis or icepop");
  require(op.mis_low > 0, "mis_low", "expected > 0");
  require(
      op.mis_high >= op.mis_low, "mis_high",
      "expected >= mis_low (" + std::to_string(op.mis_low) + "): tokens are kept when mis_low <= ratio <= mis_high");
  require(op.icepop_beta == 0 || op.icepop_beta > 1, "icepop_beta", "expected > 1 (or 0 to disable)");
  require(!op.kl_unbiased || !o.kl_in_reward, "kl_unbiased",
          "reweights the KL term of the loss; kl_in_reward has none");
  require(!op.kl_unbiased || o.kl_estimator == KlEstimator::kK3, "kl_unbiased",
          "reweights the k3 estimate: expected kl_estimator k3");
  require(o.temperature > 0 && std::isfinite(o.temperature), "temperature", "expected a finite number > 0");
  require(o.top_p > 0 && o.top_p <= 1, "top_p", "expected a number in (0, 1]");
  require(o.top_k >= 0, "top_k", "expected an integer >= 0");
  require(o.ref_refresh_steps >= 0, "ref_refresh_steps", "expected >= 0");
  require(o.bias_update_gamma >= 0, "bias_update_gamma", "expected >= 0");
  require(o.threads >= 0, "threads", "expected >= 0");
  try {
    o.model_options();
  } catch (const InputError& e) {
    throw InputError(key("dtype") + ": " + e.what());
  }
}

ModelOptions TrainerOptions::model_options() const {
  const std::string dtype = resolve_dtype(this->dtype);
  ModelOptions m;
  if (dtype == "fp32" || dtype == "float32") {
    m.compute_dtype = m.param_dtype = at::kFloat;
  } else if (dtype == "bf16" || dtype == "bfloat16") {
    m.compute_dtype = at::kBFloat16;  // fp32 master weights
    m.param_dtype = at::kFloat;
  } else if (dtype == "fp64" || dtype == "float64") {
    m.compute_dtype = m.param_dtype = at::kDouble;
  } else {
    throw InputError("training dtype '" + dtype + "': expected fp32, bf16, fp64 or auto");
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
                   "pack_sequences",
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
                   "routing_replay",
                   "freeze_router",
                   "dtype",
                   "threads",
                   "seed",
                   "overlong_filter",
                   "zero1",
                   "policy_loss",
                   "gspo_clip_low",
                   "gspo_clip_high",
                   "mis",
                   "mis_low",
                   "mis_high",
                   "icepop_beta",
                   "offpolicy_mask_delta",
                   "kl_unbiased"});
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
  o.pack_sequences = c.get<bool>("pack_sequences", o.pack_sequences);
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
  OffPolicyOptions& op = o.off_policy;
  op.policy_loss = parse("policy_loss", "ppo", parse_policy_loss_kind);
  op.gspo_clip_low = c.get<double>("gspo_clip_low", op.gspo_clip_low);
  op.gspo_clip_high = c.get<double>("gspo_clip_high", op.gspo_clip_high);
  op.mis = parse("mis", "off", parse_mis_level);
  op.mis_low = c.get<double>("mis_low", op.mis_low);
  op.mis_high = c.get<double>("mis_high", op.mis_high);
  op.icepop_beta = c.get<double>("icepop_beta", op.icepop_beta);
  if (c.get<std::string>("offpolicy_mask_delta", "off") != "off") {
    op.offpolicy_mask_delta = c.get<double>("offpolicy_mask_delta");
    if (!(op.offpolicy_mask_delta >= 0))
      throw InputError(c.where("offpolicy_mask_delta") + ": expected off or a number >= 0");
  }
  op.kl_unbiased = c.get<bool>("kl_unbiased", op.kl_unbiased);
  o.bias_update_gamma = c.get<double>("bias_update_gamma", o.bias_update_gamma);
  o.routing_replay = parse("routing_replay", "off", parse_routing_replay);
  o.freeze_router = c.get<bool>("freeze_router", o.freeze_router);
  o.overlong_filter = c.get<bool>("overlong_filter", o.overlong_filter);
  o.zero1 = c.get<bool>("zero1", o.zero1);
  o.dtype = resolve_dtype(c.get<std::string>("dtype", o.dtype));  // "auto": chosen by the CPU here
  o.threads = c.get<int64_t>("threads", o.threads);
  const int64_t seed = c.get<int64_t>("seed", static_cast<int64_t>(o.seed));
  if (seed < 0) throw InputError(c.where("seed") + ": expected >= 0");
  o.seed = static_cast<uint64_t>(seed);
  validate_trainer_options(o, [&](const std::string& key) { return c.where(key); });
  return o;
}

}  // namespace grpo
