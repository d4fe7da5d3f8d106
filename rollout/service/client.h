// RolloutClient: the learner's side of proto/rollout.proto.
//
//   RolloutClient rollout("127.0.0.1:50061", {.timeout_ms = 600'000});
//   GenerateCall call;
//   call.prompts.push_back({prompt_ids, /*n=*/8, /*seed=*/step * 1000 + i});
//   call.params.max_new_tokens = 1024;
//   call.min_weight_version = version;
//   rollout.generate(call, [&](size_t prompt, Completion&& c) { ... });  // as they finish
//   rollout.update_weights(version + 1, model.state_dict(), /*fp8=*/true);
//
// Errors are RpcError (proto/rpc.h) with the server's status code; the message names the
// server, the method and the field or tensor (see proto/rollout.proto for the codes). Status is
// retried on UNAVAILABLE / DEADLINE_EXCEEDED (options.retries), Generate only on UNAVAILABLE
// before its first completion arrived (a later retry would repeat the finished samples);
// UpdateWeights is never retried (resend it: an update that was applied answers
// FAILED_PRECONDITION). The client is thread-safe; share one per server.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proto/rollout.grpc.pb.h"
#include "proto/rpc.h"
#include "rollout/engine.h"

namespace grpo::rollout {

struct GeneratePrompt {
  std::vector<int64_t> token_ids;
  int64_t n = 1;                 // samples (the group size G)
  std::optional<uint64_t> seed;  // overrides params.sampling.seed for this prompt
};

struct GenerateCall {
  std::vector<GeneratePrompt> prompts;
  GenerationParams params;
  int64_t min_weight_version = 0;  // the worker waits (within the deadline) for weights this new
  int64_t timeout_ms = 0;          // deadline of the whole call; 0: ClientOptions::timeout_ms
  bool record_routes = false;      // ask for each completion's routes (Completion::routes)
};

// Weight bytes a message of UpdateWeights carries at most, unless told otherwise.
inline constexpr int64_t kWeightChunkBytes = 4 << 20;

// Which part of a multi-part weight update one call sends (UpdateBegin in proto/rollout.proto):
// part `index` of `count`; {0, 1} is the whole update.
struct UpdatePart {
  int64_t index = 0, count = 1;
};

struct WeightUpdateStats {
  int64_t version, tensors, bytes;  // this call's part, as the server staged it (FP8 scales count as tensors)
  double send_seconds;              // the whole call: quantising, sending, waiting for the other parts, applying
  double apply_ms;                  // the server's Engine::set_weights
};

class RolloutClient {
 public:
  explicit RolloutClient(std::string address, ClientOptions options = {});

  // Blocks until every sample of every prompt arrived; calls on_completion(prompt_index,
  // completion) from the calling thread as they stream in (completion.request_id unused). Throws
  // RpcError (also when the stream ends without every sample, or sends one twice or out of
  // range, or routes whose sizes do not match the prompt and completion); an exception from
  // on_completion cancels the call and is rethrown.
  void generate(const GenerateCall& call, const std::function<void(size_t, Completion&&)>& on_completion) const;

  // Sends `state` (HF names; float32 / bfloat16 / float16 tensors, any layout) as weight version
  // `version` in chunks of at most chunk_bytes. With fp8, the tensors an FP8 checkpoint quantises
  // (is_fp8_quantizable) go as e4m3 codes + `_scale_inv` (128×128 blocks, model/fp8.h) — for an
  // FP8 engine. Throws InputError for a tensor it cannot send (dtype, inf/NaN under fp8) before
  // anything is sent, RpcError for the server's refusal. With `part`, `state` is that part of the
  // version (the other parts come from other calls, often other processes); the call returns
  // once the server applied every part (or dropped the version: RpcError).
  WeightUpdateStats update_weights(int64_t version, const std::map<std::string, at::Tensor>& state, bool fp8 = false,
                                   int64_t chunk_bytes = kWeightChunkBytes, UpdatePart part = {}) const;

  v1::StatusResponse status() const;

  const std::string& address() const { return address_; }
  const ClientOptions& options() const { return options_; }

 private:
  std::string peer() const { return "rollout service at " + address_; }

  std::string address_;
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::RolloutService::Stub> stub_;
};

}  // namespace grpo::rollout
