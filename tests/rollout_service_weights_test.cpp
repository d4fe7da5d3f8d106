// UpdateWeights over a real RolloutServer on loopback (dsv3-tiny): the new version serves with
// exactly the new weights' log-probs (fp32, bf16 payloads; FP8 codes for an FP8 engine), in small
// chunks too; Generate calls running during updates never mix versions.
#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "model/checkpoint.h"
#include "rollout_service_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

std::map<std::string, at::Tensor> to_dtype(const std::map<std::string, at::Tensor>& state, at::ScalarType t) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, v] : state) out[name] = v.to(t);
  return out;
}

GenerateCall sampling_call(int64_t prompts, int64_t n, int64_t max_new, int64_t min_version = 0) {
  GenerateCall call;
  for (int64_t i = 0; i < prompts; ++i)
    call.prompts.push_back({random_prompt(6 + i, 512, 100 + static_cast<uint64_t>(i)), n, static_cast<uint64_t>(i)});
  call.params.sampling.temperature = 1.0;  // log-probs are then exactly log_softmax of the logits
  call.params.max_new_tokens = max_new;
  call.min_weight_version = min_version;
  return call;
}

std::vector<std::vector<int64_t>> prompts_of(const GenerateCall& call) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& p : call.prompts) out.push_back(p.token_ids);
  return out;
}

TEST(RolloutSvcWeights, UpdateThenGenerateServesTheNewWeights) {
  Served served(fixture_model());
  auto v1_model = other_weights(11);
  const std::map<std::string, at::Tensor> state = v1_model->state_dict();
  int64_t bytes = 0;
  for (const auto& [name, t] : state) bytes += t.nbytes();

  WeightUpdateStats st = served.client->update_weights(1, state, false, /*chunk_bytes=*/1000);
  EXPECT_EQ(st.version, 1);
  EXPECT_EQ(st.tensors, static_cast<int64_t>(state.size()));
  EXPECT_EQ(st.bytes, bytes);
  EXPECT_GT(st.send_seconds, 0);
  EXPECT_GE(st.apply_ms, 0);

  GenerateCall call = sampling_call(3, 2, 20, /*min_version=*/1);
  ServedMap done = generate_all(*served.client, call);
  ASSERT_EQ(done.size(), 6u);
  for (const auto& [key, c] : done) EXPECT_EQ(c.weight_version, 1);
  expect_logprobs_of_version(done, prompts_of(call), {{1, v1_model}});
  v1::StatusResponse s = served.client->status();
  EXPECT_EQ(s.weight_version(), 1);
  EXPECT_EQ(s.weight_updates(), 1);

  // A bf16 payload: the fp32 engine serves the bf16-rounded weights.
  auto v2_source = other_weights(12);
  const auto bf16_state = to_dtype(v2_source->state_dict(), at::kBFloat16);
  st = served.client->update_weights(2, bf16_state);
  EXPECT_EQ(st.bytes, bytes / 2) << "bf16 halves the payload";
  DeepseekModel rounded(v2_source->config());
  rounded.load_state(to_dtype(bf16_state, at::kFloat), "bf16-rounded");
  auto v2_model = shared_model(std::move(rounded));
  call.min_weight_version = 2;
  done = generate_all(*served.client, call);
  for (const auto& [key, c] : done) EXPECT_EQ(c.weight_version, 2);
  expect_logprobs_of_version(done, prompts_of(call), {{2, v2_model}});
}

TEST(RolloutSvcWeights, Fp8PayloadForAnFp8Engine) {
  Served served(fixture_model("fp8"));
  auto v1_model = other_weights(13);
  const auto state = v1_model->state_dict();
  WeightUpdateStats st = served.client->update_weights(1, state, /*fp8=*/true);
  int64_t quantized = 0, fp32_bytes = 0;
  for (const auto& [name, t] : state) {
    quantized += is_fp8_quantizable(name, t);
    fp32_bytes += t.nbytes();
  }
  ASSERT_GT(quantized, 0);
  EXPECT_EQ(st.tensors, static_cast<int64_t>(state.size()) + quantized) << "one scale tensor per quantised weight";
  EXPECT_LT(st.bytes, fp32_bytes / 2);
  EXPECT_EQ(served.client->status().model().dtype(), "fp8");

  // The same numbers as an in-process FP8 engine given the float weights (it quantises them the
  // same way, 128x128 blocks of e4m3).
  GenerateCall call = sampling_call(2, 3, 16, 1);
  ServedMap got = generate_all(*served.client, call);
  Engine local(fixture_model("fp8"), 0, EngineOptions{});
  local.set_weights(1, state);
  std::vector<Request> requests;
  for (const auto& p : call.prompts) {
    Request r{p.token_ids, p.n, call.params};
    r.params.sampling.seed = *p.seed;
    requests.push_back(r);
  }
  const std::vector<uint64_t> ids = local.submit(requests);
  CompletionMap want = by_key(local.run_until_idle());
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < ids.size(); ++i)
    for (int64_t k = 0; k < 3; ++k) {
      EXPECT_EQ(got.at({i, k}).weight_version, 1);
      EXPECT_EQ(got.at({i, k}).token_ids, want.at({ids[i], k}).token_ids);
      EXPECT_EQ(got.at({i, k}).logprobs, want.at({ids[i], k}).logprobs);
    }
}

TEST(RolloutSvcWeights, GenerateDuringUpdatesNeverMixesVersions) {
  EngineOptions eo;
  eo.max_seqs = 32;
  Served served(fixture_model(), eo);
  std::map<int64_t, std::shared_ptr<const DeepseekModel>> versions = {{0, fixture_model()}};
  versions[1] = other_weights(21);
  versions[2] = other_weights(22);
  GenerateCall call = sampling_call(8, 4, 160);
  call.params.stop_token_ids = {};
  call.timeout_ms = 120'000;
  auto running = std::async(std::launch::async, [&] { return generate_all(*served.client, call); });
  // Two updates land while the 32 samples are being generated.
  for (int64_t v = 1; v <= 2; ++v) {
    const int64_t before = served.client->status().generated_tokens();
    ASSERT_TRUE(served.wait_for([&](const v1::StatusResponse& s) { return s.generated_tokens() > before + 64; }));
    served.client->update_weights(v, versions[v]->state_dict());
  }
  ServedMap done = running.get();
  ASSERT_EQ(done.size(), 32u);
  std::map<int64_t, int> per_version;
  for (const auto& [key, c] : done) ++per_version[c.weight_version];
  EXPECT_GT(served.client->status().restarts(), 0) << "updates landed on unfinished samples";
  EXPECT_GT(per_version[2], 0) << "restarted samples finish on the newest weights";
  // Each completion's log-probs are those of the one version it reports: no sequence mixed
  // tokens of two versions.
  expect_logprobs_of_version(done, prompts_of(call), versions);
}

}  // namespace
