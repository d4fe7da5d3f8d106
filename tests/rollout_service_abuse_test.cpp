// Requests a rollout worker must refuse (issue: "no request may crash or stall a server"): weight
// updates whose tensors hold NaN or infinity (fp32, bf16 and FP8 codes) or names the model does
// not have answer INVALID_ARGUMENT naming the tensor, and the worker keeps serving its old version
// with finite log-probs, then takes the next good version; malformed payloads are INVALID_ARGUMENT.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "raw_call.h"
#include "rollout_service_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

GenerateCall one_call(int64_t min_version) {
  GenerateCall call;
  call.prompts.push_back({random_prompt(6, 512, 7), 2, 3});
  call.params.sampling.temperature = 1.0;
  call.params.max_new_tokens = 6;
  call.min_weight_version = min_version;
  return call;
}

// Expects update_weights(version, state) to fail with INVALID_ARGUMENT mentioning `needle`.
void expect_refused(const Served& served, int64_t version, const std::map<std::string, at::Tensor>& state,
                    const std::string& needle) {
  try {
    served.client->update_weights(version, state);
    ADD_FAILURE() << "accepted: " << needle;
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), grpc::StatusCode::INVALID_ARGUMENT) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(RolloutSvcAbuse, NonFiniteOrUnknownTensorsAreRefusedAndTheOldVersionServes) {
  Served served(fixture_model());
  const std::map<std::string, at::Tensor> good = other_weights(5)->state_dict();
  const std::string victim = "model.layers.0.self_attn.o_proj.weight";
  ASSERT_TRUE(good.count(victim));

  auto with = [&](const std::string& name, const at::Tensor& t) {
    auto s = good;
    s[name] = t;
    return s;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  at::Tensor one_nan = good.at(victim).clone();
  one_nan.view(-1)[17] = nan;
  expect_refused(served, 1, with(victim, one_nan), "'" + victim + "' holds NaN or infinite values");
  expect_refused(served, 1, with(victim, at::full_like(good.at(victim), inf)), "holds NaN or infinite");
  expect_refused(served, 1, with(victim, at::full_like(good.at(victim), -inf).to(at::kBFloat16)),
                 "holds NaN or infinite");
  std::map<std::string, at::Tensor> all_nan;
  for (const auto& [name, t] : good) all_nan[name] = at::full_like(t, nan);
  expect_refused(served, 1, all_nan, "holds NaN or infinite");
  // Names the model does not have, among them those a checkpoint may hold and loading skips.
  expect_refused(served, 1, with("bogus.weight", at::zeros({2})), "unexpected tensors: bogus.weight");
  for (const std::string name :
       {"model.layers.99.mlp.gate_proj.weight", "model.layers.0.self_attn.rotary_emb.inv_freq"})
    expect_refused(served, 1, with(name, at::zeros({2})), "tensor '" + name + "' is not a tensor of this deepseek");

  // Still version 0, serving finite log-probs; then a good version is taken.
  EXPECT_EQ(served.client->status().weight_version(), 0);
  for (const auto& [key, c] : generate_all(*served.client, one_call(0))) {
    EXPECT_EQ(c.weight_version, 0);
    for (float lp : c.logprobs) EXPECT_TRUE(std::isfinite(lp));
  }
  served.client->update_weights(1, good, false);
  // The engine swaps the weights in at its next step.
  EXPECT_TRUE(served.wait_for([](const v1::StatusResponse& st) { return st.weight_version() == 1; }));
}

// An FP8 engine: codes with the e4m3 NaN pattern (S.1111.111) are refused like float NaN. The
// client would not send them (it quantises floats itself), so they go as raw chunks.
TEST(RolloutSvcAbuse, Fp8CodesWithNaNAreRefused) {
  Served served(fixture_model("fp8"));
  std::map<std::string, at::Tensor> state = fixture_model("fp8")->state_dict();  // e4m3 codes + scales
  std::string codes;
  for (const auto& [name, t] : state)
    if (t.scalar_type() == at::kFloat8_e4m3fn) codes = name;
  ASSERT_FALSE(codes.empty());
  at::Tensor bad = state.at(codes).clone();
  bad.view(at::kByte).view(-1)[3] = 0xff;
  state[codes] = bad;

  // Version 1 as one chunk per tensor, each in its own dtype.
  auto chunks_of = [](const std::map<std::string, at::Tensor>& tensors) {
    const std::map<at::ScalarType, v1::DType> wire = {{at::kFloat, v1::FLOAT32},
                                                      {at::kBFloat16, v1::BFLOAT16},
                                                      {at::kHalf, v1::FLOAT16},
                                                      {at::kFloat8_e4m3fn, v1::FLOAT8_E4M3}};
    std::vector<v1::WeightChunk> chunks{begin(1, int64_t(tensors.size()))};
    for (const auto& [name, t] : tensors) {
      const at::Tensor c = t.contiguous();
      chunks.push_back(piece(name, wire.at(c.scalar_type()), c.sizes().vec(), 0, 0));
      chunks.back().set_data(std::string(static_cast<const char*>(c.data_ptr()), c.nbytes()));
    }
    return chunks;
  };
  const grpc::Status s = served.raw_update(chunks_of(state));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("'" + codes + "' holds NaN or infinite values"), std::string::npos)
      << s.error_message();
  EXPECT_EQ(served.client->status().weight_version(), 0);
  state[codes] = fixture_model("fp8")->state_dict().at(codes);  // the same chunks, finite: taken
  EXPECT_TRUE(served.raw_update(chunks_of(state)).ok());
  // The engine swaps the weights in at its next step.
  EXPECT_TRUE(served.wait_for([](const v1::StatusResponse& st) { return st.weight_version() == 1; }));
}

TEST(RolloutSvcAbuse, MalformedPayloadsAreInvalidArgument) {
  Served served(fixture_model());
  for (const char* method : {"Generate", "Status"}) {
    const grpc::Status s = raw_call(served.server->address(), std::string("/grpo.rollout.v1.RolloutService/") + method,
                                    malformed_protobuf());
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method << ": " << s.error_message();
    EXPECT_NE(s.error_message().find("malformed"), std::string::npos) << method << ": " << s.error_message();
  }
  EXPECT_EQ(served.client->status().weight_version(), 0);  // still answering
  EXPECT_EQ(generate_all(*served.client, one_call(0)).size(), 2u);
}

}  // namespace
