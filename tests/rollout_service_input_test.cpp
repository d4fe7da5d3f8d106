// Bad input to a real RolloutServer (issue 4): empty prompts, prompts longer than the context,
// max_new_tokens 0 or huge, bad sampling parameters, weight updates with wrong names, shapes,
// dtypes, an old version, broken chunk streams, too many bytes -> each a gRPC status whose code
// and message are checked; afterwards the server still serves the old weights, unchanged.
#include <gtest/gtest.h>

#include <optional>

#include "rollout_service_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

class RolloutSvcInput : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions eo;
    eo.max_seqs = 8;
    eo.max_new_tokens_limit = 1000;
    eo.max_queued_requests = 3;
    ServerOptions so;
    so.max_prompts_per_call = 4;
    so.max_update_bytes = 2 << 20;  // the fixture holds ~0.9 MiB of fp32 weights
    served_ = std::make_unique<Served>(fixture_model(), eo, so);
    good_.prompts = {{random_prompt(6, 512, 7), 2, {}}};
    good_.params.sampling.temperature = 0;
    good_.params.max_new_tokens = 8;
  }

  // Code and message of a Generate call.
  grpc::StatusCode generate(const GenerateCall& call, std::string* message) const {
    return rpc_code([&] { generate_all(*served_->client, call); }, message);
  }
  grpc::StatusCode update(int64_t version, const std::map<std::string, at::Tensor>& state, std::string* message,
                          bool fp8 = false) const {
    return rpc_code([&] { served_->client->update_weights(version, state, fp8); }, message);
  }
  grpc::Status raw_update(const std::vector<v1::WeightChunk>& chunks) const { return served_->raw_update(chunks); }

  // The server still answers with the fixture's weights (version 0), nothing half-updated.
  void expect_old_weights_serving() const {
    ServedMap done = generate_all(*served_->client, good_);
    ASSERT_EQ(done.size(), 2u);
    const DeepseekModel& m = *fixture_model();
    const std::vector<int64_t> want = greedy_reference(m, good_.prompts[0].token_ids, 8, m.config().eos_token_ids);
    const std::vector<float> want_lp = model_logprobs(m, good_.prompts[0].token_ids, want);
    for (const auto& [key, c] : done) {
      EXPECT_EQ(c.weight_version, 0);
      EXPECT_EQ(c.token_ids, want);
      for (size_t t = 0; t < want_lp.size() && t < c.logprobs.size(); ++t) EXPECT_NEAR(c.logprobs[t], want_lp[t], 1e-4);
    }
    const v1::StatusResponse s = served_->client->status();
    EXPECT_EQ(s.weight_version(), 0);
    EXPECT_EQ(s.weight_updates(), 0);
    EXPECT_EQ(s.pages_used(), 0);
  }

  std::unique_ptr<Served> served_;
  GenerateCall good_;
};

struct BadCall {
  std::string what;
  std::function<void(GenerateCall&)> edit;
  grpc::StatusCode code;
  std::string message;  // expected inside the error message
};

TEST_F(RolloutSvcInput, BadGenerateCallsNameTheField) {
  const std::vector<BadCall> cases = {
      {"no prompts", [](GenerateCall& c) { c.prompts.clear(); }, grpc::INVALID_ARGUMENT,
       "prompts: empty (a Generate call needs at least one prompt)"},
      {"too many prompts", [](GenerateCall& c) { c.prompts.assign(5, c.prompts[0]); }, grpc::INVALID_ARGUMENT,
       "prompts: 5 prompts exceed max_prompts_per_call (4)"},
      {"empty prompt",
       [](GenerateCall& c) {
         c.prompts.push_back({{}, 1, {}});
       },
       grpc::INVALID_ARGUMENT, "prompts[1]: prompt: empty"},
      {"prompt longer than the context", [](GenerateCall& c) { c.prompts[0].token_ids.assign(513, 5); },
       grpc::INVALID_ARGUMENT, "prompts[0]: prompt: 513 tokens exceed the context of 512 (max_context)"},
      {"token outside the vocabulary", [](GenerateCall& c) { c.prompts[0].token_ids[2] = 512; }, grpc::INVALID_ARGUMENT,
       "prompts[0]: prompt[2]: token id 512 is outside the vocabulary [0, 512)"},
      {"n = 0", [](GenerateCall& c) { c.prompts[0].n = 0; }, grpc::INVALID_ARGUMENT,
       "prompts[0]: n: the number of samples must be in [1, 8] (max_seqs), got 0"},
      {"max_new_tokens = 0", [](GenerateCall& c) { c.params.max_new_tokens = 0; }, grpc::INVALID_ARGUMENT,
       "prompts[0]: max_new_tokens: must be >= 1, got 0"},
      {"max_new_tokens huge", [](GenerateCall& c) { c.params.max_new_tokens = int64_t{1} << 40; },
       grpc::INVALID_ARGUMENT, "max_new_tokens: 1099511627776 exceeds the limit of 1000 (max_new_tokens_limit)"},
      {"negative temperature", [](GenerateCall& c) { c.params.sampling.temperature = -1; }, grpc::INVALID_ARGUMENT,
       "temperature"},
      {"top_p = 0", [](GenerateCall& c) { c.params.sampling.top_p = 0; }, grpc::INVALID_ARGUMENT, "top_p"},
      {"negative top_k", [](GenerateCall& c) { c.params.sampling.top_k = -1; }, grpc::INVALID_ARGUMENT, "top_k"},
      {"stop id outside the vocabulary",
       [](GenerateCall& c) {
         c.params.stop_token_ids = {7, 9999};
       },
       grpc::INVALID_ARGUMENT, "stop_token_ids[1]: token id 9999 is outside the vocabulary"},
      {"stop string without a tokenizer", [](GenerateCall& c) { c.params.stop_strings = {"\n\n"}; },
       grpc::INVALID_ARGUMENT, "stop_strings: need a tokenizer"},
      {"negative min_weight_version", [](GenerateCall& c) { c.min_weight_version = -1; }, grpc::INVALID_ARGUMENT,
       "min_weight_version: must be >= 0, got -1"},
      {"more prompts than the engine queue takes", [](GenerateCall& c) { c.prompts.assign(4, c.prompts[0]); },
       grpc::RESOURCE_EXHAUSTED, "more exceed max_queued_requests (3)"},
      {"weights that never come", [](GenerateCall& c) { c.min_weight_version = 3, c.timeout_ms = 300; },
       grpc::FAILED_PRECONDITION, "the worker's weights are version 0, the call needs 3"},
      {"less time than the version-wait margin", [](GenerateCall& c) { c.min_weight_version = 1, c.timeout_ms = 50; },
       grpc::FAILED_PRECONDITION, "min_weight_version"},
  };
  for (const BadCall& bad : cases) {
    GenerateCall call = good_;
    bad.edit(call);
    std::string message;
    EXPECT_EQ(generate(call, &message), bad.code) << bad.what << ": " << message;
    EXPECT_NE(message.find(bad.message), std::string::npos) << bad.what << ": " << message;
    EXPECT_NE(message.find("rollout service at " + served_->server->address() + ": Generate: "), std::string::npos)
        << message;
  }
  EXPECT_EQ(served_->client->status().generated_tokens(), 0) << "no bad call ran";
  expect_old_weights_serving();
}

TEST_F(RolloutSvcInput, BadWeightUpdatesKeepTheOldWeights) {
  const auto good = other_weights(31)->state_dict();
  const std::string first = good.begin()->first;
  const std::string q_a = "model.layers.1.self_attn.q_a_proj.weight";
  ASSERT_TRUE(good.count(q_a));
  std::string message;

  auto state = good;
  state["model.layers.1.self_attn.q_a_proj.wieght"] = state.at(q_a);
  EXPECT_EQ(update(1, state, &message), grpc::INVALID_ARGUMENT) << message;
  EXPECT_NE(message.find("weights version 1: unexpected tensors: model.layers.1.self_attn.q_a_proj.wieght"),
            std::string::npos)
      << message;

  state = good;
  state.erase(q_a);
  EXPECT_EQ(update(1, state, &message), grpc::INVALID_ARGUMENT) << message;
  EXPECT_NE(message.find("missing tensors: " + q_a), std::string::npos) << message;

  state = good;
  state[q_a] = state.at(q_a).t().contiguous();
  EXPECT_EQ(update(1, state, &message), grpc::INVALID_ARGUMENT) << message;
  EXPECT_NE(message.find(q_a + ": expected shape [32, 64], got [64, 32]"), std::string::npos) << message;

  // FP8 codes to an fp32 engine.
  EXPECT_EQ(update(1, good, &message, /*fp8=*/true), grpc::INVALID_ARGUMENT) << message;
  EXPECT_NE(message.find("_scale_inv beside them, but this model holds Float weights"), std::string::npos) << message;

  // A dtype the client cannot send: refused before anything goes out.
  state = good;
  state[q_a] = state.at(q_a).to(at::kLong);
  EXPECT_THROW(served_->client->update_weights(1, state), InputError);

  // Old and equal versions.
  for (int64_t v : {0, -3}) {
    EXPECT_EQ(update(v, good, &message), grpc::FAILED_PRECONDITION) << message;
    EXPECT_NE(message.find("version: " + std::to_string(v) + " is not above the worker's newest version 0"),
              std::string::npos)
        << message;
  }

  // More bytes than max_update_bytes (2 MiB), announced in begin.total_bytes.
  state = good;
  state["padding"] = at::zeros({600'000});
  EXPECT_EQ(update(1, state, &message), grpc::RESOURCE_EXHAUSTED) << message;
  EXPECT_NE(message.find("above the server's max_update_bytes (2097152)"), std::string::npos) << message;
  expect_old_weights_serving();
}

struct BadStream {
  std::string what;
  std::vector<v1::WeightChunk> chunks;
  grpc::StatusCode code;
  std::string message;
};

TEST_F(RolloutSvcInput, BrokenChunkStreamsAreRefused) {
  const int f32 = v1::FLOAT32;
  const std::vector<BadStream> cases = {
      {"empty stream", {}, grpc::INVALID_ARGUMENT, "begin: the stream ended before it (empty update)"},
      {"no begin", {piece("a", f32, {1}, 0, 4)}, grpc::INVALID_ARGUMENT, "begin: the first message must carry it"},
      {"two begins", {begin(1, 1), begin(1, 1)}, grpc::INVALID_ARGUMENT, "begin: only the first message may carry it"},
      {"no tensors", {begin(1, 0)}, grpc::INVALID_ARGUMENT, "begin.tensor_count: must be >= 1, got 0"},
      {"old version",
       {begin(0, 1)},
       grpc::FAILED_PRECONDITION,
       "version: 0 is not above the worker's newest version 0"},
      {"announced too large",
       {begin(1, 1, 3 << 20)},
       grpc::RESOURCE_EXHAUSTED,
       "begin.total_bytes: 3145728 bytes, above the server's max_update_bytes (2097152)"},
      {"data before any tensor",
       {begin(1, 1), piece(std::nullopt, 0, {}, 0, 4)},
       grpc::INVALID_ARGUMENT,
       "data: no tensor has begun"},
      {"unknown dtype",
       {begin(1, 1), piece("a", 9, {1}, 0, 4)},
       grpc::INVALID_ARGUMENT,
       "tensor 'a': dtype 9 is not one of FLOAT32, BFLOAT16, FLOAT16, FLOAT8_E4M3"},
      {"unspecified dtype", {begin(1, 1), piece("a", 0, {1}, 0, 4)}, grpc::INVALID_ARGUMENT, "tensor 'a': dtype 0"},
      {"negative dimension",
       {begin(1, 1), piece("a", f32, {2, -1}, 0, 0)},
       grpc::INVALID_ARGUMENT,
       "tensor 'a': negative dimension"},
      {"no name", {begin(1, 1), piece("", f32, {1}, 0, 4)}, grpc::INVALID_ARGUMENT, "tensor.name: empty (tensor 0)"},
      {"repeated name",
       {begin(1, 2), piece("a", f32, {1}, 0, 4), piece("a", f32, {1}, 0, 4)},
       grpc::INVALID_ARGUMENT,
       "tensor 'a': sent twice"},
      {"chunk out of order",
       {begin(1, 1), piece("a", f32, {4}, 8, 8)},
       grpc::INVALID_ARGUMENT,
       "tensor 'a': chunk at offset 8, expected 0 (chunks out of order or missing)"},
      {"chunk repeated",
       {begin(1, 1), piece("a", f32, {4}, 0, 8), piece(std::nullopt, 0, {}, 0, 8)},
       grpc::INVALID_ARGUMENT,
       "tensor 'a': chunk at offset 0, expected 8"},
      {"chunk overruns",
       {begin(1, 1), piece("a", f32, {2}, 0, 12)},
       grpc::INVALID_ARGUMENT,
       "tensor 'a': chunk of 12 bytes at offset 0 overruns its 8 bytes (shape [2])"},
      {"tensor cut short",
       {begin(1, 1), piece("a", f32, {4}, 0, 8)},
       grpc::INVALID_ARGUMENT,
       "tensor 'a': 8 of 16 bytes received when the stream ended (truncated)"},
      {"next tensor too early",
       {begin(1, 2), piece("a", f32, {4}, 0, 8), piece("b", f32, {1}, 0, 4)},
       grpc::INVALID_ARGUMENT,
       "tensor 'a': 8 of 16 bytes received before the next tensor began (truncated)"},
      {"tensors missing",
       {begin(1, 2), piece("a", f32, {1}, 0, 4)},
       grpc::INVALID_ARGUMENT,
       "the stream ended after 1 of 2 tensors (begin.tensor_count; truncated)"},
      {"more tensors than announced",
       {begin(1, 1), piece("a", f32, {1}, 0, 4), piece("b", f32, {1}, 0, 4)},
       grpc::INVALID_ARGUMENT,
       "tensor 'b': more tensors than the 1 announced (begin.tensor_count)"},
      {"too large, unannounced",
       {begin(1, 1), piece("big", f32, {1 << 20}, 0, 0)},
       grpc::RESOURCE_EXHAUSTED,
       "tensor 'big': the update reaches 4194304 bytes, above the server's max_update_bytes (2097152)"},
      {"complete but not the model's",
       {begin(1, 1), piece("a", f32, {1}, 0, 4)},
       grpc::INVALID_ARGUMENT,
       "weights version 1: missing tensors: "},
  };
  for (const BadStream& bad : cases) {
    const grpc::Status status = raw_update(bad.chunks);
    EXPECT_EQ(status.error_code(), bad.code) << bad.what << ": " << status.error_message();
    EXPECT_NE(status.error_message().find(bad.message), std::string::npos)
        << bad.what << ": " << status.error_message();
  }
  expect_old_weights_serving();
}

TEST_F(RolloutSvcInput, OneUpdateAtATime) {
  auto stub =
      v1::RolloutService::NewStub(grpc::CreateChannel(served_->server->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::UpdateWeightsResponse response;
  auto writer = stub->UpdateWeights(&context, &response);
  ASSERT_TRUE(writer->Write(begin(1, 2)));
  ASSERT_TRUE(served_->wait_for([](const v1::StatusResponse& s) { return s.updating(); }));
  std::string message;
  EXPECT_EQ(update(1, other_weights(41)->state_dict(), &message), grpc::ABORTED) << message;
  EXPECT_NE(message.find("another UpdateWeights call is in progress"), std::string::npos) << message;
  writer->WritesDone();
  const grpc::Status first = writer->Finish();
  EXPECT_EQ(first.error_code(), grpc::INVALID_ARGUMENT) << first.error_message();
  EXPECT_FALSE(served_->client->status().updating());
  expect_old_weights_serving();
}

}  // namespace
