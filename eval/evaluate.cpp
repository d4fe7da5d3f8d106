#include "eval/evaluate.h"

#include <algorithm>
#include <sstream>

#include "common/clock.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "common/progress.h"
#include "eval/eval.h"
#include "model/runtime.h"
#include "reward/scorer.h"
#include "rollout/model_tokenizer.h"
#include "rollout/offline.h"
#include "rollout/prompts.h"
#include "tokenizer/tokenizer.h"

namespace grpo {
namespace {

using nlohmann::json;
using Ordered = nlohmann::ordered_json;  // output objects keep their fields in this order

Ordered metrics_json(const EvalSummary& s, bool with_format) {
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

reward::Scorer make_scorer(const EvalOptions& o) {
  if (!o.reward_address.empty()) return reward::Scorer::remote(o.reward_address, o.reward_timeout_ms);
  return reward::Scorer::local(o.reward_config.empty() ? Config::parse("", "<built-in reward defaults>")
                                                       : Config::load(o.reward_config));
}

// Samples every request; done[i] = request i's completions in sample order.
std::vector<std::vector<rollout::Completion>> generate(const EvalOptions& o, const Tokenizer& tok,
                                                       const std::vector<rollout::Request>& requests,
                                                       const std::vector<PromptItem>& items, int64_t& generated) {
  std::vector<std::string> names;
  names.reserve(items.size());
  for (const auto& it : items) names.push_back(it.id);
  rollout::EngineOptions eo;
  eo.max_seqs = o.max_seqs, eo.max_batched_tokens = o.max_batched_tokens;
  eo.page_size = o.page_size, eo.num_pages = o.num_pages;
  std::vector<int64_t> finished(items.size(), 0);
  Progress progress("generate", static_cast<int64_t>(items.size()), o.progress);
  std::vector<rollout::Completion> all = rollout::generate_offline(
      o.model_dir,
      [&] {
        ModelOptions m = ModelOptions::for_dtype(o.dtype);
        m.device = o.device;
        return m;
      }(),
      requests, &tok, eo, names,
      [&](const rollout::Completion& c) {
        generated += static_cast<int64_t>(c.token_ids.size());
        if (++finished[c.request_id] == o.samples) progress.advance(1, "tokens=" + std::to_string(generated));
      });
  progress.finish("tokens=" + std::to_string(generated));
  std::vector<std::vector<rollout::Completion>> done(items.size());
  for (auto& c : all) done[c.request_id].push_back(std::move(c));
  return done;
}

}  // namespace

EvalOptions eval_options_from_run_config(const Config& run) {
  EvalOptions o;
  o.model_dir = run.get_path("model.path");
  o.tokenizer = run.get_path("model.tokenizer");
  if (run.has("template"))
    o.chat_template = run.node()["template"].IsMap()
                          ? ChatTemplate::from_config(run.sub("template"))
                          : ChatTemplate::load(ChatTemplate::name_from_config(run, "template", ""));
  if (run.has("data.heldout")) o.dataset = prompt_dataset_spec_from_config(run.sub("data.heldout"));
  return o;
}

std::vector<int64_t> parse_k_list(const std::string& text, int64_t n, const std::string& flag) {
  std::vector<int64_t> ks;
  std::stringstream ss(text);
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
      throw InputError(flag + ": expected comma-separated integers in 1..--samples (" + std::to_string(n) +
                       "), got \"" + item + "\"");
    ks.push_back(k);
  }
  if (ks.empty()) throw InputError(flag + ": empty");
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  return ks;
}

EvalOutput evaluate_checkpoint(const EvalOptions& o, bool with_sample_lines) {
  const int64_t n = o.samples;
  if (n < 1) throw InputError("samples: expected >= 1");
  const std::vector<int64_t> ks = o.ks.empty() ? parse_k_list("1," + std::to_string(n), n) : o.ks;
  set_torch_threads(o.threads);

  // Everything that can fail on input is checked before the model is loaded.
  PromptDatasetReport report;
  const std::vector<PromptItem> items = load_prompt_dataset(o.dataset, &report);
  if (o.model_dir.empty()) throw InputError("grpo eval: give --model DIR (or model.path in --config)");
  const Tokenizer tok = *load_model_tokenizer(o.model_dir, o.tokenizer, true);
  const reward::Scorer scorer = make_scorer(o);
  for (const auto& it : items) scorer.require(it.verifier.empty() ? o.verifier : it.verifier);
  if (!o.format_verifier.empty()) scorer.require(o.format_verifier);
  rollout::validate_sampling(o.params.sampling);

  std::vector<std::string> prompts(items.size());
  std::vector<rollout::Request> gen_requests(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    prompts[i] = o.chat_template.render({{"user", items[i].prompt}}, true);
    rollout::Request& r = gen_requests[i];
    r.prompt = rollout::encode_prompt(tok, prompts[i], o.bos);
    r.n = n;
    r.params = o.params;
    r.params.sampling.seed = o.seed + i;
  }
  const auto t_gen = Clock::now();
  int64_t generated = 0;
  const std::vector<std::vector<rollout::Completion>> done = generate(o, tok, gen_requests, items, generated);
  const double gen_s = seconds_since(t_gen);

  // Score: the task verifier and the format verifier for every sample, with training's options.
  const json options = o.reward_options.empty() ? json() : parse_json(o.reward_options, "reward.options");
  const json format_options =
      options.is_object() && options.contains(o.format_verifier) && options[o.format_verifier].is_object()
          ? options[o.format_verifier]
          : json();
  std::vector<reward::VerifyRequest> requests, format_requests;
  std::vector<std::string> verifiers, format_names, what;
  for (size_t i = 0; i < items.size(); ++i) {
    for (const auto& c : done[i]) {
      reward::VerifyRequest r;
      r.completion = c.text;
      r.reference = items[i].reference_is_json ? parse_json(items[i].reference, "prompt " + items[i].id + ": reference")
                                               : json(items[i].reference);
      r.limits = scorer.limits();
      r.completion_tokens = static_cast<int64_t>(c.token_ids.size());
      r.options = format_options;
      format_requests.push_back(r);
      r.options = items[i].verifier.empty() ? options : json();
      requests.push_back(std::move(r));
      verifiers.push_back(items[i].verifier.empty() ? o.verifier : items[i].verifier);
      format_names.push_back(o.format_verifier);
      what.push_back("prompt " + items[i].id + " sample " + std::to_string(c.sample_index));
    }
  }
  const auto t_score = Clock::now();
  std::vector<reward::ScoreOutcome> results, formats;
  {
    const int64_t total = static_cast<int64_t>(requests.size()) * (o.format_verifier.empty() ? 1 : 2);
    Progress progress("score", total, o.progress);
    auto advance = [&](int64_t k) { progress.advance(k); };
    results = scorer.score(requests, verifiers, {}, o.score_threads, 64, advance);
    if (!o.format_verifier.empty())
      formats = scorer.score(format_requests, format_names, {}, o.score_threads, 64, advance);
    progress.finish();
  }
  for (const auto* outcomes : {&results, &formats})
    for (size_t r = 0; r < outcomes->size(); ++r)
      if (!(*outcomes)[r].error.empty()) throw InputError(what[r] + ": " + (*outcomes)[r].error);
  const double score_s = seconds_since(t_score);

  std::vector<std::vector<EvalSample>> per_prompt(items.size());
  EvalOutput out;
  size_t r = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    for (const auto& c : done[i]) {
      EvalSample s;
      s.correct = results[r].result.correct;
      s.extracted = results[r].result.extracted;
      s.reward = results[r].result.reward;
      s.format_ok = !formats.empty() && formats[r].result.correct;
      s.tokens = static_cast<int64_t>(c.token_ids.size());
      s.truncated = c.finish_reason == rollout::FinishReason::kLength;
      per_prompt[i].push_back(s);
      if (with_sample_lines) {
        Ordered line = {{"id", items[i].id},
                        {"sample", c.sample_index},
                        {"prompt", prompts[i]},
                        {"completion", c.text},
                        {"reference", items[i].reference},
                        {"verifier", verifiers[r]},
                        {"correct", s.correct},
                        {"reward", s.reward},
                        {"extracted", s.extracted},
                        {"reason", results[r].result.reason},
                        {"format_ok", s.format_ok},
                        {"tokens", s.tokens},
                        {"finish_reason", rollout::finish_reason_name(c.finish_reason)}};
        out.sample_lines += line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
      }
      ++r;
    }
  }
  const EvalSummary summary = summarize_eval(per_prompt, ks);
  out.summary = {{"model", o.model_dir},
                 {"dataset",
                  {{"path", o.dataset.path},
                   {"format", o.dataset.format},
                   {"prompts", items.size()},
                   {"skipped_rows", report.skipped},
                   {"skipped_examples", report.reasons}}},
                 {"verifier", o.verifier},
                 {"format_verifier", o.format_verifier},
                 {"sampling",
                  {{"samples", n},
                   {"temperature", o.params.sampling.temperature},
                   {"top_p", o.params.sampling.top_p},
                   {"top_k", o.params.sampling.top_k},
                   {"max_new_tokens", o.params.max_new_tokens},
                   {"seed", o.seed}}},
                 {"prompts", summary.prompts},
                 {"samples", summary.samples},
                 {"metrics", metrics_json(summary, !o.format_verifier.empty())},
                 {"timing",
                  {{"generate_s", gen_s},
                   {"score_s", score_s},
                   {"generated_tokens", generated},
                   {"tokens_per_s", gen_s > 0 ? generated / gen_s : 0.0}}}};
  return out;
}

}  // namespace grpo
