#include "reward/server.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <mutex>

#include "common/config_range.h"
#include "common/host_port.h"
#include "common/utf8.h"
#include "proto/raw_message.h"
#include "proto/reward.grpc.pb.h"
#include "reward/client.h"
#include "reward/executor.h"
#include "reward/scoring.h"
#include "reward/wire.h"

namespace grpo::reward {
namespace {

using Clock = std::chrono::steady_clock;
using grpc::ByteBuffer;
using grpc::CallbackServerContext;
using grpc::Status;
using grpc::StatusCode;

int64_t micros(Clock::duration d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); }

void set_error(v1::ScoreResponse* r, const Status& s) {
  r->set_error_code(static_cast<int32_t>(s.error_code()));
  r->set_error_message(s.error_message());
}

Status error_of(const v1::ScoreResponse& r) {
  return Status(static_cast<StatusCode>(r.error_code()), r.error_message());
}

// A worker pool (ServerOptions::pools).
struct Pool {
  std::string name;
  std::unique_ptr<BoundedExecutor> executor;
};

// A request that passed validation, waiting for a worker.
struct Prepared {
  std::string id, verifier_name;
  std::shared_ptr<const Verifier> verifier;
  Pool* pool = nullptr;  // its verifier's
  VerifyRequest request;
  std::map<std::string, double> weights;
  int64_t bytes = 0;  // request data it holds (counts against server.max_pending_mb)
  Clock::time_point received, enqueued;
};

}  // namespace

ServerOptions server_options_from_config(const Config& config) {
  config.require_known({"server", "limits", "verifiers", "composites", "remote", "http"});
  config.sub("server").require_known({"address", "workers", "max_queue", "pools", "max_pending_mb", "max_message_mb",
                                      "stream_window", "shutdown_grace_ms"});
  config.sub("limits").require_known({"max_completion_bytes", "timeout_ms", "cpu_ms", "memory_mb", "max_json_depth"});
  ServerOptions o;
  o.address = config.get<std::string>("server.address", o.address);
  check_port(o.address, config.where("server.address"), 0);
  o.workers = config_at_least<int>(config, "server.workers", o.workers, 1);
  o.max_queue = config_at_least<int>(config, "server.max_queue", o.max_queue, 1);
  if (config.has("server.pools")) {
    const YAML::Node pools = config.node()["server"]["pools"];
    if (!pools.IsMap())
      throw InputError(config.where("server.pools") + ": expected a map {pool: {workers, max_queue}}");
    for (const auto& entry : pools) {
      const std::string name = entry.first.as<std::string>();
      const std::string key = "server.pools." + name;
      if (name.empty() || name.find('.') != std::string::npos)
        throw InputError(config.where("server.pools") + ": pool name '" + name + "' must be non-empty, without '.'");
      config.sub(key).require_known({"workers", "max_queue"});
      PoolOptions& p = o.pools[name];
      p.workers = config_at_least<int>(config, key + ".workers", o.workers, 1);
      p.max_queue = config_at_least<int>(config, key + ".max_queue", o.max_queue, 1);
    }
  }
  o.max_message_bytes = config_at_least<int>(config, "server.max_message_mb", o.max_message_bytes >> 20, 1);
  if (o.max_message_bytes > 2047)
    throw InputError(config.source() + ": key 'server.max_message_mb': must be < 2048 (gRPC's limit)");
  o.max_pending_bytes = config_at_least<int64_t>(config, "server.max_pending_mb", o.max_pending_bytes >> 20, 1);
  if (o.max_pending_bytes < o.max_message_bytes)
    throw InputError(config.source() + ": key 'server.max_pending_mb': must be >= server.max_message_mb (" +
                     std::to_string(o.max_message_bytes) + "), or the largest requests could never run");
  o.max_pending_bytes <<= 20;
  o.max_message_bytes <<= 20;
  o.stream_window = config_at_least<int>(config, "server.stream_window", o.stream_window, 1);
  o.shutdown_grace_ms = config_at_least<int64_t>(config, "server.shutdown_grace_ms", o.shutdown_grace_ms, 0);
  o.limits.max_completion_bytes =
      config_at_least<int64_t>(config, "limits.max_completion_bytes", o.limits.max_completion_bytes, 1);
  o.limits.timeout_ms = config_at_least<int64_t>(config, "limits.timeout_ms", o.limits.timeout_ms, 1);
  o.limits.cpu_ms = config_at_least<int64_t>(config, "limits.cpu_ms", o.limits.cpu_ms, 1);
  o.limits.memory_mb = config_at_least<int64_t>(config, "limits.memory_mb", o.limits.memory_mb, 1);
  o.limits.max_json_depth = config_at_least<int>(config, "limits.max_json_depth", o.limits.max_json_depth, 1);
  return o;
}

using ServiceBase = v1::RewardService::WithRawCallbackMethod_Score<v1::RewardService::WithRawCallbackMethod_ScoreBatch<
    v1::RewardService::WithRawCallbackMethod_ScoreStream<v1::RewardService::WithRawCallbackMethod_ListVerifiers<
        v1::RewardService::WithRawCallbackMethod_Health<v1::RewardService::Service>>>>>;

namespace {

class ServiceImpl : public ServiceBase {
 public:
  ServiceImpl(std::shared_ptr<const VerifierRegistry> registry, ServerOptions options)
      : registry_(std::move(registry)), options_(std::move(options)) {}

  // ---- lifecycle ----------------------------------------------------------------------------

  void start() {
    std::map<std::string, PoolOptions> sizes = options_.pools;
    const PoolOptions fallback{options_.workers, options_.max_queue};
    for (const char* name : {kSandboxPool, kRemotePool}) sizes.emplace(name, fallback);
    sizes[kDefaultPool] = fallback;
    for (const auto& [name, size] : sizes)
      pools_[name] =
          std::make_unique<Pool>(Pool{name, std::make_unique<BoundedExecutor>(size.workers, size.max_queue)});
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(options_.address, grpc::InsecureServerCredentials(), &port);
    // One server per port: without this, gRPC sets SO_REUSEPORT and a second server would share it.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
    builder.SetMaxSendMessageSize(options_.max_message_bytes);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    if (!server_ || port == 0) {
      for (auto& [name, pool] : pools_) pool->executor->stop();
      throw InputError("reward server: cannot listen on " + options_.address +
                       " (address in use or not a valid host:port)");
    }
    bound_ = options_.address.substr(0, options_.address.rfind(':')) + ":" + std::to_string(port);
    started_ = Clock::now();
    serving_ = true;
  }

  void shutdown() {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (!server_ || stopped_) return;
    serving_ = false;
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(options_.shutdown_grace_ms));
    for (auto& [name, pool] : pools_) pool->executor->stop();
    stopped_ = true;
  }

  void wait() {
    if (server_) server_->Wait();
  }

  v1::HealthResponse health() const {
    v1::HealthResponse h;
    h.set_status(serving_ ? v1::HealthResponse::SERVING : v1::HealthResponse::NOT_SERVING);
    h.set_workers(options_.workers);
    h.set_max_queue(options_.max_queue);
    int64_t queued = 0, running = 0;
    for (const auto& [name, pool] : pools_) {
      queued += pool->executor->queued();
      running += pool->executor->running();
    }
    h.set_queued(queued);
    h.set_running(running);
    h.set_served(served_);
    h.set_rejected(rejected_);
    h.set_expired(expired_);
    h.set_pending_bytes(pending_bytes_);
    h.set_uptime_ms(serving_ ? micros(Clock::now() - started_) / 1000 : 0);
    return h;
  }

  const std::string& address() const { return bound_; }

  // ---- one request --------------------------------------------------------------------------

  // Validates a request and looks up its verifier (cheap; runs on the gRPC thread).
  bool prepare(const v1::ScoreRequest& r, Prepared* p, Status* status) const {
    p->received = Clock::now();
    p->id = r.id();
    p->verifier_name = r.verifier();
    if (r.verifier().empty()) {
      *status = Status(StatusCode::INVALID_ARGUMENT, "verifier: required (the name of a registered verifier)");
      return false;
    }
    try {
      p->verifier = registry_->get(r.verifier());
    } catch (const UnknownVerifier& e) {
      *status = Status(StatusCode::NOT_FOUND, e.what());
      return false;
    } catch (const std::exception& e) {  // a lazy built-in that cannot start (server-side)
      *status = Status(StatusCode::INTERNAL, "verifier '" + r.verifier() + "' could not start: " + e.what());
      return false;
    }
    auto pool = pools_.find(p->verifier->pool());
    p->pool = (pool != pools_.end() ? pool : pools_.find(kDefaultPool))->second.get();
    p->bytes = static_cast<int64_t>(r.completion().size() + r.reference().size() + r.options().size());
    try {
      p->request = request_from_proto(r, options_.limits);
    } catch (const InputError& e) {
      *status = Status(StatusCode::INVALID_ARGUMENT, e.what());
      return false;
    }
    for (const auto& [name, w] : r.weights()) {
      if (!std::isfinite(w)) {
        *status = Status(StatusCode::INVALID_ARGUMENT, "weights['" + name + "']: must be a finite number");
        return false;
      }
      p->weights[name] = w;
    }
    return true;
  }

  // Runs a prepared request on a worker. Never throws: failures go in error_code/error_message.
  v1::ScoreResponse execute(Prepared& p, CallbackServerContext* context) {
    v1::ScoreResponse out;
    out.set_id(p.id);
    out.set_verifier(p.verifier_name);
    const Clock::time_point start = Clock::now();
    auto* t = out.mutable_timings();
    t->set_queue_us(micros(start - p.enqueued));
    const auto deadline = context->deadline();
    const auto now = std::chrono::system_clock::now();
    if (now >= deadline) {
      ++expired_;
      set_error(&out,
                Status(StatusCode::DEADLINE_EXCEEDED,
                       "deadline passed after " + std::to_string(t->queue_us() / 1000) + " ms waiting for a worker"));
      return out;
    }
    if (context->IsCancelled()) {
      set_error(&out, Status(StatusCode::CANCELLED, "the client cancelled the call"));
      return out;
    }
    if (deadline != std::chrono::system_clock::time_point::max()) {
      int64_t left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
      p.request.limits.timeout_ms = std::max<int64_t>(1, std::min(p.request.limits.timeout_ms, left_ms));
    }
    Status status;
    try {
      VerifyResult result = score(*p.verifier, p.request, p.weights);
      result_to_proto(result, &out);
    } catch (const RpcError& e) {
      status = Status(e.code(), e.what());
    } catch (const InputError& e) {
      status = Status(StatusCode::INVALID_ARGUMENT, e.what());
    } catch (const std::exception& e) {
      status = Status(StatusCode::INTERNAL, "verifier '" + p.verifier_name + "' failed: " + e.what());
    } catch (...) {
      status = Status(StatusCode::INTERNAL, "verifier '" + p.verifier_name + "' failed with a non-standard exception");
    }
    const Clock::time_point end = Clock::now();
    t->set_verify_us(micros(end - start));
    t->set_total_us(micros(end - p.received));
    if (options_.on_verdict)
      options_.on_verdict({p.verifier_name, p.verifier->pool(),
                           !status.ok() ? "error" : (out.correct() ? "correct" : "wrong"),
                           std::chrono::duration<double>(end - start).count()});
    if (!status.ok()) {
      v1::ScoreResponse failed;
      failed.set_id(p.id);
      failed.set_verifier(p.verifier_name);
      *failed.mutable_timings() = *t;
      set_error(&failed, Status(status.error_code(), utf8::sanitize(status.error_message())));
      return failed;
    }
    ++served_;
    return out;
  }

  bool parse(const ByteBuffer* buffer, google::protobuf::Message* message, Status* status) const {
    std::string error;
    if (parse_message(*buffer, message, &error)) return true;
    *status = Status(StatusCode::INVALID_ARGUMENT, error);
    return false;
  }

  // Queues `tasks` (all or none; each in its request's pool) that hold `bytes` of request data, or
  // says why not: a pool's queue is full (server.max_queue, server.pools.<name>.max_queue) or
  // admitted requests hold too much data (server.max_pending_mb). Each task must call
  // release(its bytes) when done.
  using PoolTask = std::pair<Pool*, BoundedExecutor::Task>;
  bool admit(std::vector<PoolTask>& tasks, int64_t bytes, Status* refusal) {
    const int64_t held = pending_bytes_.fetch_add(bytes) + bytes;
    if (held > options_.max_pending_bytes) {
      release(bytes);
      ++rejected_;
      *refusal = Status(StatusCode::RESOURCE_EXHAUSTED,
                        "reward server busy: admitted requests hold " + std::to_string((held - bytes) >> 20) +
                            " MiB, " + std::to_string(bytes) + " more bytes do not fit (server.max_pending_mb=" +
                            std::to_string(options_.max_pending_bytes >> 20) + "); retry later");
      return false;
    }
    std::map<Pool*, std::vector<BoundedExecutor::Task>> by_pool;
    for (auto& [pool, task] : tasks) by_pool[pool].push_back(std::move(task));
    // Under admit_mu_ no other call queues tasks, so the room seen here is there when submitting.
    std::lock_guard<std::mutex> lock(admit_mu_);
    for (auto& [pool, queue] : by_pool) {
      const int64_t queued = pool->executor->queued(), n = int64_t(queue.size());
      if (queued + n <= pool->executor->max_queue()) continue;
      release(bytes);
      ++rejected_;
      const std::string key =
          pool->name == kDefaultPool ? "server.max_queue" : "server.pools." + pool->name + ".max_queue";
      *refusal = Status(StatusCode::RESOURCE_EXHAUSTED,
                        "reward server busy: " + std::to_string(queued) + " tasks queued in pool '" + pool->name +
                            "', " + std::to_string(n) + " more do not fit (" + key + "=" +
                            std::to_string(pool->executor->max_queue()) + "); retry later");
      return false;
    }
    for (auto& [pool, queue] : by_pool)
      if (!pool->executor->try_submit_all(queue)) {  // only while shutting down
        release(bytes);
        *refusal = Status(StatusCode::UNAVAILABLE, "reward server shutting down");
        return false;
      }
    return true;
  }
  bool admit(Pool* pool, BoundedExecutor::Task task, int64_t bytes, Status* refusal) {
    std::vector<PoolTask> one;
    one.emplace_back(pool, std::move(task));
    return admit(one, bytes, refusal);
  }
  void release(int64_t bytes) { pending_bytes_ -= bytes; }

  // ---- RPCs ---------------------------------------------------------------------------------

  grpc::ServerUnaryReactor* Score(CallbackServerContext* context, const ByteBuffer* request,
                                  ByteBuffer* response) override {
    auto* reactor = context->DefaultReactor();
    v1::ScoreRequest r;
    auto p = std::make_shared<Prepared>();
    Status status;
    if (!parse(request, &r, &status) || !prepare(r, p.get(), &status)) {
      reactor->Finish(status);
      return reactor;
    }
    p->enqueued = Clock::now();
    auto task = [this, p, context, reactor, response] {
      v1::ScoreResponse out = execute(*p, context);
      release(p->bytes);
      if (out.error_code() != 0) {
        reactor->Finish(error_of(out));
        return;
      }
      *response = to_byte_buffer(out);
      reactor->Finish(Status::OK);
    };
    if (!admit(p->pool, task, p->bytes, &status)) reactor->Finish(status);
    return reactor;
  }

  grpc::ServerUnaryReactor* ScoreBatch(CallbackServerContext* context, const ByteBuffer* request,
                                       ByteBuffer* response) override {
    auto* reactor = context->DefaultReactor();
    struct Batch {
      v1::ScoreBatchRequest in;
      v1::ScoreBatchResponse out;
      std::atomic<int> remaining{0};
    };
    auto batch = std::make_shared<Batch>();
    Status status;
    if (!parse(request, &batch->in, &status)) {
      reactor->Finish(status);
      return reactor;
    }
    const int n = batch->in.requests_size();
    for (int i = 0; i < n; ++i) batch->out.add_responses();
    auto finish = [batch, reactor, response] {
      *response = to_byte_buffer(batch->out);
      reactor->Finish(Status::OK);
    };
    std::vector<PoolTask> tasks;
    std::vector<std::shared_ptr<Prepared>> prepared;
    int64_t bytes = 0;
    for (int i = 0; i < n; ++i) {
      auto p = std::make_shared<Prepared>();
      v1::ScoreResponse* slot = batch->out.mutable_responses(i);
      if (!prepare(batch->in.requests(i), p.get(), &status)) {
        slot->set_id(p->id);
        slot->set_verifier(p->verifier_name);
        set_error(slot, status);
        continue;
      }
      prepared.push_back(p);
      bytes += p->bytes;
      tasks.emplace_back(p->pool, [this, p, slot, context, batch, finish] {
        *slot = execute(*p, context);
        release(p->bytes);
        if (--batch->remaining == 0) finish();
      });
    }
    batch->remaining = static_cast<int>(tasks.size());
    if (tasks.empty()) {
      finish();
      return reactor;
    }
    const Clock::time_point now = Clock::now();
    for (auto& p : prepared) p->enqueued = now;
    if (!admit(tasks, bytes, &status)) reactor->Finish(status);
    return reactor;
  }

  grpc::ServerBidiReactor<ByteBuffer, ByteBuffer>* ScoreStream(CallbackServerContext* context) override;

  // ListVerifiers and Health take raw bytes like Score, so a malformed request is INVALID_ARGUMENT
  // (gRPC's own parsing would answer UNIMPLEMENTED).
  grpc::ServerUnaryReactor* ListVerifiers(CallbackServerContext* context, const ByteBuffer* request,
                                          ByteBuffer* response) override {
    auto* reactor = context->DefaultReactor();
    v1::ListVerifiersRequest r;
    Status status;
    if (!parse(request, &r, &status)) {
      reactor->Finish(status);
      return reactor;
    }
    v1::ListVerifiersResponse out;
    for (const auto& info : registry_->list()) {
      auto* v = out.add_verifiers();
      v->set_name(info.name);
      v->set_kind(info.kind);
      v->set_description(utf8::sanitize(info.description));
    }
    *response = to_byte_buffer(out);
    reactor->Finish(Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Health(CallbackServerContext* context, const ByteBuffer* request,
                                   ByteBuffer* response) override {
    auto* reactor = context->DefaultReactor();
    v1::HealthRequest r;
    Status status;
    if (!parse(request, &r, &status)) {
      reactor->Finish(status);
      return reactor;
    }
    *response = to_byte_buffer(health());
    reactor->Finish(Status::OK);
    return reactor;
  }

  const ServerOptions& options() const { return options_; }

 private:
  std::shared_ptr<const VerifierRegistry> registry_;
  ServerOptions options_;
  std::map<std::string, std::unique_ptr<Pool>> pools_;  // by name; fixed once start() made them
  std::mutex admit_mu_;                                 // one admission at a time (all-or-none across pools)
  std::unique_ptr<grpc::Server> server_;
  std::string bound_;
  Clock::time_point started_;
  std::atomic<bool> serving_{false};
  std::atomic<uint64_t> served_{0}, rejected_{0}, expired_{0};
  std::atomic<int64_t> pending_bytes_{0};
  std::mutex shutdown_mu_;
  bool stopped_ = false;
};

// One ScoreStream call. Reads requests while fewer than stream_window are unanswered, runs them
// on the executor, writes responses one at a time as they complete, and finishes once the client
// has stopped sending and every response is written.
class StreamReactor : public grpc::ServerBidiReactor<ByteBuffer, ByteBuffer> {
 public:
  StreamReactor(ServiceImpl* server, CallbackServerContext* context) : server_(server), context_(context) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        reads_done_ = true;
      }
      maybe_finish();
      return;
    }
    handle(in_);
    bool read_more;
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_more = below_window() && !finished_;
      read_paused_ = !read_more;
    }
    if (read_more) StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    const ByteBuffer* next = nullptr;
    bool resume;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writes_.pop_front();
      if (!ok) {  // the client is gone: drop what is left
        broken_ = true;
        writes_.clear();
      }
      if (!writes_.empty()) next = &writes_.front();
      writing_ = next != nullptr;
      resume = take_paused_read();
    }
    if (next) StartWrite(next);
    if (resume) StartRead(&in_);
    maybe_finish();
  }

  void OnCancel() override {
    bool resume;
    {
      std::lock_guard<std::mutex> lock(mu_);
      broken_ = true;
      resume = take_paused_read();  // the read fails at once and ends the read side
    }
    if (resume) StartRead(&in_);
  }

  void OnDone() override { delete this; }

 private:
  void handle(const ByteBuffer& buffer) {
    v1::ScoreRequest r;
    auto p = std::make_shared<Prepared>();
    Status status;
    if (!server_->parse(&buffer, &r, &status) || !server_->prepare(r, p.get(), &status)) {
      v1::ScoreResponse failed;
      failed.set_id(p->id);
      failed.set_verifier(p->verifier_name);
      set_error(&failed, status);
      deliver(failed, false);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++in_flight_;
    }
    p->enqueued = Clock::now();
    auto task = [this, p] {
      v1::ScoreResponse out = server_->execute(*p, context_);
      server_->release(p->bytes);
      deliver(out, true);
    };
    if (!server_->admit(p->pool, task, p->bytes, &status)) {
      v1::ScoreResponse failed;
      failed.set_id(p->id);
      failed.set_verifier(p->verifier_name);
      set_error(&failed, status);
      deliver(failed, true);
    }
  }

  // Queues a response for writing; from_task: it ends one in-flight request.
  void deliver(const v1::ScoreResponse& response, bool from_task) {
    const ByteBuffer* start = nullptr;
    bool resume;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (from_task) --in_flight_;
      if (!broken_) {
        writes_.push_back(to_byte_buffer(response));
        if (!writing_) {
          writing_ = true;
          start = &writes_.front();
        }
      }
      resume = take_paused_read();
    }
    if (start) StartWrite(start);
    if (resume) StartRead(&in_);
    maybe_finish();
  }

  bool below_window() const {
    return in_flight_ + static_cast<int64_t>(writes_.size()) < server_->options().stream_window;
  }

  // Under mu_: whether a paused read should start again now.
  bool take_paused_read() {
    if (!read_paused_ || finished_ || reads_done_ || (!below_window() && !broken_)) return false;
    read_paused_ = false;
    return true;
  }

  void maybe_finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || !reads_done_ || in_flight_ > 0 || writing_ || !writes_.empty()) return;
      finished_ = true;
    }
    Finish(Status::OK);
  }

  ServiceImpl* server_;
  CallbackServerContext* context_;
  ByteBuffer in_;
  std::mutex mu_;
  std::deque<ByteBuffer> writes_;  // front() is being written while writing_
  int64_t in_flight_ = 0;          // submitted to the executor, not yet delivered
  bool writing_ = false, reads_done_ = false, read_paused_ = false, broken_ = false, finished_ = false;
};

grpc::ServerBidiReactor<ByteBuffer, ByteBuffer>* ServiceImpl::ScoreStream(CallbackServerContext* context) {
  return new StreamReactor(this, context);
}

}  // namespace

class RewardServer::Impl : public ServiceImpl {
 public:
  using ServiceImpl::ServiceImpl;
};

RewardServer::RewardServer(std::shared_ptr<const VerifierRegistry> registry, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(registry), std::move(options))) {}

RewardServer::~RewardServer() { shutdown(); }

void RewardServer::start() { impl_->start(); }
const std::string& RewardServer::address() const { return impl_->address(); }
void RewardServer::shutdown() { impl_->shutdown(); }
void RewardServer::wait() { impl_->wait(); }
v1::HealthResponse RewardServer::health() const { return impl_->health(); }

}  // namespace grpo::reward
