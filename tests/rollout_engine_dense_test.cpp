// The paged engine on a dense decoder (its cache rows are keys | values, model/causal_lm.h): the
// paged, continuously batched decode gives the tokens of repeated full forwards without a cache;
// seeded samples do not depend on the batch; stop ids, EOS, max_new_tokens and bad requests as
// for the DeepSeek model.
#include <gtest/gtest.h>

#include "model_ckpt_testutil.h"
#include "model_test_util.h"
#include "rollout/engine.h"

namespace grpo::rollout {
namespace {

using grpo::testing::dense_config_json;
using grpo::testing::random_dense;

// Every request to completion on an engine (small pages, so sequences span several), ordered by
// request then sample, request_id = the request's index.
std::vector<Completion> generate(const DenseDecoder& m, const std::vector<Request>& requests, int64_t max_seqs = 8) {
  EngineOptions o;
  o.page_size = 4;
  o.num_pages = 256;
  o.max_seqs = max_seqs;
  o.max_batched_tokens = 32;
  Engine engine(std::make_shared<DenseDecoder>(m), 0, o);
  const std::vector<uint64_t> ids = engine.submit(requests);
  std::vector<Completion> out = engine.run_until_idle();
  for (Completion& c : out) c.request_id = std::find(ids.begin(), ids.end(), c.request_id) - ids.begin();
  std::sort(out.begin(), out.end(), [](const Completion& a, const Completion& b) {
    return std::tie(a.request_id, a.sample_index) < std::tie(b.request_id, b.sample_index);
  });
  return out;
}

// Greedy continuation by full forwards of the whole sequence, one token at a time.
std::vector<int64_t> greedy_reference(const DenseDecoder& m, std::vector<int64_t> ids, int64_t steps) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> out;
  for (int64_t t = 0; t < steps; ++t) {
    at::Tensor logits = m.logits(at::tensor(ids, at::kLong).unsqueeze(0));  // [1, T, V]
    const int64_t next = logits[0][-1].argmax().item<int64_t>();
    out.push_back(next);
    ids.push_back(next);
  }
  return out;
}

Request request(std::vector<int64_t> prompt, int64_t n, double temperature, int64_t max_new, uint64_t seed = 0) {
  Request r;
  r.prompt = std::move(prompt);
  r.n = n;
  r.params.max_new_tokens = max_new;
  r.params.sampling.temperature = temperature;
  r.params.sampling.seed = seed;
  return r;
}

TEST(EngineDense, GreedyEqualsRepeatedFullForwards) {
  for (const std::string type : {"llama", "qwen2"}) {
    // No EOS, so every completion runs max_new_tokens.
    const DenseDecoder m = random_dense(dense_config_json(type, {{"eos_token_id", nullptr}}));
    const std::vector<std::vector<int64_t>> prompts{{5, 9, 3, 22, 17, 8, 30}, {4}, {12, 13, 14}};
    std::vector<Request> reqs;
    for (const auto& p : prompts) reqs.push_back(request(p, 1, 0.0, 12));
    const std::vector<Completion> out = generate(m, reqs);
    ASSERT_EQ(out.size(), 3u);
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(out[i].request_id, i);
      EXPECT_EQ(out[i].token_ids, greedy_reference(m, prompts[i], 12)) << type << " prompt " << i;
      EXPECT_EQ(out[i].finish_reason, FinishReason::kLength);
      ASSERT_EQ(out[i].logprobs.size(), 12u);
      // Greedy log-probs are the model's own (T = 1) log-softmax at the chosen token.
      std::vector<int64_t> seq = prompts[i];
      seq.insert(seq.end(), out[i].token_ids.begin(), out[i].token_ids.end());
      const at::Tensor lp = m.logprobs(at::tensor(seq, at::kLong).unsqueeze(0))[0];
      for (size_t t = 0; t < 12; ++t)
        EXPECT_NEAR(out[i].logprobs[t], lp[prompts[i].size() - 1 + t].item<double>(), 1e-4);
    }
  }
}

TEST(EngineDense, SeededSamplesDoNotDependOnTheBatch) {
  const DenseDecoder m = random_dense(dense_config_json("llama", {{"eos_token_id", nullptr}}));
  std::vector<Request> reqs{request({3, 4, 5}, 3, 1.0, 10, 7), request({8, 9, 10, 11, 12}, 2, 0.8, 10, 9)};
  reqs[1].params.sampling.top_p = 0.9;
  const auto together = generate(m, reqs, 8);
  const auto fewer_at_once = generate(m, reqs, 3);  // the most samples of a request
  ASSERT_EQ(together.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(together[i].token_ids, fewer_at_once[i].token_ids) << i;
    EXPECT_EQ(together[i].sample_index, fewer_at_once[i].sample_index);
  }
  EXPECT_NE(together[0].token_ids, together[1].token_ids);  // samples differ (40-token vocab, 10 draws)
  EXPECT_NE(generate(m, {request({3, 4, 5}, 1, 1.0, 10, 8)})[0].token_ids, together[0].token_ids);
}

TEST(EngineDense, StopIdsEosAndBadRequests) {
  const DenseDecoder m = random_dense(dense_config_json("qwen2", {{"eos_token_id", nullptr}}));
  const std::vector<int64_t> greedy = greedy_reference(m, {6, 7}, 8);
  Request r = request({6, 7}, 1, 0.0, 8);
  r.params.stop_token_ids = {greedy[3]};
  const auto stopped = generate(m, {r});
  const auto first = std::find(greedy.begin(), greedy.end(), greedy[3]) - greedy.begin();
  EXPECT_EQ(stopped[0].token_ids, std::vector<int64_t>(greedy.begin(), greedy.begin() + first + 1));
  EXPECT_EQ(stopped[0].finish_reason, FinishReason::kStop);
  // The same token as the model's EOS: finish reason eos.
  const DenseDecoder with_eos = random_dense(dense_config_json("qwen2", {{"eos_token_id", greedy[3]}}));
  EXPECT_EQ(generate(with_eos, {request({6, 7}, 1, 0.0, 8)})[0].finish_reason, FinishReason::kEos);

  ckpt_test::expect_input_error(
      [&] {
        generate(m, {request({6, 7}, 1, 0.0, 8), request({}, 1, 0.0, 8)});
      },
      {"requests[1]", "prompt: empty"});
  ckpt_test::expect_input_error(
      [&] {
        generate(m, {request({6, 40}, 1, 0.0, 8)});
      },
      {"requests[0]", "prompt[1]", "outside the vocabulary"});
  ckpt_test::expect_input_error([&] { generate(m, {request({6}, 0, 0.0, 8)}); }, {"requests[0]", "n:"});
}

}  // namespace
}  // namespace grpo::rollout
