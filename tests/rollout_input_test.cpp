// Bad input to the engine API: every bad request is an InputError naming the field and leaves
// the engine serving; bad weight updates are InputErrors and change nothing.
#include <gtest/gtest.h>

#include "common/error.h"
#include "rollout_test_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

class EngineInput : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = small_like_config();
    model_ = shared_model(random_model(config_));
    EngineOptions opt;
    opt.max_seqs = 8;
    opt.max_new_tokens_limit = 64;
    opt.max_context = 100;
    opt.page_size = 4;
    opt.num_pages = 20;  // 80 token slots
    opt.max_queued_requests = 3;
    engine_ = std::make_unique<Engine>(model_, 5, opt);
    good_.prompt = random_prompt(7, config_.vocab_size, 91);
    good_.n = 2;
    good_.params.sampling.temperature = 0;
    good_.params.max_new_tokens = 6;
  }

  // The error message of submitting `r` (empty when accepted).
  std::string submit_error(const Request& r) {
    try {
      engine_->submit(r);
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  }

  // The engine still answers a good request with the greedy reference.
  void expect_serving(int64_t version) {
    engine_->submit(good_);
    std::vector<Completion> done = engine_->run_until_idle();
    ASSERT_EQ(done.size(), 2u);
    for (const Completion& c : done) {
      EXPECT_EQ(c.token_ids, greedy_reference(*model_, good_.prompt, 6));
      EXPECT_EQ(c.weight_version, version);
    }
  }

  ModelConfig config_;
  std::shared_ptr<const DeepseekModel> model_;
  std::unique_ptr<Engine> engine_;
  Request good_;
};

TEST_F(EngineInput, BadRequestsNameTheField) {
  struct Bad {
    std::function<void(Request&)> edit;
    std::string message;
  };
  const std::vector<Bad> bad = {
      {[](Request& r) { r.prompt.clear(); }, "prompt: empty (a request needs at least one token)"},
      {[](Request& r) { r.prompt.assign(101, 5); }, "prompt: 101 tokens exceed the context of 100 (max_context)"},
      {[](Request& r) { r.prompt[3] = 3000; }, "prompt[3]: token id 3000 is outside the vocabulary [0, 3000)"},
      {[](Request& r) { r.prompt[0] = -1; }, "prompt[0]: token id -1 is outside the vocabulary [0, 3000)"},
      {[](Request& r) { r.n = 0; }, "n: the number of samples must be in [1, 8] (max_seqs), got 0"},
      {[](Request& r) { r.n = 9; }, "n: the number of samples must be in [1, 8] (max_seqs), got 9"},
      {[](Request& r) { r.params.max_new_tokens = 0; }, "max_new_tokens: must be >= 1, got 0"},
      {[](Request& r) { r.params.max_new_tokens = 1000000; },
       "max_new_tokens: 1000000 exceeds the limit of 64 (max_new_tokens_limit)"},
      {[](Request& r) {
         r.prompt.assign(60, 5);
         r.params.max_new_tokens = 30;
       },
       "max_new_tokens: prompt (60) + max_new_tokens (30) need 23 cache pages, the engine has 20 (num_pages)"},
      {[](Request& r) { r.params.sampling.temperature = -1; }, "temperature: must be a finite number >= 0"},
      {[](Request& r) { r.params.sampling.top_p = 0; }, "top_p: must be in (0, 1]"},
      {[](Request& r) { r.params.sampling.top_k = -3; }, "top_k: must be >= 0, got -3"},
      {[](Request& r) {
         r.params.stop_token_ids = {4, 99999};
       },
       "stop_token_ids[1]: token id 99999 is outside the vocabulary [0, 3000)"},
      {[](Request& r) { r.params.stop_strings = {"</answer>"}; },
       "stop_strings: need a tokenizer (the engine has none)"},
  };
  for (const Bad& b : bad) {
    Request r = good_;
    b.edit(r);
    std::string got = submit_error(r);
    EXPECT_EQ(got.substr(0, b.message.size()), b.message) << got;
  }
  EngineStats s = engine_->stats();
  EXPECT_EQ(s.queued_requests + s.waiting_sequences + s.running_sequences, 0) << "nothing was queued";
  expect_serving(5);
}

TEST_F(EngineInput, AFullQueueIsRefusedUntilTheEngineCatchesUp) {
  for (int i = 0; i < 3; ++i) engine_->submit(good_);
  EXPECT_THROW(engine_->submit(good_), EngineFull);
  EXPECT_EQ(engine_->run_until_idle().size(), 6u);
  expect_serving(5);
}

TEST_F(EngineInput, BadWeightUpdatesChangeNothing) {
  const std::map<std::string, at::Tensor> good = random_model(config_, {}, 13).state_dict();
  auto update_error = [&](const std::map<std::string, at::Tensor>& state, int64_t version) {
    try {
      engine_->set_weights(version, state);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string w = "model.layers.1.mlp.experts.3.down_proj.weight";
  auto wrong_name = good;
  wrong_name["model.layers.1.mlp.experts.3.down_proj.weights"] = wrong_name.at(w);
  wrong_name.erase(w);
  EXPECT_EQ(update_error(wrong_name, 6), "weights version 6: missing tensors: " + w);
  auto extra = good;
  extra["model.layers.1.mlp.bogus.weight"] = at::zeros({2});
  EXPECT_EQ(update_error(extra, 6), "weights version 6: unexpected tensors: model.layers.1.mlp.bogus.weight");
  auto shape = good;
  shape[w] = at::zeros({64, 31});
  EXPECT_EQ(update_error(shape, 6), "weights version 6: " + w + ": expected shape [64, 32], got [64, 31]");
  auto dtype = good;
  dtype[w] = at::zeros({64, 32}, at::kInt);
  EXPECT_EQ(update_error(dtype, 6), "weights version 6: " + w + ": expected a floating-point tensor, got Int");
  EXPECT_EQ(update_error(good, 5), "version: 5 is not above the latest version 5");
  EXPECT_EQ(update_error(good, 2), "version: 2 is not above the latest version 5");
  expect_serving(5);  // still the original weights and version
  EXPECT_EQ(engine_->stats().weight_version, 5);
}

TEST(EngineOptionsCheck, BadOptionsNameTheOption) {
  auto model = shared_model(random_model(tiny_config()));
  auto error = [&](EngineOptions o) {
    try {
      Engine e(model, 0, o);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EngineOptions o;
  o.page_size = 0;
  EXPECT_EQ(error(o), "engine options: page_size must be > 0");
  o = {};
  o.max_batched_tokens = 8;
  EXPECT_EQ(error(o), "engine options: max_batched_tokens (8) must be >= max_seqs (64)");
  o = {};
  o.num_pages = -1;
  EXPECT_EQ(error(o), "engine options: num_pages must be > 0");
}

}  // namespace
