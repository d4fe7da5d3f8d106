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
  int64_t timeout_ms = 30'000;  // deadline of each attempt (streams: of the whole stream)
  int retries = 0;              // extra attempts on UNAVAILABLE / DEADLINE_EXCEEDED
  int64_t backoff_ms = 50;      // before the first retry; doubles after each, up to max_backoff_ms
  int64_t max_backoff_ms = 5'000;
  // An outage: once `retries` are spent, a unary call keeps retrying UNAVAILABLE and
  // DEADLINE_EXCEEDED until this long after its first failure (a server restarting), logging the
  // outage on stderr when it starts and when it ends. 0: no outage window.
  int64_t outage_window_ms = 0;
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

// The retry policy of one unary call (ClientOptions: retries, backoff, outage window).
// Not thread-safe: one per call.
class Retries {
 public:
  Retries(std::string peer, const char* method, const ClientOptions& options);
  // After a failed attempt: sleeps the backoff and returns true when the call should be tried
  // again; false when `status` is not retryable or the retries and the outage window are spent.
  bool again(const grpc::Status& status);
  // After a successful attempt: logs the end of an outage that was logged.
  void succeeded() const;
  // The error to throw after the last failed attempt.
  RpcError error(const grpc::Status& status) const;

 private:
  std::string peer_;
  const char* method_;
  ClientOptions options_;
  int attempts_ = 0;
  int64_t backoff_ms_;
  std::chrono::steady_clock::time_point first_failure_;
  bool outage_logged_ = false;
};

// Runs call(context) (a unary call returning grpc::Status) with a fresh context and deadline per
// attempt, retrying as Retries says. Throws the RpcError of the last attempt.
template <class Call>
void call_with_retries(const std::string& peer, const char* method, const ClientOptions& options, int64_t timeout_ms,
                       const Call& call) {
  Retries retries(peer, method, options);
  for (;;) {
    grpc::ClientContext context;
    set_deadline(context, options, timeout_ms);
    grpc::Status status = call(context);
    if (status.ok()) return retries.succeeded();
    if (!retries.again(status)) throw retries.error(status);
  }
}

}  // namespace grpo
