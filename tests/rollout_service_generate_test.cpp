// Generate over a real RolloutServer on loopback (dsv3-tiny): streamed completions equal the
// in-process engine's for the same seeds, greedy equals the engine's and the no-cache greedy
// reference, a call that goes away frees its cache pages, min_weight_version waits for an update.
#include <gtest/gtest.h>

#include <future>

#include "rollout_service_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

struct Abandon {};  // thrown from on_completion to walk away from a call

GenerateCall sampled_call() {
  GenerateCall call;
  call.prompts = {
      {random_prompt(5, 512, 1), 4, 11}, {random_prompt(9, 512, 2), 2, 12}, {random_prompt(13, 512, 3), 3, {}}};
  call.params.sampling = {0.8, 0.9, 50, 99};
  call.params.max_new_tokens = 24;
  return call;
}

TEST(RolloutSvcGenerate, StreamedCompletionsEqualTheInProcessEngine) {
  Served served(fixture_model());
  const GenerateCall call = sampled_call();
  ServedMap got = generate_all(*served.client, call);

  Engine engine(fixture_model(), 0, EngineOptions{});
  std::vector<Request> requests;
  for (const GeneratePrompt& p : call.prompts) {
    Request r{p.token_ids, p.n, call.params};
    if (p.seed) r.params.sampling.seed = *p.seed;
    requests.push_back(r);
  }
  const std::vector<uint64_t> ids = engine.submit(requests);
  CompletionMap want = by_key(engine.run_until_idle());

  ASSERT_EQ(got.size(), 9u);
  for (size_t i = 0; i < call.prompts.size(); ++i) {
    for (int64_t k = 0; k < call.prompts[i].n; ++k) {
      ASSERT_TRUE(got.count({i, k})) << "prompt " << i << " sample " << k;
      const Completion& a = got.at({i, k});
      const Completion& b = want.at({ids[i], k});
      EXPECT_EQ(a.token_ids, b.token_ids) << "prompt " << i << " sample " << k;
      EXPECT_EQ(a.logprobs, b.logprobs) << "the same batches: the same numbers";
      EXPECT_EQ(a.finish_reason, b.finish_reason);
      EXPECT_EQ(a.weight_version, 0);
      EXPECT_EQ(a.prompt_tokens, static_cast<int64_t>(call.prompts[i].token_ids.size()));
    }
  }
  // Prompt 2 drew with the shared seed 99; given its own seed 13 it draws other samples.
  GenerateCall reseeded = call;
  reseeded.prompts = {{call.prompts[2].token_ids, 3, 13}};
  ServedMap other = generate_all(*served.client, reseeded);
  int same = 0;
  for (int64_t k = 0; k < 3; ++k) same += other.at({0, k}).token_ids == got.at({2, k}).token_ids;
  EXPECT_LT(same, 3) << "a per-prompt seed overrides the shared one";
}

TEST(RolloutSvcGenerate, GreedyEqualsTheEngineAndTheFullForwardReference) {
  Served served(fixture_model());
  GenerateCall call;
  call.prompts = {{random_prompt(8, 512, 21), 2, {}}, {random_prompt(3, 512, 22), 1, {}}};
  call.params.sampling.temperature = 0;
  call.params.max_new_tokens = 16;
  ServedMap got = generate_all(*served.client, call);
  const DeepseekModel& m = *fixture_model();
  for (size_t i = 0; i < call.prompts.size(); ++i) {
    const std::vector<int64_t> want = greedy_reference(m, call.prompts[i].token_ids, 16, m.config().eos_token_ids);
    const std::vector<float> want_lp = model_logprobs(m, call.prompts[i].token_ids, want);
    for (int64_t k = 0; k < call.prompts[i].n; ++k) {
      const Completion& c = got.at({i, k});
      EXPECT_EQ(c.token_ids, want) << "prompt " << i << " sample " << k;
      ASSERT_EQ(c.logprobs.size(), want_lp.size());
      for (size_t t = 0; t < want_lp.size(); ++t) EXPECT_NEAR(c.logprobs[t], want_lp[t], 1e-4);
    }
  }
  // The HF greedy continuation of the fixture (reference.safetensors) through the service.
  auto ref = load_weights(fixture_dir() + "/reference.safetensors", at::kFloat);
  const std::vector<int64_t> prompt = row(ref.at("greedy_prompt"), 0), full = row(ref.at("greedy_output"), 0);
  call.prompts = {{prompt, 1, {}}};
  call.params.max_new_tokens = static_cast<int64_t>(full.size() - prompt.size());
  ServedMap hf = generate_all(*served.client, call);
  EXPECT_EQ(hf.at({0, 0}).token_ids, std::vector<int64_t>(full.begin() + prompt.size(), full.end()));
}

TEST(RolloutSvcGenerate, AbandonedCallsFreeTheirPages) {
  Served served(fixture_model());
  GenerateCall call;
  for (uint64_t i = 0; i < 4; ++i) call.prompts.push_back({random_prompt(20, 512, 30 + i), 8, i});
  call.params.max_new_tokens = 400;
  call.params.stop_token_ids = {};
  // 1. The caller stops reading after its first completion (on_completion throws): the client
  //    cancels the call, the server drops the other 31 samples from the engine.
  int seen = 0;
  EXPECT_THROW(served.client->generate(call,
                                       [&](size_t, Completion&&) {
                                         ++seen;
                                         throw Abandon{};
                                       }),
               Abandon);
  EXPECT_EQ(seen, 1);
  EXPECT_TRUE(served.wait_for([](const v1::StatusResponse& s) {
    return s.pages_used() == 0 && s.unfinished_samples() == 0 && s.generate_calls() == 0;
  })) << served.client->status().DebugString();
  v1::StatusResponse s = served.client->status();
  EXPECT_LT(s.completions(), 32) << "the dropped samples never completed";
  EXPECT_EQ(s.running_sequences() + s.waiting_sequences() + s.queued_requests(), 0);

  // 2. The deadline passes mid-generation.
  call.timeout_ms = 150;
  std::string message;
  EXPECT_EQ(rpc_code([&] { generate_all(*served.client, call); }, &message), grpc::DEADLINE_EXCEEDED) << message;
  EXPECT_TRUE(served.wait_for([](const v1::StatusResponse& s) {
    return s.pages_used() == 0 && s.unfinished_samples() == 0 && s.generate_calls() == 0;
  })) << served.client->status().DebugString();

  // The server keeps serving.
  GenerateCall small;
  small.prompts = {{random_prompt(4, 512, 40), 2, {}}};
  small.params.max_new_tokens = 5;
  EXPECT_EQ(generate_all(*served.client, small).size(), 2u);
}

TEST(RolloutSvcGenerate, MinWeightVersionWaitsForTheUpdate) {
  Served served(fixture_model());
  GenerateCall call;
  call.prompts = {{random_prompt(6, 512, 50), 3, {}}};
  call.params.max_new_tokens = 12;
  call.min_weight_version = 1;
  // No update comes: FAILED_PRECONDITION just before the deadline, not DEADLINE_EXCEEDED.
  call.timeout_ms = 400;
  std::string message;
  EXPECT_EQ(rpc_code([&] { generate_all(*served.client, call); }, &message), grpc::FAILED_PRECONDITION);
  EXPECT_NE(message.find("min_weight_version: the worker's weights are version 0, the call needs 1"), std::string::npos)
      << message;
  EXPECT_EQ(served.client->status().version_waits(), 0);

  // An update arrives while the call waits: it runs on the new weights.
  call.timeout_ms = 30'000;
  auto pending = std::async(std::launch::async, [&] { return generate_all(*served.client, call); });
  ASSERT_TRUE(served.wait_for([](const v1::StatusResponse& s) { return s.version_waits() == 1; }));
  EXPECT_EQ(served.client->status().generated_tokens(), 0) << "nothing ran on the old weights";
  auto v1_model = other_weights(11);
  served.client->update_weights(1, v1_model->state_dict());
  ServedMap done = pending.get();
  ASSERT_EQ(done.size(), 3u);
  for (const auto& [key, c] : done) EXPECT_EQ(c.weight_version, 1);
  expect_logprobs_of_version(done, {call.prompts[0].token_ids}, {{1, v1_model}});
}

TEST(RolloutSvcGenerate, StatusDescribesTheModelAndTheEngine) {
  EngineOptions eo;
  eo.max_seqs = 12;
  eo.num_pages = 100;
  Served served(fixture_model(), eo);
  v1::StatusResponse s = served.client->status();
  EXPECT_EQ(s.model().model_type(), "deepseek_v3");
  EXPECT_EQ(s.model().vocab_size(), 512);
  EXPECT_EQ(s.model().hidden_size(), 64);
  EXPECT_EQ(s.model().num_hidden_layers(), 3);
  EXPECT_EQ(s.model().kv_lora_rank(), 16);
  EXPECT_EQ(s.model().q_lora_rank(), 32);
  EXPECT_EQ(s.model().n_routed_experts(), 8);
  EXPECT_EQ(s.model().dtype(), "fp32");
  EXPECT_EQ(s.max_seqs(), 12);
  EXPECT_EQ(s.max_context(), 512);
  EXPECT_EQ(s.pages_total(), 100);
  EXPECT_EQ(s.weight_version(), 0);
  GenerateCall call;
  call.prompts = {{random_prompt(4, 512, 60), 3, {}}};
  call.params.max_new_tokens = 7;
  call.params.stop_token_ids = {};
  ServedMap done = generate_all(*served.client, call);
  int64_t tokens = 0;
  for (const auto& [k, c] : done) tokens += static_cast<int64_t>(c.token_ids.size());
  ASSERT_TRUE(served.wait_for([](const v1::StatusResponse& s) { return s.completions() == 3; }));
  s = served.client->status();
  EXPECT_EQ(s.generated_tokens(), tokens);
  EXPECT_GT(s.peak_pages_used(), 0);
  EXPECT_EQ(s.pages_used(), 0);
  EXPECT_GE(s.uptime_ms(), 0);
}

}  // namespace
