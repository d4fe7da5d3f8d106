#include "learner/pretrain.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include "common/progress.h"
#include "learner/expert_parallel.h"
#include "learner/metrics.h"
#include "learner/sharded_checkpoint.h"
#include "model/chat_template.h"
#include "model/init.h"
#include "model/pretrained.h"
#include "model/safetensors.h"  // write_file_atomic, write_all
#include "model/tokenizer.h"

namespace grpo {
namespace fs = std::filesystem;
namespace {

constexpr const char* kLearnerStateFile = "learner_state.json";

std::string read_text(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(what + ": cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json_object(const std::string& path, const std::string& what) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text(path, what));
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(what + ": '" + path + "' is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw InputError(what + ": '" + path + "' must hold a JSON object");
  return j;
}

// Model and compute dtypes of a trainable model: parameters stay fp32 (master weights).
ModelOptions training_options(const std::string& dtype, const std::string& where) {
  ModelOptions o;
  if (dtype == "fp32") return o;
  if (dtype == "bf16") {
    o.compute_dtype = at::kBFloat16;
    return o;
  }
  throw InputError(where + ": expected fp32 or bf16, got \"" + dtype + "\"");
}

DType save_dtype_of(const std::string& name, const std::string& where) {
  if (name == "fp32") return DType::F32;
  if (name == "bf16") return DType::BF16;
  throw InputError(where + ": expected fp32 or bf16, got \"" + name + "\"");
}

std::vector<std::string> read_records(const PretrainCorpusOptions& c) {
  std::vector<std::string> records;
  for (const auto& file : c.files) {
    std::ifstream in(file);
    if (!in) throw InputError("pretrain corpus: cannot read '" + file + "'");
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      if (c.format == "text") {
        records.push_back(line);
        continue;
      }
      const std::string where = file + ", line " + std::to_string(n) + ": ";
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error& e) {
        throw InputError(where + "invalid JSON: " + e.what());
      }
      if (!j.is_object() || !j.contains(c.field) || !j[c.field].is_string())
        throw InputError(where + "expected an object with a string field \"" + c.field + "\"");
      records.push_back(j[c.field].get<std::string>());
    }
  }
  if (records.empty()) throw InputError("pretrain corpus: no records in the corpus files");
  return records;
}

// The training texts, one after another, endlessly.
class CorpusStream {
 public:
  CorpusStream(const PretrainCorpusOptions& c, uint64_t seed)
      : options_(c), sampler_(c.digit_chains, TaskSplit::kTrain, seed), rng_(seed) {
    if (c.task.empty()) {
      records_ = read_records(c);
      order_.resize(records_.size());
    } else {
      template_ = ChatTemplate::load(c.chat_template);
    }
  }

  std::string next() {
    if (!options_.task.empty()) {
      const DigitChain chain = sampler_.next();
      if (chance(options_.worked_fraction)) return worked_example(chain);
      const bool steps = chance(options_.step_fraction);
      return template_.render({{"user", chain.question()}}, true) +
             solution(chain, steps ? SolutionStyle::kSteps : SolutionStyle::kDirect);
    }
    if (cursor_ == order_.size()) {  // a new epoch
      for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
      std::shuffle(order_.begin(), order_.end(), rng_);
      cursor_ = 0;
    }
    return records_[order_[cursor_++]];
  }

 private:
  bool chance(double p) {
    constexpr uint64_t kScale = 1'000'000;
    return sampler_.uniform(kScale) < static_cast<uint64_t>(p * kScale);
  }

  PretrainCorpusOptions options_;
  DigitChainSampler sampler_;
  ChatTemplate template_;
  std::vector<std::string> records_;
  std::vector<size_t> order_;
  size_t cursor_ = 0;
  std::mt19937_64 rng_;
};

// A right-padded batch: ids [B, T] and the target mask [B, T-1] (1 where ids[:, t+1] is a real token).
struct Batch {
  at::Tensor ids, mask;
  int64_t truncated = 0;
};

Batch next_batch(CorpusStream& corpus, const Tokenizer& tok, int64_t batch_size, int64_t seq_len) {
  std::vector<std::vector<int64_t>> seqs;
  Batch b;
  int64_t longest = 2;
  for (int64_t i = 0; i < batch_size; ++i) {
    std::vector<int64_t> s;
    if (tok.bos_id() >= 0) s.push_back(tok.bos_id());
    for (int32_t id : tok.encode(corpus.next())) s.push_back(id);
    if (tok.eos_id() >= 0) s.push_back(tok.eos_id());
    if (static_cast<int64_t>(s.size()) > seq_len) {
      s.resize(seq_len);
      ++b.truncated;
    }
    longest = std::max<int64_t>(longest, s.size());
    seqs.push_back(std::move(s));
  }
  b.ids = at::zeros({batch_size, longest}, at::kLong);
  b.mask = at::zeros({batch_size, longest - 1}, at::kFloat);
  for (int64_t i = 0; i < batch_size; ++i) {
    const auto& s = seqs[i];
    const int64_t n = s.size();
    b.ids[i].narrow(0, 0, n).copy_(at::tensor(s, at::kLong));
    if (n > 1) b.mask[i].narrow(0, 0, n - 1).fill_(1.0);
  }
  return b;
}

// Writes `src` to `dst` through a temp file (fsync, rename).
void copy_file_atomic(const std::string& src, const std::string& dst) {
  const std::string bytes = read_text(src, "pretrain: tokenizer");
  write_file_atomic(dst, [&](int fd) { write_all(fd, bytes.data(), bytes.size(), dst); });
}

// The tokenizer's files a checkpoint carries: name in the checkpoint -> source path.
std::map<std::string, std::string> tokenizer_files(const Tokenizer& tok) {
  const fs::path tok_json = tok.path();
  std::map<std::string, std::string> files{{"tokenizer.json", tok_json.string()}};
  const fs::path tok_config = tok_json.parent_path() / "tokenizer_config.json";
  if (fs::exists(tok_config)) files["tokenizer_config.json"] = tok_config.string();
  return files;
}

// Load balance of one MoE layer: max over mean of its experts' token counts ([E]).
double load_max_over_mean(const at::Tensor& load) {
  const at::Tensor l = load.to(at::kDouble);
  return l.max().item<double>() / std::max(l.mean().item<double>(), 1e-12);
}

// The step a `grpo learner` checkpoint was saved at; InputError when it was written by a run of
// another world size (each rank's optimizer state belongs to its expert shard).
int64_t resume_step(const std::string& path, int world) {
  const nlohmann::json state = read_json_object(path, "resume");
  if (!state.contains("step") || !state["step"].is_number_integer() || !state.contains("world_size") ||
      !state["world_size"].is_number_integer())
    throw InputError("resume: '" + path + "' needs integer entries 'step' and 'world_size'");
  if (state["world_size"].get<int>() != world)
    throw InputError("resume: '" + path + "' was written by " + std::to_string(state["world_size"].get<int>()) +
                     " ranks, this run has " + std::to_string(world) + " (the optimizer state is per rank)");
  return state["step"].get<int64_t>();
}

}  // namespace

PretrainOptions PretrainOptions::from_config(const Config& s) {
  s.require_known({"model", "tokenizer", "corpus", "seq_len", "batch_size", "steps", "optim", "bias_update_speed",
                   "threads", "seed", "dtype", "save_dtype", "out_dir", "log_dir", "log_every", "save_every", "resume"});
  PretrainOptions o;
  const YAML::Node& root = s.node();
  const YAML::Node model = root["model"];
  if (!model || model.IsNull()) throw InputError(s.where("model") + ": required (a config.json path or object)");
  if (model.IsMap()) {
    o.model = yaml_to_json(model);
    o.model_source = s.where("model");
  } else {
    const std::string path = s.get<std::string>("model");
    o.model_source = fs::is_directory(path) ? (fs::path(path) / "config.json").string() : path;
    o.model = read_json_object(o.model_source, s.where("model"));
  }
  ModelConfig::from_json(o.model, o.model_source);  // a bad architecture fails here, before any work

  o.tokenizer = s.get<std::string>("tokenizer");
  if (!s.has("corpus")) throw InputError(s.where("corpus") + ": required (task: digit_chains, or files: [...])");
  const Config c = s.sub("corpus");
  c.require_known({"task", "template", "step_fraction", "worked_fraction", "digit_chains", "files", "format", "field"});
  auto& corpus = o.corpus;
  if (c.has("task") == c.has("files"))
    throw InputError(s.where("corpus") + ": give exactly one of 'task' and 'files'");
  if (c.has("task")) {
    corpus.task = c.get<std::string>("task");
    if (corpus.task != "digit_chains")
      throw InputError(c.where("task") + ": unknown task \"" + corpus.task + "\" (known: digit_chains)");
    corpus.chat_template = c.get<std::string>("template");
    corpus.step_fraction = c.get<double>("step_fraction", corpus.step_fraction);
    corpus.worked_fraction = c.get<double>("worked_fraction", corpus.worked_fraction);
    for (const auto& [key, v] : {std::pair<const char*, double>{"step_fraction", corpus.step_fraction},
                                 {"worked_fraction", corpus.worked_fraction}})
      if (!(v >= 0 && v <= 1)) throw InputError(c.where(key) + ": expected a number in [0, 1]");
    corpus.digit_chains = DigitChainsOptions::from_config(c.sub("digit_chains"));
    ChatTemplate::load(corpus.chat_template);  // fails early, naming the template
  } else {
    for (const char* key : {"template", "step_fraction", "worked_fraction", "digit_chains"})
      if (c.has(key)) throw InputError(c.where(key) + ": only for 'task' corpora");
    corpus.files = c.get<std::vector<std::string>>("files");
    if (corpus.files.empty()) throw InputError(c.where("files") + ": expected at least one file");
    corpus.format = c.get<std::string>("format", corpus.format);
    if (corpus.format != "jsonl" && corpus.format != "text")
      throw InputError(c.where("format") + ": expected jsonl or text, got \"" + corpus.format + "\"");
    corpus.field = c.get<std::string>("field", corpus.field);
  }

  auto positive = [&](const char* key, int64_t fallback, int64_t least) {
    const int64_t v = s.get<int64_t>(key, fallback);
    if (v < least) throw InputError(s.where(key) + ": expected an integer >= " + std::to_string(least));
    return v;
  };
  o.seq_len = positive("seq_len", o.seq_len, 2);
  o.batch_size = positive("batch_size", o.batch_size, 1);
  o.steps = positive("steps", o.steps, 1);
  o.log_every = positive("log_every", o.log_every, 1);
  o.save_every = positive("save_every", o.save_every, 0);
  o.resume = s.get<bool>("resume", o.resume);
  o.threads = static_cast<int>(positive("threads", o.threads, 0));
  o.seed = static_cast<uint64_t>(positive("seed", 0, 0));

  const Config opt = s.sub("optim");
  opt.require_known(
      {"lr", "warmup_steps", "decay", "min_lr_ratio", "weight_decay", "beta1", "beta2", "eps", "grad_clip"});
  o.lr.peak = opt.get<double>("lr", 1e-3);
  o.lr.warmup_steps = opt.get<int64_t>("warmup_steps", 0);
  o.lr.total_steps = o.steps;
  try {
    o.lr.decay = parse_lr_decay(opt.get<std::string>("decay", "cosine"));
  } catch (const InputError& e) {
    throw InputError(opt.where("decay") + ": " + e.what());
  }
  o.lr.min_ratio = opt.get<double>("min_lr_ratio", 0.1);
  o.adamw.weight_decay = opt.get<double>("weight_decay", 0.0);
  o.adamw.beta1 = opt.get<double>("beta1", o.adamw.beta1);
  o.adamw.beta2 = opt.get<double>("beta2", o.adamw.beta2);
  o.adamw.eps = opt.get<double>("eps", o.adamw.eps);
  o.grad_clip = opt.get<double>("grad_clip", o.grad_clip);
  if (!(o.lr.peak > 0)) throw InputError(opt.where("lr") + ": expected a number > 0");
  if (o.lr.warmup_steps < 0) throw InputError(opt.where("warmup_steps") + ": expected an integer >= 0");
  if (o.lr.min_ratio < 0 || o.lr.min_ratio > 1) throw InputError(opt.where("min_lr_ratio") + ": expected [0, 1]");

  o.bias_update_speed = s.get<double>("bias_update_speed", o.bias_update_speed);
  o.dtype = s.get<std::string>("dtype", o.dtype);
  training_options(o.dtype, s.where("dtype"));
  o.save_dtype = s.get<std::string>("save_dtype", o.save_dtype);
  save_dtype_of(o.save_dtype, s.where("save_dtype"));
  o.out_dir = s.get<std::string>("out_dir");
  o.log_dir = s.get<std::string>("log_dir", (fs::path(o.out_dir) / "logs").string());
  return o;
}

PretrainResult pretrain(const PretrainOptions& o, bool show_progress, Distributed* dist) {
  const Tokenizer tok = Tokenizer::load(o.tokenizer);
  ModelConfig config = ModelConfig::from_json(o.model, o.model_source);
  if (config.vocab_size < tok.vocab_size())
    throw InputError(o.model_source + ": key 'vocab_size': " + std::to_string(config.vocab_size) +
                     " is smaller than the tokenizer's vocabulary (" + std::to_string(tok.vocab_size()) + ", " +
                     tok.path() + ")");
  const int rank = dist ? dist->rank() : 0, world = dist ? dist->size() : 1;
  if (o.batch_size % world != 0)
    throw InputError("pretrain.batch_size: " + std::to_string(o.batch_size) + " is not divisible by the " +
                     std::to_string(world) + " ranks");
  if (!dist && (o.save_every > 0 || o.resume))
    throw InputError("pretrain.save_every / pretrain.resume: only for `grpo learner` runs");
  CorpusStream corpus(o.corpus, o.seed);

  // Expert parallel: this rank's routed experts only, drawn as in the whole model (same seed).
  ModelOptions model_options = training_options(o.dtype, "pretrain.dtype");
  model_options.expert_rank = rank;
  model_options.expert_ranks = world;
  DeepseekModel model(config, model_options);
  if (world == 1) {
    init_weights(model, o.seed);
  } else {
    DeepseekModel whole(config, training_options(o.dtype, "pretrain.dtype"));
    init_weights(whole, o.seed);
    model.load_state(whole.state_dict(), "initial weights");
  }
  if (dist) model.set_routed_experts(std::make_shared<ExpertParallel>(*dist));
  model.set_requires_grad(true);
  int64_t first_step = 0;
  const std::string state_path = (fs::path(o.out_dir) / kLearnerStateFile).string();
  if (o.resume && fs::exists(state_path)) {
    first_step = resume_step(state_path, world);
    model.load_state(load_weights(o.out_dir), o.out_dir);
    if (rank == 0) std::cerr << "learner: resuming from step " << first_step << " of " << o.out_dir << "\n";
  }
  const ShardedParameters sharded = sharded_parameters(model);
  std::vector<at::Tensor> params;
  for (const auto& [name, t] : sharded.all()) params.push_back(t);
  AdamW optimizer(sharded.all(), o.adamw);
  if (first_step > 0) {
    const std::string path = (fs::path(o.out_dir) / rank_state_file(rank)).string();
    optimizer.load_state(load_tensors(path), path);
  }
  std::optional<MetricsWriter> metrics;
  if (rank == 0) metrics.emplace(o.log_dir);
  Progress progress(dist ? "learner" : "pretrain", o.steps - first_step, show_progress && rank == 0);

  // A checkpoint of a `grpo learner` run: weights sharded by rank, each rank's optimizer state,
  // the step; rank 0 adds the tokenizer (learner/sharded_checkpoint.h).
  auto save_learner_checkpoint = [&](int64_t steps_done) {
    ShardedSave save;
    save.weights.dtype = save_dtype_of(o.save_dtype, "pretrain.save_dtype");
    save.files = tokenizer_files(tok);
    save.texts[kLearnerStateFile] =
        nlohmann::json{{"step", steps_done}, {"world_size", world}, {"seed", o.seed}}.dump(2) + "\n";
    save.rank_state = optimizer.state();
    save_sharded_pretrained(*dist, model, o.out_dir, save);
  };

  PretrainResult r;
  r.steps = first_step;
  const bool balance = o.bias_update_speed > 0;
  const int64_t rows = o.batch_size / world;
  const auto start = std::chrono::steady_clock::now();
  auto window_start = start;
  int64_t window_tokens = 0;
  for (int64_t step = 0; step < first_step; ++step) next_batch(corpus, tok, o.batch_size, o.seq_len);  // data as if never stopped
  for (int64_t step = first_step; step < o.steps; ++step) {
    // Every rank draws the whole batch and trains on its rows; the loss is each rank's share of
    // the global mean, so the replicated gradients are summed over ranks (expert_parallel.h).
    const Batch b = next_batch(corpus, tok, o.batch_size, o.seq_len);
    r.truncated += b.truncated;
    const int64_t t = b.ids.size(1);
    const at::Tensor ids = b.ids.narrow(0, rank * rows, rows), mask = b.mask.narrow(0, rank * rows, rows);
    std::vector<at::Tensor> load;  // per layer, [E] tokens routed to each expert (MoE layers)
    at::Tensor logits = model.forward(ids.narrow(1, 0, t - 1), {}, nullptr, AttentionForm::kAuto, &load);  // [B/W, T-1, V]
    at::Tensor nll = -logits.log_softmax(-1).gather(-1, ids.narrow(1, 1, t - 1).unsqueeze(-1)).squeeze(-1);
    const double n_targets = b.mask.sum().item<double>();
    at::Tensor loss = (nll * mask).sum() / n_targets;  // this rank's share of the mean over real target tokens
    optimizer.zero_grad();
    loss.backward();
    at::Tensor total_loss = loss.detach().to(at::kDouble).reshape({1});
    double grad_norm = 0;
    if (dist) {
      dist->all_reduce_sum(total_loss);
      all_reduce_gradients(*dist, sharded);
    }
    const double loss_value = total_loss.item<double>();
    if (!std::isfinite(loss_value))
      throw std::runtime_error("pretrain: the loss is not finite at step " + std::to_string(step) +
                               " (try a lower optim.lr or grad_clip)");
    grad_norm = dist ? clip_grad_norm(*dist, sharded, o.grad_clip) : clip_grad_norm(params, o.grad_clip);
    const double lr = lr_at(o.lr, step);
    optimizer.step(lr);
    if (dist) all_reduce_loads(*dist, load);
    if (balance) model.update_correction_biases(load, o.bias_update_speed);

    if (step == first_step) r.first_loss = loss_value;
    r.final_loss = loss_value;
    r.tokens += static_cast<int64_t>(n_targets);
    window_tokens += static_cast<int64_t>(n_targets);
    r.steps = step + 1;
    char status[64];
    std::snprintf(status, sizeof status, "loss=%.4f", loss_value);
    progress.advance(1, status);
    if (metrics && ((step + 1) % o.log_every == 0 || step + 1 == o.steps)) {
      const auto now = std::chrono::steady_clock::now();
      const double secs = std::chrono::duration<double>(now - window_start).count();
      std::map<std::string, double> m{{"loss", loss_value},
                                      {"lr", lr},
                                      {"grad_norm", grad_norm},
                                      {"throughput/tokens_per_s", secs > 0 ? window_tokens / secs : 0.0}};
      for (size_t i = 0; i < load.size(); ++i)  // expert balance of this step's batch: 1 is perfect
        if (load[i].defined())
          m["moe/layer" + std::to_string(i) + "/load_max_over_mean"] = load_max_over_mean(load[i]);
      metrics->log(step + 1, m);
      window_start = now;
      window_tokens = 0;
    }
    if (dist && o.save_every > 0 && (step + 1) % o.save_every == 0 && step + 1 < o.steps)
      save_learner_checkpoint(step + 1);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress.finish();

  if (dist) {
    save_learner_checkpoint(o.steps);
    return r;
  }
  // Tokenizer files first: save_pretrained keeps the directory's other files when it swaps the
  // finished checkpoint in, so the directory never holds half-written weights.
  fs::create_directories(o.out_dir);
  for (const auto& [file, source] : tokenizer_files(tok))
    copy_file_atomic(source, (fs::path(o.out_dir) / file).string());
  SaveOptions save;
  save.dtype = save_dtype_of(o.save_dtype, "pretrain.save_dtype");
  save_pretrained(model, o.out_dir, save);
  return r;
}

}  // namespace grpo
