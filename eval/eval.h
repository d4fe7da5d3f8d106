// Evaluation metrics over n sampled answers per prompt (pure functions; `grpo eval` samples and
// scores, apps/cmd_eval.cpp).
//
//   pass@k  the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained
//           on Code", eq. 1): with n samples of which c are correct,
//             pass@k = 1 − C(n−c, k) / C(n, k) = 1 − Π_{i=n−c+1..n} (1 − k/i),
//           averaged over prompts. pass@1 = c/n, the mean over samples.
//   maj@k   majority vote (self-consistency, Wang et al. 2022) over the first k samples'
//           extracted answers (exact strings after trimming whitespace; samples with no
//           extracted answer do not vote). The prompt counts as solved when the winning answer's
//           first sample is correct. Tie rule: among answers with the most votes, the one that
//           appeared first (lowest sample index) wins. No votes at all: not solved.
// Every k must be in 1..n for every prompt (InputError otherwise).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace grpo {

// One scored sample.
struct EvalSample {
  bool correct = false;
  std::string extracted;  // the verifier's extracted final answer ("" = none)
  double reward = 0.0;
  bool format_ok = false;
  int64_t tokens = 0;      // response length in tokens
  bool truncated = false;  // finish reason "length": max_new_tokens or the context limit
};

// Chen et al.'s estimator for one prompt: n samples, c correct, 1 <= k <= n.
double pass_at_k(int64_t n, int64_t c, int64_t k);

// Whether the majority answer among samples[0..k) is correct (tie rule above); 1 <= k <= size.
bool majority_correct(const std::vector<EvalSample>& samples, int64_t k);

struct EvalSummary {
  int64_t prompts = 0, samples = 0;
  double pass1 = 0;                   // mean over all samples
  std::map<int64_t, double> pass_at;  // k -> mean over prompts of pass_at_k
  std::map<int64_t, double> maj_at;   // k -> fraction of prompts whose majority answer is correct
  double mean_reward = 0, mean_tokens = 0;
  double format_rate = 0;     // fraction of samples with format_ok
  double answer_rate = 0;     // fraction of samples with an extracted answer
  double truncated_rate = 0;  // fraction of samples cut by length (see EvalSample)
};

// per_prompt[i] = the samples of prompt i (every prompt at least max(ks) samples). Throws
// InputError for an empty input, a prompt without samples, or a k outside 1..its sample count.
EvalSummary summarize_eval(const std::vector<std::vector<EvalSample>>& per_prompt, const std::vector<int64_t>& ks);

}  // namespace grpo
