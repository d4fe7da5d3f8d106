#include "reward/client.h"

#include <chrono>
#include <thread>

namespace grpo::reward {

RewardClient::RewardClient(std::string address, ClientOptions options)
    : address_(std::move(address)), options_(options) {
  channel_ = make_channel(address_, options_);
  stub_ = v1::RewardService::NewStub(channel_);
}

void RewardClient::set_deadline(grpc::ClientContext& context, int64_t timeout_ms) const {
  grpo::set_deadline(context, options_, timeout_ms);
}

template <class Call>
void RewardClient::with_retries(const char* method, int64_t timeout_ms, const Call& call) const {
  call_with_retries("reward service at " + address_, method, options_, timeout_ms, call);
}

v1::ScoreResponse RewardClient::score(const v1::ScoreRequest& request, int64_t timeout_ms) const {
  v1::ScoreResponse response;
  with_retries("Score", timeout_ms, [&](grpc::ClientContext& c) { return stub_->Score(&c, request, &response); });
  return response;
}

std::vector<v1::ScoreResponse> RewardClient::score_batch(const std::vector<v1::ScoreRequest>& requests,
                                                         int64_t timeout_ms) const {
  v1::ScoreBatchRequest batch;
  for (const auto& r : requests) *batch.add_requests() = r;
  v1::ScoreBatchResponse response;
  with_retries("ScoreBatch", timeout_ms,
               [&](grpc::ClientContext& c) { return stub_->ScoreBatch(&c, batch, &response); });
  return {std::make_move_iterator(response.mutable_responses()->begin()),
          std::make_move_iterator(response.mutable_responses()->end())};
}

void RewardClient::score_stream(const std::vector<v1::ScoreRequest>& requests,
                                const std::function<void(v1::ScoreResponse&&)>& on_response) const {
  grpc::ClientContext context;
  set_deadline(context, 0);
  auto stream = stub_->ScoreStream(&context);
  std::thread writer([&] {
    for (const auto& r : requests)
      if (!stream->Write(r)) break;  // the stream failed; Finish() says why
    stream->WritesDone();
  });
  v1::ScoreResponse response;
  while (stream->Read(&response)) on_response(std::move(response));
  writer.join();
  grpc::Status status = stream->Finish();
  if (!status.ok()) throw rpc_error("reward service at " + address_, "ScoreStream", status);
}

std::vector<v1::VerifierInfo> RewardClient::list_verifiers() const {
  v1::ListVerifiersResponse response;
  with_retries("ListVerifiers", 0,
               [&](grpc::ClientContext& c) { return stub_->ListVerifiers(&c, v1::ListVerifiersRequest(), &response); });
  return {response.verifiers().begin(), response.verifiers().end()};
}

v1::HealthResponse RewardClient::health() const {
  v1::HealthResponse response;
  with_retries("Health", 0, [&](grpc::ClientContext& c) { return stub_->Health(&c, v1::HealthRequest(), &response); });
  return response;
}

}  // namespace grpo::reward
