// Internal to the RolloutService server (rollout/service/server.h): the service object and the
// reactors of its calls, shared by server.cpp (lifecycle, the engine loop, Status),
// generate.cpp (Generate calls) and weight_update.cpp (the multi-part weight-update assembler).
// Not a public header.
//
// Thread-safety: ServiceImpl's methods are called from gRPC's threads, the engine loop and the
// apply thread at once; mu_ guards the calls and routes, update_mu_ the pending weight version.
// Each GenerateReactor owns itself (`self`) until OnDone; the server's tables hold shared
// pointers while it has unfinished prompts.
#pragma once
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "proto/raw_message.h"
#include "proto/rollout.grpc.pb.h"
#include "rollout/service/server.h"

namespace grpo::rollout::detail {

using Clock = std::chrono::steady_clock;
using grpc::CallbackServerContext;
using RpcStatus = grpc::Status;  // (the service has a method named RpcStatus)
using grpc::StatusCode;

// The engine loop sleeps at most this long when idle, so parked calls notice their deadline.
constexpr std::chrono::milliseconds kIdleTick{10};

inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

class ServiceImpl;

// One Generate call. Owned by itself until gRPC is done with it (OnDone) and by the server's
// tables while it has unfinished prompts.
class GenerateReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  GenerateReactor(ServiceImpl* server, CallbackServerContext* context) : server_(server), context_(context) {}

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // Queues one completion for writing; finishes the call after the last one.
  void deliver(size_t prompt_index, Completion&& c);
  // Ends the call with `status` unless it has ended already. No server lock may be held.
  void finish(const RpcStatus& status);

  // Set once before the call is shared, then read-only.
  std::vector<Request> requests;
  int64_t min_version = 0;
  std::chrono::system_clock::time_point deadline;
  std::shared_ptr<GenerateReactor> self;  // until OnDone
  // Under the server's mutex: engine request id per prompt (empty until submitted), samples of
  // each prompt not yet routed.
  std::vector<uint64_t> ids;
  std::vector<int64_t> unfinished;

 private:
  // The caller went away: drop its unfinished requests and end the call.
  void abandon();

  ServiceImpl* server_;
  CallbackServerContext* context_;
  std::mutex mu_;
  std::deque<grpc::ByteBuffer> writes_;  // GenerateResponses; front() is being written while writing_
  int64_t remaining_ = -1;               // samples still to send; -1 until submitted
  bool writing_ = false, finished_ = false;
};
class UpdateReactor;

// One weight version being received: its parts (one UpdateWeights call each, see UpdateBegin in
// proto/rollout.proto) stage their tensors into one map; when the last part is complete the
// union is applied on the server's apply thread and every part's call ends with the outcome.
// Under the server's update_mu_ (tensor bytes are copied in outside it: each has one writer).
struct PendingUpdate {
  int64_t version = 0, parts = 1;
  Clock::time_point started;                 // the first part's first message
  std::vector<bool> taken;                   // [parts] a call has this part
  std::map<std::string, int64_t> owner;      // tensor name -> the part that sent it
  std::map<std::string, at::Tensor> staged;  // every part's tensors
  int64_t bytes = 0;                         // their bytes (max_update_bytes)
  std::vector<UpdateReactor*> complete;      // parts staged, waiting for the apply
  bool applying = false;
  std::optional<RpcStatus> failed;  // the version was dropped with this status
};

// Generate and Status take raw bytes, so a malformed request is INVALID_ARGUMENT (proto/raw_message.h).
using ServiceBase =
    v1::RolloutService::WithRawCallbackMethod_Generate<v1::RolloutService::WithCallbackMethod_UpdateWeights<
        v1::RolloutService::WithRawCallbackMethod_Status<v1::RolloutService::Service>>>;

class ServiceImpl : public ServiceBase {
 public:
  ServiceImpl(std::shared_ptr<Engine> engine, ServerOptions options)
      : engine_(std::move(engine)), options_(std::move(options)) {}

  ~ServiceImpl() override { shutdown(); }

  // ---- lifecycle ----------------------------------------------------------------------------

  void start();

  // gRPC's Shutdown(deadline) also waits for idle client connections to close, so the grace is
  // spent here, on our own calls, and the server is then shut down at once.
  void shutdown();

  bool busy() const;
  bool stopping() const;

  void wait();

  const std::string& address() const { return bound_; }

  v1::StatusResponse status() const;

  // ---- Generate -----------------------------------------------------------------------------

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Generate(CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request) override;

  // Validates every prompt (nothing is submitted when one is bad).
  RpcStatus prepare(const v1::GenerateRequest& r, GenerateReactor& call, CallbackServerContext* context) const;

  // Submits the call's prompts, or parks the call until the weights are new enough.
  RpcStatus admit(const std::shared_ptr<GenerateReactor>& call);

  RpcStatus version_too_old(const GenerateReactor& call) const;

  // Under mu_ (so that the engine loop routes no completion before its id is known). All prompts
  // go in at once: one step takes them together.
  RpcStatus submit_locked(const std::shared_ptr<GenerateReactor>& call);

  // The call ended (finished, cancelled, broken): drops what the server holds for it and cancels
  // its unfinished requests in the engine.
  void forget(const std::shared_ptr<GenerateReactor>& call);

  // ---- the engine loop ----------------------------------------------------------------------

  void engine_loop();

  void route(std::vector<Completion> done);

  void release_parked();

  // ---- UpdateWeights and RpcStatus -------------------------------------------------------------

  grpc::ServerReadReactor<v1::WeightChunk>* UpdateWeights(CallbackServerContext* context,
                                                          v1::UpdateWeightsResponse* response) override;

  grpc::ServerUnaryReactor* Status(CallbackServerContext* context, const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;

  // The pending version for a call whose first message is `b` (part `part` of `parts`): opened,
  // or joined when it is a part of the pending version. An error is this call's only: the
  // pending version is not affected.
  RpcStatus join_update(const v1::UpdateBegin& b, int64_t part, int64_t parts, std::shared_ptr<PendingUpdate>* out);
  // Allocates tensor `name` of `part` in the version's staging map (*out shares its storage);
  // refuses a name another part sent, a dropped version, and a union above max_update_bytes.
  RpcStatus stage_tensor(PendingUpdate& u, int64_t part, const std::string& name, const std::vector<int64_t>& shape,
                         at::ScalarType type, int64_t bytes, at::Tensor* out);
  // `reactor` staged its part completely and waits; the last part starts the apply, which ends
  // every part's call. The dropped version's status instead (the caller ends its call).
  RpcStatus part_complete(const std::shared_ptr<PendingUpdate>& u, UpdateReactor* reactor);
  // Drops the version (unless it is being applied): the waiting parts end with `status`, later
  // parts of the version get it too; the old weights keep serving.
  void drop_update(const std::shared_ptr<PendingUpdate>& u, const RpcStatus& status);
  // Drops the pending version once its first part is update_timeout_ms old.
  void expire_update();

  // Runs `apply` on the server's apply thread (one update at a time).
  void run_apply(std::function<void()> apply);

  const ServerOptions& options() const { return options_; }
  std::atomic<bool> updating{false};
  std::atomic<int64_t> weight_updates{0};

 private:
  struct Route {
    std::shared_ptr<GenerateReactor> call;
    size_t prompt;
  };

  std::shared_ptr<Engine> engine_;
  ServerOptions options_;
  std::unique_ptr<grpc::Server> server_;
  std::string bound_;
  Clock::time_point started_;
  std::thread loop_;
  std::atomic<bool> stop_loop_{false};
  std::mutex shutdown_mu_;
  bool stopped_ = false;
  std::mutex apply_mu_;
  std::thread applier_;

  mutable std::mutex update_mu_;            // guards what follows and every PendingUpdate
  std::shared_ptr<PendingUpdate> pending_;  // the version being received (`updating`)
  int64_t dropped_version_ = -1;            // the last version dropped, and the status it got
  RpcStatus dropped_status_;

  mutable std::mutex mu_;  // guards what follows and the calls' ids/unfinished
  bool stopping_ = false;
  std::set<std::shared_ptr<GenerateReactor>> calls_;
  std::vector<std::shared_ptr<GenerateReactor>> parked_;  // waiting for min_weight_version
  std::map<uint64_t, Route> routes_;                      // engine request id -> call and prompt
};

}  // namespace grpo::rollout::detail
