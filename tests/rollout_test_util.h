// Helpers shared by the rollout tests: models, the no-cache greedy reference, engine runs.
#pragma once
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <vector>

#include "model/pretrained.h"
#include "model_test_util.h"
#include "rollout/engine.h"

namespace grpo::testing {

inline std::shared_ptr<const DeepseekModel> shared_model(DeepseekModel m) {
  return std::make_shared<const DeepseekModel>(std::move(m));
}

// Greedy continuation by repeated full forwards over the whole sequence (no cache).
inline std::vector<int64_t> greedy_reference(const DeepseekModel& m, std::vector<int64_t> ids, int64_t new_tokens,
                                             const std::vector<int64_t>& stop = {}) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < new_tokens; ++i) {
    at::Tensor logits = m.forward(at::tensor(ids, at::kLong).unsqueeze(0));  // [1, T, V]
    int64_t next = logits[0][-1].argmax().item<int64_t>();
    out.push_back(next);
    ids.push_back(next);
    if (std::find(stop.begin(), stop.end(), next) != stop.end()) break;
  }
  return out;
}

// DeepseekModel::logprobs of `completion` after `prompt`.
inline std::vector<float> model_logprobs(const DeepseekModel& m, const std::vector<int64_t>& prompt,
                                         const std::vector<int64_t>& completion) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> ids = prompt;
  ids.insert(ids.end(), completion.begin(), completion.end());
  at::Tensor lp = m.logprobs(at::tensor(ids, at::kLong).unsqueeze(0))[0].to(at::kCPU, at::kFloat);  // [T-1]
  lp = lp.narrow(0, static_cast<int64_t>(prompt.size()) - 1, static_cast<int64_t>(completion.size())).contiguous();
  return std::vector<float>(lp.data_ptr<float>(), lp.data_ptr<float>() + lp.numel());
}

inline std::vector<int64_t> random_prompt(int64_t len, int64_t vocab, uint64_t seed) {
  return row(random_ids(1, len, vocab, seed), 0);
}

// (request id, sample) -> completion
using CompletionMap = std::map<std::pair<uint64_t, int64_t>, rollout::Completion>;
inline CompletionMap by_key(std::vector<rollout::Completion> done) {
  CompletionMap m;
  for (auto& c : done) {
    auto key = std::make_pair(c.request_id, c.sample_index);
    EXPECT_EQ(m.count(key), 0u) << "duplicate completion";
    m[key] = std::move(c);
  }
  return m;
}

}  // namespace grpo::testing
