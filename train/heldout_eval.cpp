#include "train/heldout_eval.h"

#include "train/prompt_schedule.h"

namespace grpo {

EvalSummary evaluate_heldout(const RunConfig& run, RolloutPool& rollouts, const reward::RewardClient& reward,
                             const std::vector<Prompt>& heldout, int64_t version) {
  rollout::GenerationParams params;
  params.max_new_tokens = run.rollout.sampling.max_new_tokens;
  params.sampling.temperature = run.train.eval_temperature;
  std::vector<rollout::GeneratePrompt> prompts;
  for (const auto& p : heldout) {
    rollout::GeneratePrompt g;
    g.token_ids = p.ids;
    g.n = run.train.eval_samples;
    g.seed = group_seed(run.run.seed ^ 0x5eedull, 0, p.item.id);  // the same draws at every evaluation
    prompts.push_back(std::move(g));
  }
  const auto samples = rollouts.generate(prompts, params, version);
  std::vector<reward::v1::ScoreRequest> requests;
  std::vector<std::vector<EvalSample>> per_prompt(heldout.size());
  for (size_t i = 0; i < heldout.size(); ++i)
    for (const auto& s : samples[i]) {
      requests.push_back(score_request(run, heldout[i], s.text, int64_t(s.token_ids.size()), requests.size()));
      per_prompt[i].emplace_back().tokens = static_cast<int64_t>(s.token_ids.size());
    }
  const auto verdicts = score_all(reward, requests);
  size_t k = 0;
  for (auto& prompt : per_prompt)
    for (EvalSample& e : prompt) {
      const auto& v = verdicts.at(k++);
      e.correct = v.correct();
      e.reward = v.reward();
      auto f = v.components().find("format");
      e.format_ok = f != v.components().end() && f->second > 0;
    }
  return summarize_eval(per_prompt, {1});
}

}  // namespace grpo
