#include "learner/pretrain.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "common/json_parse.h"
#include "learner/expert_parallel.h"
#include "learner/launcher.h"
#include "learner/sharded_checkpoint.h"
#include "learner/zero1.h"
#include "model/deepseek.h"
#include "model/device.h"
#include "model/init.h"
#include "model/pretrained.h"
#include "model/project.h"
#include "model/runtime.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/checkpoint_files.h"
#include "tokenizer/tokenizer.h"

namespace grpo {
namespace fs = std::filesystem;
namespace {

constexpr const char* kLearnerStateFile = "learner_state.json";

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
      const nlohmann::json j = parse_json(line, where.substr(0, where.size() - 2));
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
      cursor_ = order_.size();  // the first next() shuffles: every epoch, the first included, is a permutation
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

// Load balance of one MoE layer: max over mean of its experts' token counts ([E]).
double load_max_over_mean(const at::Tensor& load) {
  const at::Tensor l = load.to(at::kDouble);
  return l.max().item<double>() / std::max(l.mean().item<double>(), 1e-12);
}

// The step a `grpo learner` checkpoint was saved at; InputError when it was written by a run of
// another world size (each rank's optimizer state belongs to its expert shard) or another zero1.
int64_t resume_step(const std::string& path, int world, bool zero1) {
  const nlohmann::json state = read_json_object(path, "resume");
  if (!state.contains("step") || !state["step"].is_number_integer() || !state.contains("world_size") ||
      !state["world_size"].is_number_integer())
    throw InputError("resume: '" + path + "' needs integer entries 'step' and 'world_size'");
  if (state["world_size"].get<int>() != world)
    throw InputError("resume: '" + path + "' was written by " + std::to_string(state["world_size"].get<int>()) +
                     " ranks, this run has " + std::to_string(world) + " (the optimizer state is per rank)");
  if (state.value("zero1", false) != zero1)
    throw InputError("resume: '" + path + "' was written with pretrain.zero1=" + (zero1 ? "false" : "true") +
                     ", this run has pretrain.zero1=" + (zero1 ? "true" : "false") +
                     " (the optimizer state is sharded differently)");
  return state["step"].get<int64_t>();
}

}  // namespace

PretrainOptions PretrainOptions::from_config(const Config& s) {
  std::set<std::string> known(kLmTrainingKeys.begin(), kLmTrainingKeys.end());
  known.insert(
      {"model", "tokenizer", "corpus", "steps", "bias_update_speed", "mtp_weight", "save_every", "resume", "zero1"});
  s.require_known(known);
  PretrainOptions o;
  o.model = model_config_from(s, "model", &o.model_source);
  const ModelConfig model = ModelConfig::from_json(o.model, o.model_source);  // a bad architecture fails here

  s.get<std::string>("tokenizer");  // required
  o.tokenizer = s.get_path("tokenizer");
  if (!s.has("corpus")) throw InputError(s.where("corpus") + ": required (task: digit_chains, or files: [...])");
  const Config c = s.sub("corpus");
  c.require_known({"task", "template", "step_fraction", "worked_fraction", "digit_chains", "files", "format", "field"});
  auto& corpus = o.corpus;
  if (c.has("task") == c.has("files")) throw InputError(s.where("corpus") + ": give exactly one of 'task' and 'files'");
  if (c.has("task")) {
    corpus.task = c.get<std::string>("task");
    if (corpus.task != "digit_chains")
      throw InputError(c.where("task") + ": unknown task \"" + corpus.task + "\" (known: digit_chains)");
    c.get<std::string>("template");  // required
    corpus.chat_template = ChatTemplate::name_from_config(c, "template", "");
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
    c.get<std::vector<std::string>>("files");  // required
    corpus.files = c.get_paths("files");
    if (corpus.files.empty()) throw InputError(c.where("files") + ": expected at least one file");
    corpus.format = c.get<std::string>("format", corpus.format);
    if (corpus.format != "jsonl" && corpus.format != "text")
      throw InputError(c.where("format") + ": expected jsonl or text, got \"" + corpus.format + "\"");
    corpus.field = c.get<std::string>("field", corpus.field);
  }

  o.train = LmTrainingOptions::from_config(s);
  if (o.train.seq_len > model.max_position_embeddings)
    throw InputError(s.where("seq_len") + ": must be in [2, " + std::to_string(model.max_position_embeddings) +
                     "] (the model's max_position_embeddings), got " + std::to_string(o.train.seq_len));
  o.steps = s.get<int64_t>("steps", o.steps);
  if (o.steps < 1) throw InputError(s.where("steps") + ": expected an integer >= 1");
  o.train.lr.total_steps = o.steps;
  o.bias_update_speed = s.get<double>("bias_update_speed", o.bias_update_speed);
  o.mtp_weight = s.get<double>("mtp_weight", o.mtp_weight);
  if (!(o.mtp_weight >= 0 && o.mtp_weight <= 10))
    throw InputError(s.where("mtp_weight") + ": expected a number in [0, 10], got " + std::to_string(o.mtp_weight));
  o.save_every = s.get<int64_t>("save_every", o.save_every);
  if (o.save_every < 0) throw InputError(s.where("save_every") + ": expected an integer >= 0");
  o.resume = s.get<bool>("resume", o.resume);
  o.zero1 = s.get<bool>("zero1", o.zero1);
  return o;
}

PretrainResult pretrain(const PretrainOptions& o, bool show_progress, Distributed* dist,
                        const PretrainStepHook& after_step, const StopSignals* stop) {
  const Tokenizer tok = Tokenizer::load(o.tokenizer);
  ModelConfig config = ModelConfig::from_json(o.model, o.model_source);
  check_tokenizer_fits(tok.vocab_size(), tok.path(), config.vocab_size, o.model_source);
  const int rank = dist ? dist->rank() : 0, world = dist ? dist->size() : 1;
  if (o.train.batch_size % world != 0)
    throw InputError("pretrain.batch_size: " + std::to_string(o.train.batch_size) + " is not divisible by the " +
                     std::to_string(world) + " ranks");
  if (!dist && (o.save_every > 0 || o.resume || o.zero1))
    throw InputError("pretrain.save_every / pretrain.resume / pretrain.zero1: only for `grpo learner` runs");
  if (dist && stop) throw std::logic_error("pretrain: a stop signal is for one process only");
  CorpusStream corpus(o.corpus, o.train.seed);

  // Expert parallel: this rank's routed experts only, drawn as in the whole model (same seed).
  ModelOptions model_options = o.train.model_options();
  const bool mtp = config.num_nextn_predict_layers > 0 && o.mtp_weight > 0;
  if (mtp && dist)
    throw InputError(o.model_source + ": num_nextn_predict_layers " + std::to_string(config.num_nextn_predict_layers) +
                     " with pretrain.mtp_weight " + std::to_string(o.mtp_weight) +
                     ": the MTP loss is not trained with expert parallelism yet (set mtp_weight: 0)");
  model_options.mtp = mtp;
  if (dist) model_options.device = expert_parallel_device(model_options.device, o.train.device_auto, "pretrain.device");
  model_options.expert_rank = rank;
  model_options.expert_ranks = world;
  DeepseekModel model(config, model_options);
  if (world == 1) {
    init_weights(model, o.train.seed);
  } else {
    ModelOptions whole_options = o.train.model_options();
    whole_options.device = at::kCPU;  // expert parallelism: on the CPU (above)
    DeepseekModel whole(config, whole_options);
    init_weights(whole, o.train.seed);
    model.load_state(whole.state_dict(), "initial weights");
  }
  if (dist) model.set_routed_experts(std::make_shared<ExpertParallel>(*dist));
  model.set_requires_grad(true);
  int64_t first_step = 0;
  const std::string state_path = (fs::path(o.train.out_dir) / kLearnerStateFile).string();
  if (o.resume && fs::exists(state_path)) {
    first_step = resume_step(state_path, world, o.zero1);
    model.load_state(load_weights(o.train.out_dir), o.train.out_dir);
    if (rank == 0) std::cerr << "learner: resuming from step " << first_step << " of " << o.train.out_dir << "\n";
  }
  const ShardedParameters sharded = sharded_parameters(model);
  // AdamW owns the experts and the replicated parameters, or with ZeRO-1 this rank's range of them.
  std::optional<Zero1> zero1;
  if (o.zero1) zero1.emplace(*dist, sharded.replicated);
  std::vector<ParamSlice> owned = whole_slices(zero1 ? sharded.experts : sharded.all());
  if (zero1) owned.insert(owned.begin(), zero1->owned().begin(), zero1->owned().end());
  LmOptimizer optimizer(sharded.all(), std::move(owned), o.train);
  if (first_step > 0) {
    const std::string path = (fs::path(o.train.out_dir) / rank_state_file(rank)).string();
    optimizer.load_state(load_tensors(path), path);
  }
  LmRunLog log(dist ? "learner" : "pretrain", o.steps, o.train, show_progress && rank == 0, first_step, rank == 0);

  // A checkpoint of a `grpo learner` run: weights sharded by rank, each rank's optimizer state,
  // the step; rank 0 adds the tokenizer (learner/sharded_checkpoint.h).
  auto save_learner_checkpoint = [&](int64_t steps_done) {
    ShardedSave save;
    save.weights.dtype = o.train.save_dtype_value();
    save.texts = tokenizer_checkpoint_files(tok);
    save.texts[kLearnerStateFile] =
        nlohmann::json{{"step", steps_done}, {"world_size", world}, {"seed", o.train.seed}, {"zero1", o.zero1}}.dump(
            2) +
        "\n";
    save.rank_state = optimizer.state();
    save_sharded_pretrained(*dist, model, o.train.out_dir, save);
  };

  PretrainResult r;
  const bool balance = o.bias_update_speed > 0;
  const int64_t rows = o.train.batch_size / world;
  for (int64_t step = 0; step < first_step; ++step)  // data as if never stopped
    next_batch(corpus, tok, o.train.batch_size, o.train.seq_len);
  for (int64_t step = first_step; step < o.steps; ++step) {
    if (stop && stop->received()) {
      r.stopped_by = stop->received();
      break;
    }
    // Every rank draws the whole batch and trains on its rows; the loss is each rank's share of
    // the global mean, so the replicated gradients are summed over ranks (expert_parallel.h).
    const Batch b = next_batch(corpus, tok, o.train.batch_size, o.train.seq_len);
    r.truncated += b.truncated;
    const int64_t t = b.ids.size(1);
    const at::Device device = model_options.device;
    const at::Tensor ids = b.ids.narrow(0, rank * rows, rows).to(device),
                     mask = b.mask.narrow(0, rank * rows, rows).to(device);
    std::vector<at::Tensor> load;  // per layer, [E] tokens routed to each expert (MoE layers)
    const at::Tensor input = ids.narrow(1, 0, t - 1);
    const at::Tensor h = model.hidden_states(input, {}, nullptr, AttentionForm::kAuto, &load);  // [B/W, T-1, D]
    const at::Tensor logits = head_logits(h, model.lm_head());                                  // [B/W, T-1, V]
    const double n_targets = b.mask.sum().item<double>();
    // This rank's share of the mean over the global batch's real target tokens (masked_mean of
    // the whole batch when there is one rank).
    at::Tensor loss = (token_nll(logits, ids.narrow(1, 1, t - 1)) * mask).sum() / n_targets;
    double mtp_loss = 0;
    if (mtp) {  // depth k's entry i predicts ids[i + k + 1]: λ/D Σ_k its mean cross-entropy
      const std::vector<at::Tensor> depths = model.mtp_logits(input, h);
      at::Tensor sum = at::zeros({}, loss.options());
      for (size_t k = 1; k <= depths.size(); ++k) {
        const int64_t n = depths[k - 1].size(1);
        const at::Tensor m = mask.narrow(1, static_cast<int64_t>(k), n);
        sum = sum + (token_nll(depths[k - 1], ids.narrow(1, static_cast<int64_t>(k) + 1, n)) * m).sum() /
                        m.sum().clamp_min(1);
      }
      const at::Tensor weighted = sum * (o.mtp_weight / static_cast<double>(config.num_nextn_predict_layers));
      mtp_loss = sum.item<double>() / static_cast<double>(config.num_nextn_predict_layers);
      loss = loss + weighted;
    }
    LmOptimizer::Step s;
    if (dist) {
      optimizer.backward(loss);
      at::Tensor total_loss = loss.detach().to(at::kDouble).reshape({1});
      dist->all_reduce_sum(total_loss);
      all_reduce_gradients(*dist, sharded);
      const double grad_norm = clip_grad_norm(*dist, sharded, o.train.grad_clip);
      s = optimizer.update(total_loss.item<double>(), grad_norm, step, "pretrain");
      if (zero1) zero1->all_gather();
      all_reduce_loads(*dist, load);
    } else {
      s = optimizer.step(loss, step, "pretrain");
    }
    if (balance) model.update_correction_biases(load, o.bias_update_speed);

    std::map<std::string, double> extra;  // expert balance of this step's batch (1 is perfect); the hook's
    if (mtp) extra["pretrain/mtp_loss"] = mtp_loss;
    for (size_t i = 0; i < load.size(); ++i)
      if (load[i].defined())
        extra["moe/layer" + std::to_string(i) + "/load_max_over_mean"] = load_max_over_mean(load[i]);
    std::map<std::string, double> hooked = after_step ? after_step(step + 1, model) : std::map<std::string, double>();
    const bool log_now = !hooked.empty();  // the hook's figures get a metrics line of their own step
    extra.merge(hooked);
    log.record(step, s, static_cast<int64_t>(n_targets), extra, log_now);
    if (dist && o.save_every > 0 && (step + 1) % o.save_every == 0 && step + 1 < o.steps)
      save_learner_checkpoint(step + 1);
  }
  log.finish();
  r.steps = log.steps;
  r.first_loss = log.first_loss;
  r.final_loss = log.final_loss;
  r.seconds = log.seconds;
  r.tokens = log.tokens;
  at::Tensor state_bytes = at::zeros({world}, at::kLong);  // [W]
  state_bytes[rank] = optimizer.state_bytes();
  if (dist) dist->all_reduce_sum(state_bytes);
  r.optimizer_state_bytes.assign(state_bytes.data_ptr<int64_t>(), state_bytes.data_ptr<int64_t>() + world);

  if (dist) {
    save_learner_checkpoint(o.steps);
    return r;
  }
  SaveOptions save;
  save.dtype = o.train.save_dtype_value();
  save.files = tokenizer_checkpoint_files(tok);
  save_pretrained(model, o.train.out_dir, save);
  return r;
}

nlohmann::json pretrain_rank(const PretrainOptions& options, const DistEnv& env,
                             std::chrono::seconds collective_timeout, bool show_progress,
                             const std::function<PretrainStepHook(Distributed&)>& make_hook) {
  const int threads = options.train.threads > 0 ? options.train.threads : threads_per_rank();
  set_torch_threads(threads);
  Distributed dist(env, collective_timeout);
  if (env.rank == 0)
    std::cerr << "learner: " << env.world_size << " ranks, " << options.steps << " steps of "
              << options.train.batch_size << " sequences, model " << options.model_source << ", " << threads
              << " threads a rank -> " << options.train.out_dir << "\n";
  const PretrainResult r = pretrain(options, show_progress, &dist, make_hook ? make_hook(dist) : PretrainStepHook());
  if (env.rank != 0) return nullptr;
  return {{"steps", r.steps},
          {"first_loss", r.first_loss},
          {"final_loss", r.final_loss},
          {"seconds", r.seconds},
          {"tokens", r.tokens},
          {"world_size", env.world_size},
          {"all_to_all_bytes", dist.all_to_all_bytes()},
          {"out_dir", options.train.out_dir},
          {"optimizer_state_bytes", r.optimizer_state_bytes}};
}

}  // namespace grpo
