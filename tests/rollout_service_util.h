// Helpers shared by the RolloutService tests: the dsv3-tiny fixture served on a loopback port,
// a second weight version, collecting a Generate call, raw UpdateWeights streams, error codes.
#pragma once
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "model/pretrained.h"
#include "rollout/service/client.h"
#include "rollout/service/server.h"
#include "rollout_test_util.h"

namespace grpo::testing {

// The HF-written dsv3-tiny checkpoint (vocab 512, context 512, EOS 1), loaded once.
inline std::shared_ptr<const DeepseekModel> fixture_model(const std::string& dtype = "fp32") {
  static std::map<std::string, std::shared_ptr<const DeepseekModel>> models;
  auto& m = models[dtype];
  if (!m) m = shared_model(load_pretrained(fixture_dir(), ModelOptions::for_dtype(dtype)));
  return m;
}

// Other weights for the same architecture (random, seed `seed`), as a new version would be.
inline std::shared_ptr<const DeepseekModel> other_weights(uint64_t seed) {
  return shared_model(random_model(fixture_model()->config(), {}, seed));
}

// An engine on `model` behind a RolloutServer on 127.0.0.1:0, and a client for it.
struct Served {
  std::shared_ptr<rollout::Engine> engine;
  std::unique_ptr<rollout::RolloutServer> server;
  std::unique_ptr<rollout::RolloutClient> client;

  explicit Served(std::shared_ptr<const DeepseekModel> model, rollout::EngineOptions eo = {},
                  rollout::ServerOptions so = {}, ClientOptions co = {}) {
    engine = std::make_shared<rollout::Engine>(std::move(model), 0, eo);
    so.address = "127.0.0.1:0";
    server = std::make_unique<rollout::RolloutServer>(engine, so);
    server->start();
    client = std::make_unique<rollout::RolloutClient>(server->address(), co);
  }
  // Sends `chunks` as they are on one UpdateWeights stream.
  grpc::Status raw_update(const std::vector<rollout::v1::WeightChunk>& chunks) const {
    auto stub = rollout::v1::RolloutService::NewStub(
        grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    rollout::v1::UpdateWeightsResponse response;
    auto writer = stub->UpdateWeights(&context, &response);
    for (const auto& c : chunks)
      if (!writer->Write(c)) break;
    writer->WritesDone();
    return writer->Finish();
  }
  // Polls Status until pred holds (at most 20 s).
  bool wait_for(const std::function<bool(const rollout::v1::StatusResponse&)>& pred) const {
    for (int i = 0; i < 2000; ++i) {
      if (pred(client->status())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
};

// The first message of an UpdateWeights stream (part `part` of `parts`).
inline rollout::v1::WeightChunk begin(int64_t version, int64_t tensors, int64_t total_bytes = 0, int64_t part = 0,
                                      int64_t parts = 0) {
  rollout::v1::WeightChunk c;
  c.mutable_begin()->set_version(version);
  c.mutable_begin()->set_tensor_count(tensors);
  c.mutable_begin()->set_total_bytes(total_bytes);
  c.mutable_begin()->set_part_index(part);
  c.mutable_begin()->set_part_count(parts);
  return c;
}

// A chunk with `bytes` zero bytes at `offset`, starting tensor `name` when one is given.
inline rollout::v1::WeightChunk piece(std::optional<std::string> name, int dtype, std::vector<int64_t> shape,
                                      int64_t offset, size_t bytes) {
  rollout::v1::WeightChunk c;
  if (name) {
    c.mutable_tensor()->set_name(*name);
    c.mutable_tensor()->set_dtype(static_cast<rollout::v1::DType>(dtype));
    for (int64_t d : shape) c.mutable_tensor()->add_shape(d);
  }
  c.set_offset(offset);
  c.set_data(std::string(bytes, '\0'));
  return c;
}

// (prompt index, sample) -> completion
using ServedMap = std::map<std::pair<size_t, int64_t>, rollout::Completion>;

inline ServedMap generate_all(const rollout::RolloutClient& client, const rollout::GenerateCall& call) {
  ServedMap out;
  client.generate(call, [&](size_t prompt, rollout::Completion&& c) {
    auto key = std::make_pair(prompt, c.sample_index);
    EXPECT_EQ(out.count(key), 0u) << "duplicate completion";
    out[key] = std::move(c);
  });
  return out;
}

// The code of the RpcError `f` throws (OK if none); its message in *message.
inline grpc::StatusCode rpc_code(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const RpcError& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return grpc::OK;
}

// Every completion's log-probs equal DeepseekModel::logprobs of the weights of the version it
// reports (sampling at T = 1 without truncation reports exactly those).
inline void expect_logprobs_of_version(const ServedMap& done, const std::vector<std::vector<int64_t>>& prompts,
                                       const std::map<int64_t, std::shared_ptr<const DeepseekModel>>& versions,
                                       double tol = 1e-4) {
  for (const auto& [key, c] : done) {
    ASSERT_TRUE(versions.count(c.weight_version)) << "unknown version " << c.weight_version;
    const std::vector<float> want = model_logprobs(*versions.at(c.weight_version), prompts[key.first], c.token_ids);
    ASSERT_EQ(c.logprobs.size(), want.size());
    for (size_t t = 0; t < want.size(); ++t)
      ASSERT_NEAR(c.logprobs[t], want[t], tol) << "prompt " << key.first << " sample " << key.second << " token " << t
                                               << " (version " << c.weight_version << ")";
  }
}

}  // namespace grpo::testing
