// RewardClient: calls a RewardService (proto/reward.proto) with deadlines and retries.
//
//   RewardClient client("127.0.0.1:50051", {.timeout_ms = 5000, .retries = 2});
//   v1::ScoreRequest req;  req.set_verifier("math");  req.set_completion(text);  req.set_reference("42");
//   v1::ScoreResponse r = client.score(req);          // throws RpcError on a non-OK status
//
// Unary calls (Score, ScoreBatch, ListVerifiers, Health) are retried only on UNAVAILABLE and
// DEADLINE_EXCEEDED, `retries` times, with doubling backoff; each attempt has its own deadline.
// Streams are not retried. The client is thread-safe; share one per server.
#pragma once
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proto/reward.grpc.pb.h"
#include "proto/rpc.h"
#include "reward/verifier.h"

namespace grpo::reward {

// RpcError and ClientOptions live in proto/rpc.h (shared with the rollout client).
using grpo::ClientOptions;
using grpo::RpcError;

// Thread-safe: all methods are const and may run concurrently. Owns its gRPC channel and stub.
class RewardClient {
 public:
  explicit RewardClient(std::string address, ClientOptions options = {});

  // timeout_ms > 0 overrides options().timeout_ms for this call's attempts.
  v1::ScoreResponse score(const v1::ScoreRequest& request, int64_t timeout_ms = 0) const;
  // Responses in request order; per-item failures are in their error_code / error_message.
  std::vector<v1::ScoreResponse> score_batch(const std::vector<v1::ScoreRequest>& requests,
                                             int64_t timeout_ms = 0) const;
  // Sends all requests on one ScoreStream and calls on_response for each reply as it arrives
  // (completion order; match them by id). Throws RpcError if the stream fails.
  void score_stream(const std::vector<v1::ScoreRequest>& requests,
                    const std::function<void(v1::ScoreResponse&&)>& on_response) const;
  std::vector<v1::VerifierInfo> list_verifiers() const;
  v1::HealthResponse health() const;

  const std::string& address() const { return address_; }
  const ClientOptions& options() const { return options_; }

 private:
  template <class Call>
  void with_retries(const char* method, int64_t timeout_ms, const Call& call) const;
  void set_deadline(grpc::ClientContext& context, int64_t timeout_ms) const;

  std::string address_;
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::RewardService::Stub> stub_;
};

}  // namespace grpo::reward
