// Sampling G completions per prompt from the rollout workers and scoring every one through the
// RewardService: what `grpo train` does for a step's groups (train/controller.h) and `grpo
// distill` for its prompt set (distill/distill.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dataset/prompt_dataset.h"
#include "learner/scored_group.h"
#include "proto/reward.pb.h"
#include "train/run_config.h"

namespace grpo {
class ChatTemplate;
class RolloutPool;
class Tokenizer;
namespace reward {
class RewardClient;
}

// A prompt ready to generate from: the dataset item, its rendered prompt and its token ids.
struct Prompt {
  PromptItem item;
  std::string text;
  std::vector<int64_t> ids;  // BOS first when the tokenizer has one
};

// `item` as one user message followed by the template's generation prompt, tokenized.
Prompt prepare_prompt(PromptItem item, const ChatTemplate& chat_template, const Tokenizer& tokenizer);

// The reward_reason of a completion whose verification failed (it scores 0) starts with this.
inline constexpr char kRewardErrorPrefix[] = "reward error ";

struct SampleStats {
  double generate_s = 0, score_s = 0;
  int64_t generated_tokens = 0;
  int64_t reward_errors = 0;  // verdicts that failed (scored 0)
};

// The reward request for one completion: the prompt's own verifier, or the run's default one
// (run.verifier) with the run's verifier options.
reward::v1::ScoreRequest score_request(const RunConfig& run, const Prompt& prompt, const std::string& completion,
                                       int64_t completion_tokens, size_t id);

// Scores `requests` in batches of 256 (small messages); verdicts in request order.
std::vector<reward::v1::ScoreResponse> score_all(const reward::RewardClient& client,
                                                 const std::vector<reward::v1::ScoreRequest>& requests);

// Throws InputError naming the group (step, prompt id) and the first completion without routes
// when one has none (routing replay from the rollout's routes needs them; `why` says who asked).
void require_routes(const ScoredGroup& g, const std::string& why);

// run.group_size samples of each prompt with the run's sampling settings (prompt i seeded with
// seeds[i]) on weights >= min_version, each scored. One group per prompt, in order, with
// run_id = run.name and `step`; a verdict that failed scores 0 with the error as its reason and is
// counted in stats.reward_errors. Times and token counts are added to `stats`. With
// record_routes, every completion carries the routes its rollout worker recorded; a completion
// that comes back without them is an InputError (require_routes).
std::vector<ScoredGroup> sample_and_score(const RunConfig& run, RolloutPool& rollouts,
                                          const reward::RewardClient& reward, const std::vector<const Prompt*>& prompts,
                                          const std::vector<uint64_t>& seeds, int64_t step, int64_t min_version,
                                          bool record_routes, SampleStats& stats);

}  // namespace grpo
