// What every gRPC client of the project shares: the error a failed call throws, the client
// options (deadline, retries, message size), readable status-code names, and the channel they
// configure. Linked only into the services (library grpo_rpc, built with GRPO_SERVICES).
#pragma once
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace grpo {

// A failed call: the gRPC status code and a message naming the server, the method and the number
// of attempts.
// Thread-safety: immutable once thrown; owns its message and code.
class RpcError : public std::runtime_error {
 public:
  RpcError(grpc::StatusCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

struct ClientOptions {
  int64_t timeout_ms = 30'000;       // deadline of each attempt (streams: of the whole stream)
  int retries = 0;                   // extra attempts on UNAVAILABLE / DEADLINE_EXCEEDED
  int64_t backoff_ms = 50;           // before the first retry; doubles after each
  int max_message_bytes = 64 << 20;  // largest message sent or received
};

// "INVALID_ARGUMENT", "UNAVAILABLE", ...
const char* status_code_name(grpc::StatusCode code);
// The codes a client retries: UNAVAILABLE and DEADLINE_EXCEEDED.
bool retryable(grpc::StatusCode code);
// An insecure channel with the options' message limits, without gRPC's own transparent retries
// (the clients' retry loops count attempts), reconnecting promptly after a server restart.
std::shared_ptr<grpc::Channel> make_channel(const std::string& address, const ClientOptions& options);

// Sets the deadline of `context` timeout_ms from now (timeout_ms <= 0: options.timeout_ms).
void set_deadline(grpc::ClientContext& context, const ClientOptions& options, int64_t timeout_ms = 0);

// An RpcError for a failed call: "<peer>: <method>: CODE[ after N attempts]: message", where
// peer names the service and its address ("reward service at 127.0.0.1:50051").
RpcError rpc_error(const std::string& peer, const char* method, const grpc::Status& status, int attempts = 1);

// Runs call(context) (a unary call returning grpc::Status) with a fresh context and deadline per
// attempt, retrying retryable codes options.retries times with doubling backoff. Throws the
// rpc_error of the last attempt.
template <class Call>
void call_with_retries(const std::string& peer, const char* method, const ClientOptions& options, int64_t timeout_ms,
                       const Call& call) {
  int64_t backoff = options.backoff_ms;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext context;
    set_deadline(context, options, timeout_ms);
    grpc::Status status = call(context);
    if (status.ok()) return;
    if (!retryable(status.error_code()) || attempt > options.retries) throw rpc_error(peer, method, status, attempt);
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
    backoff *= 2;
  }
}

}  // namespace grpo
