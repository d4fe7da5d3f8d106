// Engine::cancel: a cancelled request leaves nothing behind — its pages are freed at the next
// step, none of its completions reach poll() (not even finished, unpolled ones), and the requests
// it shared the batch with finish exactly as they would alone. Engine::submit of several
// requests is all or none.
#include <gtest/gtest.h>

#include "common/error.h"
#include "rollout_test_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

class EngineCancel : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = small_like_config();
    model_ = shared_model(random_model(config_));
    opt_.page_size = 4;
    opt_.num_pages = 64;
    opt_.max_seqs = 16;
    opt_.max_batched_tokens = 64;
    opt_.max_queued_requests = 4;
  }
  Request request(uint64_t seed, int64_t n = 4, int64_t max_new = 24) const {
    Request r;
    r.prompt = random_prompt(9, config_.vocab_size, seed);
    r.n = n;
    r.params.sampling.temperature = 1.0;
    r.params.sampling.seed = seed;
    r.params.max_new_tokens = max_new;
    return r;
  }

  ModelConfig config_;
  std::shared_ptr<const DeepseekModel> model_;
  EngineOptions opt_;
};

TEST_F(EngineCancel, RunningRequestFreesItsPagesAndOthersAreUnaffected) {
  Engine engine(model_, 0, opt_);
  const uint64_t keep = engine.submit(request(1));
  const uint64_t drop = engine.submit(request(2));
  for (int i = 0; i < 4; ++i) engine.step();
  const EngineStats mid = engine.stats();
  ASSERT_EQ(mid.unfinished_samples, 8) << "both groups are generating";
  ASSERT_GT(mid.pages_used, 0);

  engine.cancel(drop);
  engine.step();
  EXPECT_EQ(engine.stats().unfinished_samples, 4) << "the cancelled group is gone after one step";
  CompletionMap done = by_key(engine.run_until_idle());
  const EngineStats end = engine.stats();
  EXPECT_EQ(end.pages_used, 0) << "every page is back in the pool";
  EXPECT_EQ(end.running_sequences + end.waiting_sequences + end.unfinished_samples, 0);
  ASSERT_EQ(done.size(), 4u);
  for (const auto& [key, c] : done) EXPECT_EQ(key.first, keep) << "nothing of the cancelled request is polled";

  // The kept request's samples are those of a run without the other request.
  Engine alone(model_, 0, opt_);
  const uint64_t id = alone.submit(request(1));
  CompletionMap want = by_key(alone.run_until_idle());
  for (int64_t k = 0; k < 4; ++k) {
    const Completion& a = done.at({keep, k});
    const Completion& b = want.at({id, k});
    EXPECT_EQ(a.token_ids, b.token_ids) << "sample " << k;
    ASSERT_EQ(a.logprobs.size(), b.logprobs.size());
    for (size_t t = 0; t < a.logprobs.size(); ++t) EXPECT_NEAR(a.logprobs[t], b.logprobs[t], 1e-4);
  }
}

TEST_F(EngineCancel, QueuedRequestNeverRuns) {
  Engine engine(model_, 0, opt_);
  const uint64_t id = engine.submit(request(3));
  engine.cancel(id);
  EXPECT_EQ(engine.stats().queued_requests, 0);
  EXPECT_FALSE(engine.step()) << "no work is left";
  EXPECT_TRUE(engine.poll().empty());
  EXPECT_EQ(engine.stats().generated_tokens, 0);
  EXPECT_EQ(engine.stats().peak_pages_used, 0);
}

TEST_F(EngineCancel, FinishedButUnpolledCompletionsAreDiscarded) {
  Engine engine(model_, 0, opt_);
  const uint64_t a = engine.submit(request(4, 2, 3));
  const uint64_t b = engine.submit(request(5, 2, 3));
  while (engine.step()) {}
  engine.cancel(a);
  engine.cancel(a);      // twice: no effect
  engine.cancel(12345);  // unknown: ignored
  CompletionMap done = by_key(engine.poll());
  ASSERT_EQ(done.size(), 2u);
  for (const auto& [key, c] : done) EXPECT_EQ(key.first, b);
  EXPECT_FALSE(engine.step());
  EXPECT_EQ(engine.stats().pages_used, 0);
}

TEST_F(EngineCancel, CancelEverythingMidwayLeavesAnEmptyEngine) {
  opt_.num_pages = 12;  // tight: forces preemptions, so cancelled sequences also sit in `waiting`
  Engine engine(model_, 0, opt_);
  std::vector<uint64_t> ids = engine.submit(std::vector<Request>{request(6, 4, 30), request(7, 4, 30)});
  for (int i = 0; i < 12; ++i) engine.step();
  for (uint64_t id : ids) engine.cancel(id);
  engine.step();
  const EngineStats s = engine.stats();
  EXPECT_EQ(s.pages_used, 0);
  EXPECT_EQ(s.running_sequences + s.waiting_sequences + s.unfinished_samples, 0);
  EXPECT_FALSE(engine.step());
  EXPECT_TRUE(engine.poll().empty());
}

TEST_F(EngineCancel, SubmitSeveralIsAllOrNone) {
  Engine engine(model_, 0, opt_);
  Request bad = request(8);
  bad.prompt.clear();
  try {
    engine.submit(std::vector<Request>{request(9), bad});
    FAIL() << "accepted an empty prompt";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("requests[1]: prompt: empty"), std::string::npos) << e.what();
  }
  EXPECT_EQ(engine.stats().queued_requests, 0) << "the good request was not queued either";
  std::vector<Request> five(5, request(10));
  EXPECT_THROW(engine.submit(five), EngineFull) << "5 requests exceed max_queued_requests = 4";
  EXPECT_EQ(engine.stats().queued_requests, 0);
  std::vector<uint64_t> ids = engine.submit(std::vector<Request>(4, request(10)));
  ASSERT_EQ(ids.size(), 4u);
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_EQ(ids[i], ids[0] + i);
  EXPECT_EQ(by_key(engine.run_until_idle()).size(), 16u);
}

}  // namespace
