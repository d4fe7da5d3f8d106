#include "learner/pretrain.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <set>

#include "model/chat_template.h"
#include "model/init.h"
#include "model/pretrained.h"
#include "model/tokenizer.h"

namespace grpo {
namespace {

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

}  // namespace

PretrainOptions PretrainOptions::from_config(const Config& s) {
  std::set<std::string> known(kLmTrainingKeys.begin(), kLmTrainingKeys.end());
  known.insert({"model", "tokenizer", "corpus", "steps", "bias_update_speed"});
  s.require_known(known);
  PretrainOptions o;
  o.model = model_config_from(s, "model", &o.model_source);
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

  o.train = LmTrainingOptions::from_config(s);
  o.steps = s.get<int64_t>("steps", o.steps);
  if (o.steps < 1) throw InputError(s.where("steps") + ": expected an integer >= 1");
  o.train.lr.total_steps = o.steps;
  o.bias_update_speed = s.get<double>("bias_update_speed", o.bias_update_speed);
  return o;
}

PretrainResult pretrain(const PretrainOptions& o, bool show_progress) {
  const Tokenizer tok = Tokenizer::load(o.tokenizer);
  ModelConfig config = ModelConfig::from_json(o.model, o.model_source);
  if (config.vocab_size < tok.vocab_size())
    throw InputError(o.model_source + ": key 'vocab_size': " + std::to_string(config.vocab_size) +
                     " is smaller than the tokenizer's vocabulary (" + std::to_string(tok.vocab_size()) + ", " +
                     tok.path() + ")");
  CorpusStream corpus(o.corpus, o.train.seed);

  DeepseekModel model(std::move(config), o.train.model_options());
  init_weights(model, o.train.seed);
  model.set_requires_grad(true);
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (auto& [name, t] : model.named_parameters()) {
    if (name.size() >= 23 && name.compare(name.size() - 23, 23, "e_score_correction_bias") == 0) continue;
    named.emplace_back(name, *t);
  }
  LmOptimizer optimizer(std::move(named), o.train);
  LmRunLog log("pretrain", o.steps, o.train, show_progress);

  PretrainResult r;
  const bool balance = o.bias_update_speed > 0;
  for (int64_t step = 0; step < o.steps; ++step) {
    const Batch b = next_batch(corpus, tok, o.train.batch_size, o.train.seq_len);
    r.truncated += b.truncated;
    const int64_t t = b.ids.size(1);
    std::vector<at::Tensor> load;
    at::Tensor logits = model.forward(b.ids.narrow(1, 0, t - 1), {}, nullptr, AttentionForm::kAuto,
                                      balance ? &load : nullptr);  // [B, T-1, V]
    at::Tensor loss = masked_mean(token_nll(logits, b.ids.narrow(1, 1, t - 1)), b.mask);  // over real targets
    const LmOptimizer::Step s = optimizer.step(loss, step, "pretrain");
    if (balance) model.update_correction_biases(load, o.bias_update_speed);
    log.record(step, s, static_cast<int64_t>(b.mask.sum().item<double>()));
  }
  log.finish();
  r.steps = log.steps;
  r.first_loss = log.first_loss;
  r.final_loss = log.final_loss;
  r.seconds = log.seconds;
  r.tokens = log.tokens;

  // Tokenizer files first: save_pretrained keeps the directory's other files when it swaps the
  // finished checkpoint in, so the directory never holds half-written weights.
  write_tokenizer_files(tok, o.train.out_dir);
  SaveOptions save;
  save.dtype = o.train.save_dtype_value();
  save_pretrained(model, o.train.out_dir, save);
  return r;
}

}  // namespace grpo
