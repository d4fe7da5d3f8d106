#include "train/run_config.h"

#include <thread>

#include "common/error.h"

namespace grpo {
namespace {

template <class T>
void read(const Config& c, const std::string& key, T& into) {
  into = c.get<T>(key, into);
}

void require_positive(const Config& c, const std::string& key, int64_t v) {
  if (v <= 0) throw InputError(c.where(key) + ": expected a positive integer, got " + std::to_string(v));
}

// run, model, template, data, reward, rollout.
RunConfig read_sampling_sections(const Config& config) {
  RunConfig r;

  const Config run = config.sub("run");
  run.require_known({"name", "out_dir", "seed", "threads", "keep_checkpoints"});
  read(run, "name", r.name);
  r.out_dir = run.get<std::string>("out_dir", "runs/" + r.name);
  r.seed = static_cast<uint64_t>(run.get<int64_t>("seed", static_cast<int64_t>(r.seed)));
  read(run, "threads", r.threads);
  if (r.threads <= 0) r.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  read(run, "keep_checkpoints", r.keep_checkpoints);
  if (r.keep_checkpoints < 1) throw InputError(run.where("keep_checkpoints") + ": expected at least 1");

  const Config model = config.sub("model");
  model.require_known({"path", "tokenizer"});
  r.model_path = model.get<std::string>("path");
  r.tokenizer_path = model.get<std::string>("tokenizer", "");
  if (r.tokenizer_path.empty()) r.tokenizer_path = r.model_path;
  r.chat_template = config.get<std::string>("template", r.chat_template);

  const Config data = config.sub("data");
  data.require_known({"train", "heldout"});
  if (!data.has("train")) throw InputError(config.where("data.train") + ": required (the prompt dataset to train on)");
  r.train_data = prompt_dataset_spec_from_config(data.sub("train"));
  r.has_heldout = data.has("heldout");
  if (r.has_heldout) r.heldout_data = prompt_dataset_spec_from_config(data.sub("heldout"));

  const Config reward = config.sub("reward");
  reward.require_known({"config", "address", "verifier", "options", "timeout_ms", "retries"});
  read(reward, "config", r.reward_config);
  read(reward, "address", r.reward_address);
  read(reward, "verifier", r.verifier);
  if (reward.has("options")) {
    const YAML::Node options = reward.node()["options"];
    if (!options.IsMap()) throw InputError(reward.where("options") + ": expected a map of verifier options");
    r.verifier_options = yaml_to_json(options).dump();
  }
  read(reward, "timeout_ms", r.reward_timeout_ms);
  read(reward, "retries", r.reward_retries);
  require_positive(reward, "timeout_ms", r.reward_timeout_ms);

  const Config rollout = config.sub("rollout");
  rollout.require_known({"workers", "addresses", "dtype", "group_size", "sampling", "engine", "timeout_ms", "retries"});
  read(rollout, "workers", r.rollout_workers);
  read(rollout, "addresses", r.rollout_addresses);
  read(rollout, "dtype", r.rollout_dtype);
  if (r.rollout_dtype != "fp32" && r.rollout_dtype != "bf16" && r.rollout_dtype != "fp8")
    throw InputError(rollout.where("dtype") + ": expected fp32, bf16 or fp8, got '" + r.rollout_dtype + "'");
  read(rollout, "group_size", r.group_size);
  require_positive(rollout, "group_size", r.group_size);
  if (r.rollout_addresses.empty()) require_positive(rollout, "workers", r.rollout_workers);
  read(rollout, "timeout_ms", r.rollout_timeout_ms);
  read(rollout, "retries", r.rollout_retries);
  const Config sampling = rollout.sub("sampling");
  sampling.require_known({"temperature", "top_p", "top_k", "max_new_tokens"});
  read(sampling, "temperature", r.temperature);
  read(sampling, "top_p", r.top_p);
  read(sampling, "top_k", r.top_k);
  read(sampling, "max_new_tokens", r.max_new_tokens);
  require_positive(sampling, "max_new_tokens", r.max_new_tokens);
  const Config engine = rollout.sub("engine");
  engine.require_known({"max_seqs", "num_pages", "page_size", "max_batched_tokens"});
  read(engine, "max_seqs", r.engine_max_seqs);
  read(engine, "num_pages", r.engine_num_pages);
  read(engine, "page_size", r.engine_page_size);
  read(engine, "max_batched_tokens", r.engine_max_batched_tokens);
  return r;
}

}  // namespace

RunConfig sampling_config_from(const Config& config, const std::set<std::string>& also_known) {
  std::set<std::string> known = {"run", "model", "template", "data", "reward", "rollout"};
  known.insert(also_known.begin(), also_known.end());
  config.require_known(known);
  return read_sampling_sections(config);
}

RunConfig run_config_from(const Config& config) {
  RunConfig r = sampling_config_from(config, {"train", "trainer", "pretrain"});
  const Config train = config.sub("train");
  train.require_known({"steps", "prompts_per_step", "dynamic_sampling", "max_refill_rounds", "max_staleness",
                       "eval_every", "eval_samples", "eval_temperature", "eval_limit", "checkpoint_every"});
  read(train, "steps", r.steps);
  require_positive(train, "steps", r.steps);
  read(train, "prompts_per_step", r.prompts_per_step);
  require_positive(train, "prompts_per_step", r.prompts_per_step);
  read(train, "dynamic_sampling", r.dynamic_sampling);
  read(train, "max_refill_rounds", r.max_refill_rounds);
  read(train, "max_staleness", r.max_staleness);
  if (r.max_staleness < 0) throw InputError(train.where("max_staleness") + ": expected >= 0");
  read(train, "eval_every", r.eval_every);
  read(train, "eval_samples", r.eval_samples);
  require_positive(train, "eval_samples", r.eval_samples);
  read(train, "eval_temperature", r.eval_temperature);
  read(train, "eval_limit", r.eval_limit);
  read(train, "checkpoint_every", r.checkpoint_every);
  require_positive(train, "checkpoint_every", r.checkpoint_every);
  if (r.eval_every > 0 && !r.has_heldout)
    throw InputError(train.where("eval_every") + ": held-out evaluation needs data.heldout");
  return r;
}

}  // namespace grpo
