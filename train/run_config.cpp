#include "train/run_config.h"

#include <filesystem>
#include <thread>

#include "common/config_range.h"
#include "common/error.h"
#include "model/device.h"
#include "model/model_options.h"
#include "rollout/options.h"
#include "tokenizer/chat_template.h"
#include "train/weight_version.h"

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
  r.run = run_section_from_config(config.sub("run"));
  r.model = model_section_from_config(config.sub("model"));
  r.chat_template = ChatTemplate::name_from_config(config, "template", r.chat_template);
  r.data = data_section_from_config(config.sub("data"));
  r.reward = reward_section_from_config(config.sub("reward"));
  r.rollout = rollout_section_from_config(config.sub("rollout"));
  return r;
}

}  // namespace

rollout::GenerationParams RolloutSection::default_sampling() {
  rollout::GenerationParams g;
  g.sampling.temperature = 1.0, g.sampling.top_p = 1.0, g.sampling.top_k = 0;
  g.max_new_tokens = 256;
  return g;
}

rollout::EngineOptions RolloutSection::default_engine() {
  rollout::EngineOptions e;
  e.max_seqs = 256, e.num_pages = 4096, e.page_size = 16, e.max_batched_tokens = 4096;
  return e;
}

RunSection run_section_from_config(const Config& run) {
  RunSection r;
  run.require_known({"name", "out_dir", "seed", "threads", "keep_checkpoints", "device"});
  const std::string device = run.get<std::string>("device", "auto");
  r.device = resolve_device(device, run.where("device")).device;
  r.device_auto = device == "auto";
  read(run, "name", r.name);
  r.out_dir = run.get<std::string>("out_dir", "runs/" + r.name);
  r.seed = static_cast<uint64_t>(run.get<int64_t>("seed", static_cast<int64_t>(r.seed)));
  read(run, "threads", r.threads);
  if (r.threads <= 0) r.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  read(run, "keep_checkpoints", r.keep_checkpoints);
  if (r.keep_checkpoints < 1) throw InputError(run.where("keep_checkpoints") + ": expected at least 1");
  return r;
}

ModelSection model_section_from_config(const Config& model) {
  ModelSection m;
  model.require_known({"path", "tokenizer"});
  model.get<std::string>("path");  // required
  m.path = model.get_path("path");
  m.tokenizer = model.get_path("tokenizer");
  if (m.tokenizer.empty()) m.tokenizer = m.path;
  return m;
}

DataSection data_section_from_config(const Config& data) {
  DataSection d;
  data.require_known({"train", "heldout"});
  if (!data.has("train")) throw InputError(data.where("train") + ": required (the prompt dataset to train on)");
  d.train = prompt_dataset_spec_from_config(data.sub("train"));
  d.has_heldout = data.has("heldout");
  if (d.has_heldout) d.heldout = prompt_dataset_spec_from_config(data.sub("heldout"));
  return d;
}

RewardSection reward_section_from_config(const Config& reward) {
  RewardSection r;
  reward.require_known({"config", "address", "verifier", "options", "timeout_ms", "retries", "outage_window_s"});
  r.config = reward.get_path("config");
  read(reward, "address", r.address);
  read(reward, "verifier", r.verifier);
  if (reward.has("options")) {
    const YAML::Node options = reward.node()["options"];
    if (!options.IsMap()) throw InputError(reward.where("options") + ": expected a map of verifier options");
    r.options = yaml_to_json(options).dump();
  }
  read(reward, "timeout_ms", r.timeout_ms);
  read(reward, "retries", r.retries);
  require_positive(reward, "timeout_ms", r.timeout_ms);
  read(reward, "outage_window_s", r.outage_window_s);
  if (!(r.outage_window_s >= 0 && r.outage_window_s <= 7 * 86400))
    throw InputError(reward.where("outage_window_s") + ": expected seconds in [0, 604800], got " +
                     std::to_string(r.outage_window_s));
  return r;
}

RolloutSection rollout_section_from_config(const Config& rollout) {
  RolloutSection r;
  rollout.require_known(
      {"workers", "addresses", "dtype", "group_size", "sampling", "engine", "timeout_ms", "retries", "record_routes"});
  read(rollout, "workers", r.workers);
  read(rollout, "addresses", r.addresses);
  read(rollout, "dtype", r.dtype);
  if (r.dtype != "fp32" && r.dtype != "bf16" && r.dtype != "fp8" && r.dtype != "auto")
    throw InputError(rollout.where("dtype") + ": expected fp32, bf16, fp8 or auto, got '" + r.dtype + "'");
  r.dtype = resolve_dtype(r.dtype);  // "auto": chosen by the CPU here
  read(rollout, "group_size", r.group_size);
  require_positive(rollout, "group_size", r.group_size);
  if (r.addresses.empty()) require_positive(rollout, "workers", r.workers);
  read(rollout, "timeout_ms", r.timeout_ms);
  read(rollout, "retries", r.retries);
  read(rollout, "record_routes", r.record_routes);
  r.sampling = rollout::generation_params_from_config(rollout.sub("sampling"), r.sampling);
  r.engine = rollout::engine_options_from_config(rollout.sub("engine"), r.engine);
  return r;
}

TrainSection train_section_from_config(const Config& train, bool has_heldout) {
  TrainSection t;
  train.require_known({"steps", "prompts_per_step", "dynamic_sampling", "max_refill_rounds", "max_staleness",
                       "eval_every", "eval_samples", "eval_temperature", "eval_limit", "checkpoint_every"});
  t.steps = config_in_range<int64_t>(train, "steps", t.steps, 1, kMaxVersionStep);  // the step of a weight version
  // A step's prompts and their groups are held in memory together: 2^20 is far beyond any run.
  t.prompts_per_step = config_in_range<int64_t>(train, "prompts_per_step", t.prompts_per_step, 1, int64_t{1} << 20);
  read(train, "dynamic_sampling", t.dynamic_sampling);
  read(train, "max_refill_rounds", t.max_refill_rounds);
  read(train, "max_staleness", t.max_staleness);
  if (t.max_staleness < 0) throw InputError(train.where("max_staleness") + ": expected >= 0");
  read(train, "eval_every", t.eval_every);
  read(train, "eval_samples", t.eval_samples);
  require_positive(train, "eval_samples", t.eval_samples);
  read(train, "eval_temperature", t.eval_temperature);
  read(train, "eval_limit", t.eval_limit);
  read(train, "checkpoint_every", t.checkpoint_every);
  require_positive(train, "checkpoint_every", t.checkpoint_every);
  if (t.eval_every > 0 && !has_heldout)
    throw InputError(train.where("eval_every") + ": held-out evaluation needs data.heldout");
  return t;
}

void check_run_inputs(const RunConfig& r, const std::string& source) {
  namespace fs = std::filesystem;
  std::string missing;
  auto need = [&](bool ok, const std::string& key, const std::string& path, const std::string& what) {
    if (!ok) missing += "\n  " + key + ": " + path + " (" + what + ")";
  };
  std::error_code ec;
  need(fs::is_regular_file(fs::path(r.model.path) / "config.json", ec), "model.path", r.model.path,
       "no config.json there: an HF checkpoint directory");
  need(fs::is_regular_file(r.model.tokenizer, ec) ||
           fs::is_regular_file(fs::path(r.model.tokenizer) / "tokenizer.json", ec),
       "model.tokenizer", r.model.tokenizer, "no tokenizer.json: set model.tokenizer");
  need(fs::is_regular_file(r.data.train.path, ec), "data.train.path", r.data.train.path, "not a file");
  if (r.data.has_heldout)
    need(fs::is_regular_file(r.data.heldout.path, ec), "data.heldout.path", r.data.heldout.path, "not a file");
  if (!r.reward.config.empty())
    need(fs::is_regular_file(r.reward.config, ec), "reward.config", r.reward.config, "not a file");
  const std::string ext = fs::path(r.chat_template).extension().string();
  if (ext == ".yaml" || ext == ".yml")
    need(fs::is_regular_file(r.chat_template, ec), "template", r.chat_template, "not a file");
  if (!missing.empty())
    throw InputError(source +
                     ": input files not found (relative paths in a config file are read from its directory, "
                     "those of key=value overrides from the working directory):" +
                     missing + "\nset each key in the config or pass KEY=PATH");
}

RunConfig sampling_config_from(const Config& config, const std::set<std::string>& also_known) {
  std::set<std::string> known = {"run", "model", "template", "data", "reward", "rollout"};
  known.insert(also_known.begin(), also_known.end());
  config.require_known(known);
  return read_sampling_sections(config);
}

RunConfig run_config_from(const Config& config) {
  RunConfig r = sampling_config_from(config, {"train", "trainer", "pretrain", "http"});
  r.train = train_section_from_config(config.sub("train"), r.data.has_heldout);
  return r;
}

}  // namespace grpo
