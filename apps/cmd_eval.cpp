// `grpo eval`: pass@k / maj@k of a checkpoint on a prompt dataset.
//
// Prompts come from a dataset (train/prompt_dataset.h): --data/--format/... flags, or a run
// config's data.heldout section (--config RUN.yaml [key=value ...]); each is rendered with the chat
// template (--template, else the config's `template`, else r1-zero) as one user message. The
// rollout engine (a dense Llama/Qwen2 checkpoint: rollout/dense_generate.h, --max-seqs sequences
// at a time) samples --samples completions per prompt in-process (prompt i uses seed + i); each
// is scored with the item's verifier (code datasets: "code"), else --verifier / reward.verifier,
// by the in-process registry of a reward config (--reward-config / reward.config, else the
// built-in defaults) or by a reward server (--reward-server / reward.address), and with the format
// verifier (--format-verifier, "" = skip) for the format rate. Metrics: eval/eval.h.
//
// Prints the summary JSON on stdout and writes it to --out; --samples-out writes one JSON line per
// sample {id, sample, prompt, completion, reference, verifier, correct, reward, extracted, reason,
// format_ok, tokens, finish_reason}. Both files are written atomically. Progress on stderr.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/cli.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/progress.h"
#include "eval/eval.h"
#include "model/pretrained.h"
#include "model/runtime.h"
#include "model/safetensors.h"
#include "reward/client.h"
#include "reward/registry.h"
#include "reward/scoring.h"
#include "reward/server.h"
#include "reward/wire.h"
#include "rollout/dense_generate.h"
#include "rollout/engine.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/prompt_dataset.h"

namespace {

using nlohmann::json;
using Ordered = nlohmann::ordered_json;  // output objects keep their fields in this order
using grpo::Clock;
using grpo::seconds_since;

std::vector<int64_t> parse_ks(const std::string& s, int64_t n) {
  std::vector<int64_t> ks;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t pos = 0;
    int64_t k = 0;
    try {
      k = std::stoll(item, &pos);
    } catch (const std::exception&) {
      pos = std::string::npos;
    }
    if (pos != item.size() || k < 1 || k > n)
      throw grpo::InputError("--k: expected comma-separated integers in 1..--samples (" + std::to_string(n) +
                             "), got \"" + item + "\"");
    ks.push_back(k);
  }
  if (ks.empty()) throw grpo::InputError("--k: empty");
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  return ks;
}

// The dataset: flags when --data is given, else the run config's data.heldout.
grpo::PromptDatasetSpec dataset_spec(const grpo::Args& a, const std::optional<grpo::Config>& run) {
  grpo::PromptDatasetSpec spec;
  if (a.has("data")) {
    spec.path = a.get("data");
    spec.format = a.get("format");
    spec.prompt_field = a.get("prompt-field");
    spec.answer_field = a.get("answer-field");
    spec.id_field = a.get("id-field");
    spec.skip_bad = a.flag("skip-bad");
  } else {
    for (const char* flag : {"format", "prompt-field", "answer-field", "id-field", "skip-bad"})
      if (a.has(flag))
        throw grpo::InputError(std::string("--") + flag +
                               " describes --data, which is not given "
                               "(with --config, set data.heldout.* instead)");
    if (!run || !run->has("data.heldout"))
      throw grpo::InputError("grpo eval: give --data FILE, or --config with a data.heldout section");
    spec = grpo::prompt_dataset_spec_from_config(run->sub("data.heldout"));
  }
  if (a.has("limit")) {
    spec.limit = a.get_int("limit");
    if (spec.limit < 0) throw grpo::InputError("--limit: expected >= 0 (0 = all)");
  }
  return spec;
}

grpo::ChatTemplate chat_template(const grpo::Args& a, const std::optional<grpo::Config>& run) {
  if (a.has("template")) return grpo::ChatTemplate::load(a.get("template"));
  if (run && run->has("template")) {
    if (run->node()["template"].IsMap()) return grpo::ChatTemplate::from_config(run->sub("template"));
    return grpo::ChatTemplate::load(run->get<std::string>("template"));
  }
  return grpo::ChatTemplate::builtin("r1-zero");
}

// Scores requests with an in-process registry or a reward server.
class Scorer {
 public:
  Scorer(const grpo::Args& a, const std::optional<grpo::Config>& run) {
    std::string address =
        a.has("reward-server") ? a.get("reward-server") : (run ? run->get<std::string>("reward.address", "") : "");
    if (!address.empty()) {
      if (a.has("reward-config"))
        throw grpo::InputError("--reward-config and --reward-server: the server uses its own config");
      grpo::reward::ClientOptions o;
      o.timeout_ms = a.get_int("reward-timeout-ms");
      o.retries = 2;
      client_ = std::make_unique<grpo::reward::RewardClient>(address, o);
      for (const auto& v : client_->list_verifiers()) remote_names_.push_back(v.name());
      limits_ = grpo::reward::Limits{0, 0, 0, 0};  // the server's own
      return;
    }
    std::string path =
        a.has("reward-config") ? a.get("reward-config") : (run ? run->get<std::string>("reward.config", "") : "");
    grpo::Config config =
        path.empty() ? grpo::Config::parse("", "<built-in reward defaults>") : grpo::Config::load(path);
    registry_ = grpo::reward::registry_from_config(config);
    limits_ = grpo::reward::server_options_from_config(config).limits;
  }

  // Fails early, naming what is registered, when a verifier is unknown.
  void require(const std::string& name) const {
    if (registry_) {
      registry_->get(name);
      return;
    }
    if (std::find(remote_names_.begin(), remote_names_.end(), name) != remote_names_.end()) return;
    std::string names;
    for (const auto& n : remote_names_) names += (names.empty() ? "" : ", ") + n;
    throw grpo::InputError("unknown verifier '" + name + "' at " + client_->address() + " (registered: " + names + ")");
  }

  // Results in request order; a failed verification is an InputError naming `what[i]`.
  std::vector<grpo::reward::VerifyResult> score(const std::vector<grpo::reward::VerifyRequest>& requests,
                                                const std::vector<std::string>& verifiers,
                                                const std::vector<std::string>& what, int threads,
                                                grpo::Progress& progress) const {
    std::vector<grpo::reward::VerifyResult> out(requests.size());
    if (client_) {
      const size_t chunk = 64;
      for (size_t b = 0; b < requests.size(); b += chunk) {
        std::vector<grpo::reward::v1::ScoreRequest> batch;
        for (size_t i = b; i < std::min(requests.size(), b + chunk); ++i)
          batch.push_back(grpo::reward::request_to_proto(requests[i], verifiers[i], std::to_string(i)));
        auto responses = client_->score_batch(batch);
        for (size_t j = 0; j < responses.size(); ++j) {
          if (responses[j].error_code() != 0) throw grpo::InputError(what[b + j] + ": " + responses[j].error_message());
          out[b + j] = grpo::reward::result_from_proto(responses[j]);
        }
        progress.advance(static_cast<int64_t>(responses.size()));
      }
      return out;
    }
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::string error;
    auto work = [&] {
      for (size_t i; (i = next++) < requests.size();) {
        try {
          auto verifier = registry_->get(verifiers[i]);
          out[i] = grpo::reward::score(*verifier, requests[i]);
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(mu);
          if (error.empty()) error = what[i] + ": " + e.what();
          next = requests.size();
        }
        std::lock_guard<std::mutex> lock(mu);
        progress.advance();
      }
    };
    std::vector<std::thread> pool;
    for (int t = 0; t < std::max(1, threads); ++t) pool.emplace_back(work);
    for (auto& t : pool) t.join();
    if (!error.empty()) throw grpo::InputError(error);
    return out;
  }

  const grpo::reward::Limits& limits() const { return limits_; }

 private:
  std::shared_ptr<const grpo::reward::VerifierRegistry> registry_;
  std::unique_ptr<grpo::reward::RewardClient> client_;
  std::vector<std::string> remote_names_;
  grpo::reward::Limits limits_;
};

Ordered metrics_json(const grpo::EvalSummary& s, bool with_format) {
  Ordered pass = Ordered::object(), maj = Ordered::object();
  for (const auto& [k, v] : s.pass_at) pass[std::to_string(k)] = v;
  for (const auto& [k, v] : s.maj_at) maj[std::to_string(k)] = v;
  return {{"pass@1", s.pass1},
          {"pass@k", pass},
          {"maj@k", maj},
          {"mean_reward", s.mean_reward},
          {"mean_response_tokens", s.mean_tokens},
          {"format_rate", with_format ? Ordered(s.format_rate) : Ordered(nullptr)},
          {"answer_rate", s.answer_rate},
          {"truncated_rate", s.truncated_rate}};
}

int run_eval(const grpo::Args& a) {
  std::optional<grpo::Config> run;
  if (a.has("config"))
    run = grpo::Config::load(a.get("config"), a.overrides());
  else if (!a.overrides().empty())
    throw grpo::InputError("grpo eval: key=value overrides need --config");
  const int64_t n = a.get_int("samples");
  if (n < 1) throw grpo::InputError("--samples: expected >= 1");
  const std::vector<int64_t> ks = parse_ks(a.has("k") ? a.get("k") : "1," + std::to_string(n), n);
  grpo::set_torch_threads(a.get_int("threads"));

  // Everything that can fail on input is checked before the model is loaded.
  const grpo::PromptDatasetSpec spec = dataset_spec(a, run);
  grpo::PromptDatasetReport report;
  const std::vector<grpo::PromptItem> items = grpo::load_prompt_dataset(spec, &report);
  const grpo::ChatTemplate tmpl = chat_template(a, run);
  std::string model_dir = a.has("model") ? a.get("model") : (run ? run->get<std::string>("model.path", "") : "");
  if (model_dir.empty()) throw grpo::InputError("grpo eval: give --model DIR (or model.path in --config)");
  std::string tok_path =
      a.has("tokenizer") ? a.get("tokenizer") : (run ? run->get<std::string>("model.tokenizer", "") : "");
  const grpo::Tokenizer tok = grpo::Tokenizer::load(tok_path.empty() ? model_dir : tok_path);
  Scorer scorer(a, run);
  const std::string default_verifier =
      a.has("verifier") ? a.get("verifier") : (run ? run->get<std::string>("reward.verifier", "math") : "math");
  const std::string format_verifier = a.get("format-verifier");
  for (const auto& it : items) scorer.require(it.verifier.empty() ? default_verifier : it.verifier);
  if (!format_verifier.empty()) scorer.require(format_verifier);

  grpo::rollout::GenerationParams params;
  params.max_new_tokens = a.get_int("max-new-tokens");
  params.sampling.temperature = a.get_double("temperature");
  params.sampling.top_p = a.get_double("top-p");
  params.sampling.top_k = a.get_int("top-k");
  const uint64_t seed = static_cast<uint64_t>(a.get_int("seed"));
  if (a.has("stop")) params.stop_strings.push_back(a.get("stop"));
  grpo::rollout::validate_sampling(params.sampling);

  // Generate: the rollout engine for DeepSeek checkpoints, dense_generate for dense students.
  std::vector<std::string> prompts(items.size());
  std::vector<grpo::rollout::Request> gen_requests(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    prompts[i] = tmpl.render({{"user", items[i].prompt}}, true);
    grpo::rollout::Request& r = gen_requests[i];
    if (!a.flag("no-bos") && tok.bos_id() >= 0) r.prompt.push_back(tok.bos_id());
    for (int32_t id : tok.encode(prompts[i])) r.prompt.push_back(id);
    r.n = n;
    r.params = params;
    r.params.sampling.seed = seed + i;
  }
  const grpo::ModelOptions model_options = grpo::ModelOptions::for_dtype(a.get("dtype"));
  std::vector<std::vector<grpo::rollout::Completion>> done(items.size());
  const auto t_gen = Clock::now();
  int64_t generated = 0;
  {
    grpo::Progress progress("generate", static_cast<int64_t>(items.size()), !a.flag("quiet"));
    auto collect = [&](grpo::rollout::Completion c, size_t i) {
      generated += static_cast<int64_t>(c.token_ids.size());
      done[i].push_back(std::move(c));
      if (static_cast<int64_t>(done[i].size()) == n) progress.advance(1, "tokens=" + std::to_string(generated));
    };
    if (grpo::is_dense_checkpoint(model_dir)) {
      const grpo::DenseDecoder model = grpo::load_dense_pretrained(model_dir, model_options);
      grpo::rollout::dense_generate(model, gen_requests, &tok, a.get_int("max-seqs"),
                                    [&](const grpo::rollout::Completion& c) { collect(c, c.request_id); });
    } else {
      auto model = std::make_shared<const grpo::DeepseekModel>(grpo::load_pretrained(model_dir, model_options));
      grpo::rollout::EngineOptions eo;
      eo.max_seqs = a.get_int("max-seqs");
      eo.max_batched_tokens = std::max<int64_t>(eo.max_seqs, a.get_int("max-batched-tokens"));
      eo.page_size = a.get_int("page-size");
      eo.num_pages = a.get_int("num-pages");
      eo.max_queued_requests = std::max<int64_t>(eo.max_queued_requests, static_cast<int64_t>(items.size()));
      grpo::rollout::Engine engine(model, 0, eo, &tok);
      std::map<uint64_t, size_t> index_of;
      for (size_t i = 0; i < items.size(); ++i) {
        try {
          index_of[engine.submit(gen_requests[i])] = i;
        } catch (const grpo::InputError& e) {
          throw grpo::InputError("prompt " + items[i].id + ": " + e.what());
        }
      }
      for (bool more = true; more;) {
        more = engine.step();
        for (auto& c : engine.poll()) {
          const size_t i = index_of.at(c.request_id);
          collect(std::move(c), i);
        }
      }
    }
    progress.finish("tokens=" + std::to_string(generated));
  }
  const double gen_s = seconds_since(t_gen);

  // Score: the task verifier and the format verifier for every sample.
  std::vector<grpo::reward::VerifyRequest> requests;
  std::vector<std::string> verifiers, format_names, what;
  for (size_t i = 0; i < items.size(); ++i) {
    std::sort(done[i].begin(), done[i].end(),
              [](const auto& x, const auto& y) { return x.sample_index < y.sample_index; });
    for (const auto& c : done[i]) {
      grpo::reward::VerifyRequest r;
      r.completion = c.text;
      r.reference = items[i].reference_is_json ? json::parse(items[i].reference) : json(items[i].reference);
      r.limits = scorer.limits();
      r.completion_tokens = static_cast<int64_t>(c.token_ids.size());
      requests.push_back(std::move(r));
      verifiers.push_back(items[i].verifier.empty() ? default_verifier : items[i].verifier);
      format_names.push_back(format_verifier);
      what.push_back("prompt " + items[i].id + " sample " + std::to_string(c.sample_index));
    }
  }
  const auto t_score = Clock::now();
  std::vector<grpo::reward::VerifyResult> results, formats;
  {
    const int64_t total = static_cast<int64_t>(requests.size()) * (format_verifier.empty() ? 1 : 2);
    grpo::Progress progress("score", total, !a.flag("quiet"));
    results = scorer.score(requests, verifiers, what, a.get_int("score-threads"), progress);
    if (!format_verifier.empty())
      formats = scorer.score(requests, format_names, what, a.get_int("score-threads"), progress);
    progress.finish();
  }
  const double score_s = seconds_since(t_score);

  std::vector<std::vector<grpo::EvalSample>> per_prompt(items.size());
  std::string sample_lines;
  size_t r = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    for (const auto& c : done[i]) {
      grpo::EvalSample s;
      s.correct = results[r].correct;
      s.extracted = results[r].extracted;
      s.reward = results[r].reward;
      s.format_ok = !formats.empty() && formats[r].correct;
      s.tokens = static_cast<int64_t>(c.token_ids.size());
      s.truncated = c.finish_reason == grpo::rollout::FinishReason::kLength;
      per_prompt[i].push_back(s);
      if (a.has("samples-out")) {
        Ordered line = {{"id", items[i].id},
                        {"sample", c.sample_index},
                        {"prompt", prompts[i]},
                        {"completion", c.text},
                        {"reference", items[i].reference},
                        {"verifier", verifiers[r]},
                        {"correct", s.correct},
                        {"reward", s.reward},
                        {"extracted", s.extracted},
                        {"reason", results[r].reason},
                        {"format_ok", s.format_ok},
                        {"tokens", s.tokens},
                        {"finish_reason", grpo::rollout::finish_reason_name(c.finish_reason)}};
        sample_lines += line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
      }
      ++r;
    }
  }
  const grpo::EvalSummary summary = grpo::summarize_eval(per_prompt, ks);

  Ordered out = {{"model", model_dir},
                 {"dataset",
                  {{"path", spec.path},
                   {"format", spec.format},
                   {"prompts", items.size()},
                   {"skipped_rows", report.skipped},
                   {"skipped_examples", report.reasons}}},
                 {"verifier", default_verifier},
                 {"format_verifier", format_verifier},
                 {"sampling",
                  {{"samples", n},
                   {"temperature", params.sampling.temperature},
                   {"top_p", params.sampling.top_p},
                   {"top_k", params.sampling.top_k},
                   {"max_new_tokens", params.max_new_tokens},
                   {"seed", seed}}},
                 {"prompts", summary.prompts},
                 {"samples", summary.samples},
                 {"metrics", metrics_json(summary, !format_verifier.empty())},
                 {"timing",
                  {{"generate_s", gen_s},
                   {"score_s", score_s},
                   {"generated_tokens", generated},
                   {"tokens_per_s", gen_s > 0 ? generated / gen_s : 0.0}}}};
  const std::string text = out.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  if (a.has("samples-out")) grpo::write_text_atomic(a.get("samples-out"), sample_lines);
  if (a.has("out")) grpo::write_text_atomic(a.get("out"), text);
  std::cout << text;
  return 0;
}

GRPO_COMMAND("eval", "pass@k / maj@k of a checkpoint on a prompt dataset (sample, verify, summarise)",
             "[key.path=value ...]",
             ({{"model", "DIR", "HF checkpoint directory (else model.path of --config)", false},
               {"tokenizer", "PATH", "tokenizer.json or its directory (default: the model's)", false},
               {"config", "FILE", "run config: data.heldout, template, reward, model sections", false},
               {"data", "FILE", "prompt dataset (.jsonl or .jsonl.gz) instead of data.heldout", false},
               {"format", "NAME", "jsonl, gsm8k, math500, aime, amc23, humaneval or mbpp", false, "jsonl"},
               {"prompt-field", "NAME", "prompt field (default: the format's)", false},
               {"answer-field", "NAME", "answer field (default: the format's)", false},
               {"id-field", "NAME", "id field (default: the format's)", false},
               {"skip-bad", "", "skip and count bad dataset rows instead of failing", false},
               {"limit", "N", "evaluate the first N prompts (0 = all)", false},
               {"template", "NAME|FILE", "chat template (default: the config's, else r1-zero)", false},
               {"no-bos", "", "do not prepend the tokenizer's BOS", false},
               {"reward-config", "FILE", "reward config for in-process verifiers (default: reward.config)", false},
               {"reward-server", "ADDR", "score with this reward server instead (default: reward.address)", false},
               {"reward-timeout-ms", "MS", "deadline of each reward-server call", false, "60000"},
               {"verifier", "NAME", "verifier for items that name none (default: reward.verifier, else math)", false},
               {"format-verifier", "NAME", "verifier whose verdict is the format rate (\"\" = skip)", false, "format"},
               {"samples", "N", "completions per prompt (n)", false, "1"},
               {"k", "K,K,..", "k values for pass@k and maj@k (default: 1,n)", false},
               {"max-new-tokens", "N", "tokens to generate at most", false, "1024"},
               {"temperature", "T", "0 = greedy", false, "0.6"},
               {"top-p", "P", "nucleus sampling mass", false, "0.95"},
               {"top-k", "K", "0 = all tokens", false, "0"},
               {"seed", "N", "sampling seed (prompt i uses seed + i)", false, "0"},
               {"stop", "TEXT", "stop once a completion contains this, e.g. </answer>", false},
               {"dtype", "TYPE", "fp32, bf16 or fp8", false, "fp32"},
               {"max-seqs", "N", "sequences decoded together", false, "64"},
               {"max-batched-tokens", "N", "tokens fed per engine step", false, "2048"},
               {"page-size", "N", "latent cache page size (tokens)", false, "16"},
               {"num-pages", "N", "latent cache pages", false, "2048"},
               {"threads", "N", "intra-op threads (0 = all cores)", false, "0"},
               {"score-threads", "N", "in-process verification threads", false, "4"},
               {"out", "FILE", "write the summary JSON here too", false},
               {"samples-out", "FILE", "write one JSON line per sample here", false},
               {"quiet", "", "no progress lines", false}}),
             run_eval);

}  // namespace
