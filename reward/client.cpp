#include "reward/client.h"

#include <chrono>
#include <thread>

namespace grpo::reward {
namespace {

const char* code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK: return "OK";
    case grpc::CANCELLED: return "CANCELLED";
    case grpc::UNKNOWN: return "UNKNOWN";
    case grpc::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND: return "NOT_FOUND";
    case grpc::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::ABORTED: return "ABORTED";
    case grpc::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::INTERNAL: return "INTERNAL";
    case grpc::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::DATA_LOSS: return "DATA_LOSS";
    case grpc::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN_CODE";
  }
}

bool retryable(grpc::StatusCode code) { return code == grpc::UNAVAILABLE || code == grpc::DEADLINE_EXCEEDED; }

}  // namespace

RewardClient::RewardClient(std::string address, ClientOptions options)
    : address_(std::move(address)), options_(options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  args.SetMaxSendMessageSize(options_.max_message_bytes);
  // Our own retry loop decides; gRPC's transparent retries would hide the attempt count.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // Reconnect promptly after a server restart instead of waiting out a long backoff.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  channel_ = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
  stub_ = v1::RewardService::NewStub(channel_);
}

void RewardClient::set_deadline(grpc::ClientContext& context, int64_t timeout_ms) const {
  if (timeout_ms <= 0) timeout_ms = options_.timeout_ms;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
}

template <class Call>
void RewardClient::with_retries(const char* method, int64_t timeout_ms, const Call& call) const {
  int64_t backoff = options_.backoff_ms;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext context;
    set_deadline(context, timeout_ms);
    grpc::Status status = call(context);
    if (status.ok()) return;
    if (!retryable(status.error_code()) || attempt > options_.retries)
      throw RpcError(status.error_code(), "reward service at " + address_ + ": " + method + ": " +
                                              code_name(status.error_code()) +
                                              (attempt > 1 ? " after " + std::to_string(attempt) + " attempts" : "") +
                                              ": " + status.error_message());
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
    backoff *= 2;
  }
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
  with_retries("ScoreBatch", timeout_ms, [&](grpc::ClientContext& c) { return stub_->ScoreBatch(&c, batch, &response); });
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
  if (!status.ok())
    throw RpcError(status.error_code(), "reward service at " + address_ + ": ScoreStream: " +
                                            code_name(status.error_code()) + ": " + status.error_message());
}

std::vector<v1::VerifierInfo> RewardClient::list_verifiers() const {
  v1::ListVerifiersResponse response;
  with_retries("ListVerifiers", 0, [&](grpc::ClientContext& c) {
    return stub_->ListVerifiers(&c, v1::ListVerifiersRequest(), &response);
  });
  return {response.verifiers().begin(), response.verifiers().end()};
}

v1::HealthResponse RewardClient::health() const {
  v1::HealthResponse response;
  with_retries("Health", 0, [&](grpc::ClientContext& c) { return stub_->Health(&c, v1::HealthRequest(), &response); });
  return response;
}

}  // namespace grpo::reward
