#include "train/sample_and_score.h"

#include <algorithm>
#include <chrono>

#include "common/clock.h"
#include "common/error.h"
#include "reward/client.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/rollout_pool.h"

namespace grpo {
namespace {

int64_t unix_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The store keeps stop, length and abort: the end-of-sequence token is a stop there.
FinishReason stored_finish(FinishReason r) { return r == FinishReason::kEos ? FinishReason::kStop : r; }

}  // namespace

void require_routes(const ScoredGroup& g, const std::string& why) {
  for (size_t i = 0; i < g.completions.size(); ++i)
    if (g.completions[i].routes.empty())
      throw InputError("group (step " + std::to_string(g.step) + ", prompt '" + g.prompt_id + "'): completion " +
                       std::to_string(i) + " has no routes, and " + why +
                       " (a rollout worker serving a dense model, or one that does not record them)");
}

Prompt prepare_prompt(PromptItem item, const ChatTemplate& chat_template, const Tokenizer& tokenizer) {
  Prompt p;
  p.text = chat_template.render({{"user", item.prompt}}, /*add_generation_prompt=*/true);
  if (tokenizer.bos_id() >= 0) p.ids.push_back(tokenizer.bos_id());
  for (int32_t id : tokenizer.encode(p.text)) p.ids.push_back(id);
  p.item = std::move(item);
  return p;
}

reward::v1::ScoreRequest score_request(const RunConfig& run, const Prompt& prompt, const std::string& completion,
                                       int64_t completion_tokens, size_t id) {
  reward::v1::ScoreRequest r;
  r.set_id(std::to_string(id));
  if (prompt.item.verifier.empty()) {
    r.set_verifier(run.reward.verifier);
    r.set_options(run.reward.options);
  } else {
    r.set_verifier(prompt.item.verifier);
  }
  r.set_completion(completion);
  r.set_reference(prompt.item.reference);
  r.set_reference_is_json(prompt.item.reference_is_json);
  r.set_completion_tokens(completion_tokens);
  return r;
}

std::vector<reward::v1::ScoreResponse> score_all(const reward::RewardClient& client,
                                                 const std::vector<reward::v1::ScoreRequest>& requests) {
  std::vector<reward::v1::ScoreResponse> verdicts;
  constexpr size_t kBatch = 256;
  for (size_t b = 0; b < requests.size(); b += kBatch) {
    std::vector<reward::v1::ScoreRequest> part(requests.begin() + b,
                                               requests.begin() + std::min(requests.size(), b + kBatch));
    for (auto& v : client.score_batch(part)) verdicts.push_back(std::move(v));
  }
  return verdicts;
}

std::vector<ScoredGroup> sample_and_score(const RunConfig& run, RolloutPool& rollouts,
                                          const reward::RewardClient& reward, const std::vector<const Prompt*>& prompts,
                                          const std::vector<uint64_t>& seeds, int64_t step, int64_t min_version,
                                          bool record_routes, SampleStats& stats) {
  const rollout::GenerationParams& params = run.rollout.sampling;
  std::vector<rollout::GeneratePrompt> requests;
  for (size_t i = 0; i < prompts.size(); ++i) {
    rollout::GeneratePrompt g;
    g.token_ids = prompts[i]->ids;
    g.n = run.rollout.group_size;
    g.seed = seeds.at(i);
    requests.push_back(std::move(g));
  }
  const int64_t created = unix_us();
  auto t0 = Clock::now();
  auto samples = rollouts.generate(requests, params, min_version, record_routes);
  stats.generate_s += seconds_since(t0);

  std::vector<ScoredGroup> groups(prompts.size());
  std::vector<reward::v1::ScoreRequest> score_requests;
  for (size_t i = 0; i < prompts.size(); ++i) {
    ScoredGroup& g = groups[i];
    g.run_id = run.run.name;
    g.step = step;
    g.prompt_id = prompts[i]->item.id;
    g.prompt_text = prompts[i]->text;
    g.prompt_token_ids.assign(prompts[i]->ids.begin(), prompts[i]->ids.end());
    g.reference_answer = prompts[i]->item.reference;
    g.created_us = created;
    for (auto& s : samples[i]) {
      Completion c;
      c.text = s.text;
      c.token_ids.assign(s.token_ids.begin(), s.token_ids.end());
      c.logprobs = s.logprobs;
      c.routes = std::move(s.routes);
      c.finish_reason = stored_finish(s.finish_reason);
      c.weight_version = s.weight_version;
      c.finished_us = unix_us();
      stats.generated_tokens += int64_t(s.token_ids.size());
      score_requests.push_back(
          score_request(run, *prompts[i], s.text, int64_t(s.token_ids.size()), score_requests.size()));
      g.completions.push_back(std::move(c));
    }
    if (record_routes) require_routes(g, "the rollouts were asked for them");
  }
  t0 = Clock::now();
  const std::vector<reward::v1::ScoreResponse> verdicts = score_all(reward, score_requests);
  stats.score_s += seconds_since(t0);
  size_t k = 0;
  for (auto& g : groups) {
    for (auto& c : g.completions) {
      const auto& v = verdicts.at(k++);
      if (v.error_code() != 0) {  // a verifier that failed or timed out scores 0, and is counted
        ++stats.reward_errors;
        c.reward = 0;
        c.reward_reason = kRewardErrorPrefix + std::to_string(v.error_code()) + ": " + v.error_message();
        continue;
      }
      c.reward = v.reward();
      c.correct = v.correct();
      c.reward_reason = v.reason();
      for (const auto& [name, value] : v.components()) c.reward_components[name] = value;
    }
    g.scored_us = unix_us();
  }
  return groups;
}

}  // namespace grpo
