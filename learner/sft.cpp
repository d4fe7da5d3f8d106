#include "learner/sft.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "learner/distill_loss.h"
#include "model/dense_decoder.h"
#include "model/init.h"
#include "model/json_keys.h"
#include "model/pretrained.h"
#include "tokenizer/checkpoint_files.h"

namespace grpo {
namespace fs = std::filesystem;
namespace {

bool is_checkpoint_dir(const std::string& path) {
  return fs::is_directory(path) && (fs::exists(fs::path(path) / "model.safetensors") ||
                                    fs::exists(fs::path(path) / "model.safetensors.index.json"));
}

}  // namespace

SftBatch make_sft_batch(const std::vector<const SftExample*>& examples) {
  int64_t longest = 2, k = 0, n_kd = 0;
  for (const SftExample* e : examples) {
    longest = std::max<int64_t>(longest, e->ids.size());
    n_kd += e->topk_ids.size();
    for (const auto& row : e->topk_ids) k = std::max<int64_t>(k, row.size());
  }
  const int64_t b = examples.size(), t = longest - 1;
  SftBatch out;
  out.ids = at::zeros({b, longest}, at::kLong);
  out.mask = at::zeros({b, t}, at::kFloat);
  if (n_kd > 0) {
    out.kd_rows = at::empty({n_kd}, at::kLong);
    out.kd_ids = at::zeros({n_kd, k}, at::kLong);
    out.kd_logprobs = at::zeros({n_kd, k}, at::kFloat);
    out.kd_valid = at::zeros({n_kd, k}, at::kBool);
  }
  int64_t r = 0;
  for (int64_t i = 0; i < b; ++i) {
    const SftExample& e = *examples[i];
    const int64_t n = e.ids.size();
    out.ids[i].narrow(0, 0, n).copy_(at::tensor(e.ids, at::kLong));
    // Target j predicts ids[j + 1]: the answer starts at ids[prompt_len].
    out.mask[i].narrow(0, e.prompt_len - 1, n - e.prompt_len).fill_(1.0);
    for (size_t p = 0; p < e.topk_ids.size(); ++p, ++r) {
      const int64_t kk = e.topk_ids[p].size();
      out.kd_rows[r] = i * t + e.prompt_len - 1 + static_cast<int64_t>(p);
      out.kd_ids[r].narrow(0, 0, kk).copy_(at::tensor(e.topk_ids[p], at::kLong));
      out.kd_logprobs[r].narrow(0, 0, kk).copy_(at::tensor(e.topk_logprobs[p], at::kFloat));
      out.kd_valid[r].narrow(0, 0, kk).fill_(true);
    }
  }
  return out;
}

SftBatch SftBatch::to(at::Device device) const {
  SftBatch out = *this;
  for (at::Tensor* t : {&out.ids, &out.mask, &out.kd_rows, &out.kd_ids, &out.kd_logprobs, &out.kd_valid})
    if (t->defined()) *t = t->to(device);
  return out;
}

SftLoss sft_loss(const at::Tensor& logits, const SftBatch& b, double kd_weight) {
  const int64_t t = logits.size(1);
  SftLoss l;
  l.ce = masked_mean(token_nll(logits, b.ids.narrow(1, 1, t)), b.mask);
  l.total = l.ce;
  if (b.kd_rows.defined()) {
    const at::Tensor rows = logits.reshape({-1, logits.size(-1)}).index_select(0, b.kd_rows);  // [N, V]
    l.kd = topk_kl(rows, b.kd_ids, b.kd_logprobs, b.kd_valid).mean();
    l.total = l.total + kd_weight * l.kd;
  }
  return l;
}

SftOptions SftOptions::from_config(const Config& s) {
  std::set<std::string> known(kLmTrainingKeys.begin(), kLmTrainingKeys.end());
  known.insert({"model", "tokenizer", "template", "data", "kd_weight", "steps", "epochs", "save_every"});
  s.require_known(known);
  SftOptions o;
  if (s.has("model") && s.node()["model"].IsScalar() && is_checkpoint_dir(s.get_path("model"))) {
    o.checkpoint = s.get_path("model");
    o.model_source = (fs::path(o.checkpoint) / "config.json").string();
    o.model_config = read_config_json(o.checkpoint);
  } else {
    o.model_config = model_config_from(s, "model", &o.model_source);
  }
  DenseConfig::from_json(o.model_config, o.model_source);  // a bad or non-dense config fails here
  o.tokenizer = s.get_path("tokenizer", o.checkpoint);
  if (o.tokenizer.empty())
    throw InputError(s.where("tokenizer") + ": required (the model is not a checkpoint directory)");
  o.chat_template = ChatTemplate::name_from_config(s, "template", o.chat_template);
  ChatTemplate::load(o.chat_template);  // fails early, naming the template

  if (!s.has("data")) throw InputError(s.where("data") + ": required (files: [a.jsonl, ...])");
  const Config d = s.sub("data");
  d.require_known({"files", "skip_bad", "overlong"});
  d.get<std::vector<std::string>>("files");  // required
  o.data.files = d.get_paths("files");
  if (o.data.files.empty()) throw InputError(d.where("files") + ": expected at least one file");
  o.data.skip_bad = d.get<bool>("skip_bad", false);
  const std::string overlong = d.get<std::string>("overlong", "truncate");
  if (overlong != "truncate" && overlong != "skip")
    throw InputError(d.where("overlong") + ": expected truncate or skip, got \"" + overlong + "\"");
  o.data.truncate = overlong == "truncate";

  o.kd_weight = s.get<double>("kd_weight", o.kd_weight);
  if (!(o.kd_weight >= 0)) throw InputError(s.where("kd_weight") + ": expected a number >= 0");
  if (s.has("steps") && s.has("epochs")) throw InputError(s.where("steps") + ": give steps or epochs, not both");
  o.steps = s.get<int64_t>("steps", 0);
  if (s.has("steps") && o.steps < 1) throw InputError(s.where("steps") + ": expected an integer >= 1");
  o.epochs = s.get<double>("epochs", o.epochs);
  if (!(o.epochs > 0)) throw InputError(s.where("epochs") + ": expected a number > 0");
  o.save_every = s.get<int64_t>("save_every", 0);
  if (o.save_every < 0) throw InputError(s.where("save_every") + ": expected an integer >= 0");
  o.train = LmTrainingOptions::from_config(s);
  o.data.seq_len = o.train.seq_len;
  return o;
}

SftResult sft(const SftOptions& o, bool show_progress, const StopSignals* stop) {
  const Tokenizer tok = Tokenizer::load(o.tokenizer);
  const ChatTemplate tmpl = ChatTemplate::load(o.chat_template);
  DenseConfig config = DenseConfig::from_json(o.model_config, o.model_source);
  check_tokenizer_fits(tok.vocab_size(), tok.path(), config.vocab_size, o.model_source);
  SftResult r;
  const std::vector<SftExample> data = load_sft_data(o.data, tok, tmpl, &r.data);
  const int64_t n = data.size(), batch = o.train.batch_size;
  const int64_t steps =
      o.steps > 0 ? o.steps : std::max<int64_t>(1, static_cast<int64_t>(std::ceil(o.epochs * n / batch)));
  LmTrainingOptions train = o.train;
  train.lr.total_steps = steps;

  DenseDecoder model = o.checkpoint.empty() ? DenseDecoder(std::move(config), train.model_options())
                                            : load_dense_pretrained(o.checkpoint, train.model_options());
  if (o.checkpoint.empty()) init_weights(model, train.seed);
  model.set_requires_grad(true);
  LmOptimizer optimizer(model.named_trainable(), train);
  SaveOptions save;
  save.dtype = train.save_dtype_value();
  save.files = tokenizer_checkpoint_files(tok);
  auto save_checkpoint = [&] { save_pretrained(model, train.out_dir, save); };

  LmRunLog log("sft", steps, train, show_progress);
  std::mt19937_64 rng(train.seed);
  std::vector<size_t> order(n);
  size_t cursor = order.size();
  for (int64_t step = 0; step < steps; ++step) {
    if (stop && stop->received()) {
      r.stopped_by = stop->received();
      break;
    }
    std::vector<const SftExample*> examples;
    while (static_cast<int64_t>(examples.size()) < std::min(batch, n)) {
      if (cursor == order.size()) {  // a new epoch
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
      }
      examples.push_back(&data[order[cursor++]]);
    }
    const SftBatch b = make_sft_batch(examples).to(model.options().device);
    const at::Tensor logits = model.logits(b.ids.narrow(1, 0, b.ids.size(1) - 1));  // [B, L-1, V]
    const SftLoss loss = sft_loss(logits, b, o.kd_weight);
    const LmOptimizer::Step s = optimizer.step(loss.total, step, "sft");
    r.final_ce = loss.ce.item<double>();
    r.final_kd = loss.kd.defined() ? loss.kd.item<double>() : 0.0;
    std::map<std::string, double> extra{{"loss/ce", r.final_ce}};
    if (loss.kd.defined()) extra["loss/kd"] = r.final_kd;
    log.record(step, s, static_cast<int64_t>(b.mask.sum().item<double>()), extra);
    if (o.save_every > 0 && (step + 1) % o.save_every == 0 && step + 1 < steps) save_checkpoint();
  }
  log.finish();
  save_checkpoint();
  r.steps = log.steps;
  r.first_loss = log.first_loss;
  r.final_loss = log.final_loss;
  r.seconds = log.seconds;
  r.tokens = log.tokens;
  return r;
}

}  // namespace grpo
