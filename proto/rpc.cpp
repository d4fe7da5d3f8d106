#include "proto/rpc.h"

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "common/host_port.h"

namespace grpo {

const char* status_code_name(grpc::StatusCode code) {
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

std::shared_ptr<grpc::Channel> make_channel(const std::string& address, const ClientOptions& options) {
  check_port(address, "address", 1);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

void set_deadline(grpc::ClientContext& context, const ClientOptions& options, int64_t timeout_ms) {
  if (timeout_ms <= 0) timeout_ms = options.timeout_ms;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
}

RpcError rpc_error(const std::string& peer, const char* method, const grpc::Status& status, int attempts) {
  return RpcError(status.error_code(), peer + ": " + method + ": " + status_code_name(status.error_code()) +
                                           (attempts > 1 ? " after " + std::to_string(attempts) + " attempts" : "") +
                                           ": " + status.error_message());
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string fixed1(double x) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << x;
  return s.str();
}

}  // namespace

Retries::Retries(std::string peer, const char* method, const ClientOptions& options)
    : peer_(std::move(peer)), method_(method), options_(options), backoff_ms_(options.backoff_ms) {}

bool Retries::again(const grpc::Status& status) {
  ++attempts_;
  if (!retryable(status.error_code())) return false;
  if (attempts_ == 1) first_failure_ = std::chrono::steady_clock::now();
  if (attempts_ > options_.retries) {
    if (seconds_since(first_failure_) * 1000 >= double(options_.outage_window_ms)) return false;
    if (!outage_logged_) {
      std::cerr << peer_ << ": " << method_ << ": " << status_code_name(status.error_code()) << " ("
                << status.error_message() << "); retrying for up to " << fixed1(options_.outage_window_ms / 1000.0)
                << " s" << std::endl;
      outage_logged_ = true;
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms_));
  backoff_ms_ = std::min(backoff_ms_ * 2, std::max(options_.max_backoff_ms, options_.backoff_ms));
  return true;
}

void Retries::succeeded() const {
  if (outage_logged_)
    std::cerr << peer_ << ": " << method_ << ": answering again after " << fixed1(seconds_since(first_failure_))
              << " s (" << attempts_ + 1 << " attempts)" << std::endl;
}

RpcError Retries::error(const grpc::Status& status) const {
  RpcError e = rpc_error(peer_, method_, status, attempts_);
  if (options_.outage_window_ms <= 0 || !retryable(status.error_code())) return e;
  return RpcError(e.code(), std::string(e.what()) + " (failing for " + fixed1(seconds_since(first_failure_)) +
                                " s, over the outage window of " + fixed1(options_.outage_window_ms / 1000.0) + " s)");
}

}  // namespace grpo
