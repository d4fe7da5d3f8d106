#include "rollout/service/server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "common/error.h"
#include "model/shape_text.h"
#include "proto/rollout.grpc.pb.h"

namespace grpo::rollout {
namespace {

using Clock = std::chrono::steady_clock;
using grpc::CallbackServerContext;
using RpcStatus = grpc::Status;  // (the service has a method named RpcStatus)
using grpc::StatusCode;

// The engine loop sleeps at most this long when idle, so parked calls notice their deadline.
constexpr std::chrono::milliseconds kIdleTick{10};

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

v1::FinishReason to_proto(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return v1::STOP;
    case FinishReason::kLength: return v1::LENGTH;
    case FinishReason::kEos: return v1::EOS;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

GenerationParams params_from_proto(const v1::SamplingParams& p) {
  GenerationParams g;
  g.sampling.temperature = p.has_temperature() ? p.temperature() : 1.0;
  g.sampling.top_p = p.has_top_p() ? p.top_p() : 1.0;
  g.sampling.top_k = p.top_k();
  g.sampling.seed = p.seed();
  g.max_new_tokens = p.max_new_tokens();
  g.stop_token_ids.assign(p.stop_token_ids().begin(), p.stop_token_ids().end());
  g.stop_strings.assign(p.stop_strings().begin(), p.stop_strings().end());
  return g;
}

const char* dtype_name(const ModelOptions& o) {
  if (o.fp8) return "fp8";
  switch (o.compute_dtype) {
    case at::kBFloat16: return "bf16";
    case at::kDouble: return "fp64";
    default: return "fp32";
  }
}

// A wire dtype as a tensor element type; false for DTYPE_UNSPECIFIED and unknown values.
bool scalar_type_of(int dtype, at::ScalarType* out) {
  switch (dtype) {
    case v1::FLOAT32: *out = at::kFloat; return true;
    case v1::BFLOAT16: *out = at::kBFloat16; return true;
    case v1::FLOAT16: *out = at::kHalf; return true;
    case v1::FLOAT8_E4M3: *out = at::kFloat8_e4m3fn; return true;
    default: return false;
  }
}

class ServiceImpl;

// One Generate call. Owned by itself until gRPC is done with it (OnDone) and by the server's
// tables while it has unfinished prompts.
class GenerateReactor : public grpc::ServerWriteReactor<v1::GenerateResponse> {
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
  std::deque<v1::GenerateResponse> writes_;  // front() is being written while writing_
  int64_t remaining_ = -1;                   // samples still to send; -1 until submitted
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

using ServiceBase =
    v1::RolloutService::WithCallbackMethod_Generate<v1::RolloutService::WithCallbackMethod_UpdateWeights<
        v1::RolloutService::WithCallbackMethod_Status<v1::RolloutService::Service>>>;

class ServiceImpl : public ServiceBase {
 public:
  ServiceImpl(std::shared_ptr<Engine> engine, ServerOptions options)
      : engine_(std::move(engine)), options_(std::move(options)) {}

  ~ServiceImpl() override { shutdown(); }

  // ---- lifecycle ----------------------------------------------------------------------------

  void start() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(options_.address, grpc::InsecureServerCredentials(), &port);
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // one server per port
    builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
    builder.SetMaxSendMessageSize(options_.max_message_bytes);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    if (!server_ || port == 0)
      throw InputError("rollout server: cannot listen on " + options_.address +
                       " (address in use or not a valid host:port)");
    bound_ = options_.address.substr(0, options_.address.rfind(':')) + ":" + std::to_string(port);
    started_ = Clock::now();
    loop_ = std::thread([this] { engine_loop(); });
  }

  // gRPC's Shutdown(deadline) also waits for idle client connections to close, so the grace is
  // spent here, on our own calls, and the server is then shut down at once.
  void shutdown() {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (!server_ || stopped_) return;
    std::vector<std::shared_ptr<GenerateReactor>> parked;
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
      parked.swap(parked_);
    }
    for (auto& call : parked) call->finish(RpcStatus(StatusCode::UNAVAILABLE, "rollout server: shutting down"));
    // In-flight calls get the grace (the engine loop keeps running for them); then the rest is
    // cancelled.
    const auto grace_end = Clock::now() + std::chrono::milliseconds(options_.shutdown_grace_ms);
    while (Clock::now() < grace_end && (busy() || updating)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    {
      std::unique_lock<std::mutex> lock(update_mu_);
      std::shared_ptr<PendingUpdate> pending = pending_;
      lock.unlock();
      if (pending) drop_update(pending, RpcStatus(StatusCode::UNAVAILABLE, "rollout server: shutting down"));
    }
    server_->Shutdown(std::chrono::system_clock::now());
    stop_loop_ = true;
    if (loop_.joinable()) loop_.join();
    std::lock_guard<std::mutex> l(apply_mu_);
    if (applier_.joinable()) applier_.join();
    stopped_ = true;
  }

  bool busy() const {
    std::lock_guard<std::mutex> lock(mu_);
    return !calls_.empty();
  }
  bool stopping() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  void wait() {
    if (server_) server_->Wait();
  }

  const std::string& address() const { return bound_; }

  v1::StatusResponse status() const {
    const EngineStats s = engine_->stats();
    v1::StatusResponse r;
    r.set_weight_version(s.weight_version);
    r.set_queued_requests(s.queued_requests);
    r.set_waiting_sequences(s.waiting_sequences);
    r.set_running_sequences(s.running_sequences);
    r.set_unfinished_samples(s.unfinished_samples);
    r.set_pages_used(s.pages_used);
    r.set_pages_total(s.pages_total);
    r.set_peak_pages_used(s.peak_pages_used);
    r.set_page_size(s.page_size);
    r.set_generated_tokens(s.generated_tokens);
    r.set_prefill_tokens(s.prefill_tokens);
    r.set_decode_tokens(s.decode_tokens);
    r.set_steps(s.steps);
    r.set_preemptions(s.preemptions);
    r.set_restarts(s.restarts);
    r.set_completions(s.completions);
    r.set_uptime_ms(server_ ? static_cast<int64_t>(ms_since(started_)) : 0);
    {
      std::lock_guard<std::mutex> lock(mu_);
      r.set_generate_calls(static_cast<int64_t>(calls_.size()));
      r.set_version_waits(static_cast<int64_t>(parked_.size()));
    }
    r.set_weight_updates(weight_updates);
    r.set_updating(updating);
    {
      std::lock_guard<std::mutex> lock(update_mu_);
      if (pending_) {
        r.set_update_version(pending_->version);
        r.set_update_parts(pending_->parts);
        r.set_update_parts_staged(static_cast<int64_t>(pending_->complete.size()));
      }
    }
    const EngineOptions& eo = engine_->options();
    r.set_max_context(eo.max_context);
    r.set_max_new_tokens_limit(eo.max_new_tokens_limit);
    r.set_max_seqs(eo.max_seqs);
    const ModelConfig& c = engine_->config();
    v1::ModelInfo* m = r.mutable_model();
    m->set_model_type(c.model_type);
    m->set_vocab_size(c.vocab_size);
    m->set_hidden_size(c.hidden_size);
    m->set_num_hidden_layers(c.num_hidden_layers);
    m->set_num_attention_heads(c.num_attention_heads);
    m->set_kv_lora_rank(c.kv_lora_rank);
    m->set_q_lora_rank(c.q_lora_rank.value_or(0));
    m->set_n_routed_experts(c.n_routed_experts);
    m->set_num_experts_per_tok(c.num_experts_per_tok);
    m->set_max_position_embeddings(c.max_position_embeddings);
    m->set_dtype(dtype_name(engine_->model_options()));
    return r;
  }

  // ---- Generate -----------------------------------------------------------------------------

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(CallbackServerContext* context,
                                                           const v1::GenerateRequest* request) override {
    auto call = std::make_shared<GenerateReactor>(this, context);
    call->self = call;
    RpcStatus status = prepare(*request, *call, context);
    if (status.ok()) status = admit(call);
    if (!status.ok()) call->finish(status);
    return call.get();
  }

  // Validates every prompt (nothing is submitted when one is bad).
  RpcStatus prepare(const v1::GenerateRequest& r, GenerateReactor& call, CallbackServerContext* context) const {
    const int64_t n = r.prompts_size();
    if (n == 0)
      return RpcStatus(StatusCode::INVALID_ARGUMENT, "prompts: empty (a Generate call needs at least one prompt)");
    if (n > options_.max_prompts_per_call)
      return RpcStatus(StatusCode::INVALID_ARGUMENT,
                       "prompts: " + std::to_string(n) + " prompts exceed max_prompts_per_call (" +
                           std::to_string(options_.max_prompts_per_call) + "); split the call");
    if (r.min_weight_version() < 0)
      return RpcStatus(StatusCode::INVALID_ARGUMENT,
                       "min_weight_version: must be >= 0, got " + std::to_string(r.min_weight_version()));
    const GenerationParams params = params_from_proto(r.params());
    for (int64_t i = 0; i < n; ++i) {
      const v1::Prompt& p = r.prompts(static_cast<int>(i));
      Request q{{p.token_ids().begin(), p.token_ids().end()}, p.n(), params};
      if (p.has_seed()) q.params.sampling.seed = p.seed();
      try {
        engine_->validate(q);
      } catch (const InputError& e) {
        return RpcStatus(StatusCode::INVALID_ARGUMENT, "prompts[" + std::to_string(i) + "]: " + e.what());
      }
      call.requests.push_back(std::move(q));
    }
    call.min_version = r.min_weight_version();
    call.deadline = context->deadline();
    for (const Request& q : call.requests) call.unfinished.push_back(q.n);
    return RpcStatus::OK;
  }

  // Submits the call's prompts, or parks the call until the weights are new enough.
  RpcStatus admit(const std::shared_ptr<GenerateReactor>& call) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return RpcStatus(StatusCode::UNAVAILABLE, "rollout server: shutting down");
    if (static_cast<int64_t>(calls_.size()) >= options_.max_calls)
      return RpcStatus(StatusCode::RESOURCE_EXHAUSTED, "rollout server busy: " + std::to_string(calls_.size()) +
                                                           " Generate calls in progress (max_calls); retry later");
    if (engine_->latest_weight_version() < call->min_version) {
      if (std::chrono::system_clock::now() + std::chrono::milliseconds(kVersionWaitMarginMs) >= call->deadline)
        return version_too_old(*call);
      calls_.insert(call);
      parked_.push_back(call);
      return RpcStatus::OK;
    }
    RpcStatus s = submit_locked(call);
    if (s.ok()) calls_.insert(call);
    return s;
  }

  RpcStatus version_too_old(const GenerateReactor& call) const {
    return RpcStatus(StatusCode::FAILED_PRECONDITION, "min_weight_version: the worker's weights are version " +
                                                          std::to_string(engine_->latest_weight_version()) +
                                                          ", the call needs " + std::to_string(call.min_version) +
                                                          " and none newer arrived before its deadline");
  }

  // Under mu_ (so that the engine loop routes no completion before its id is known). All prompts
  // go in at once: one step takes them together.
  RpcStatus submit_locked(const std::shared_ptr<GenerateReactor>& call) {
    try {
      call->ids = engine_->submit(call->requests);
    } catch (const EngineFull& e) {
      return RpcStatus(StatusCode::RESOURCE_EXHAUSTED, e.what());
    } catch (const InputError& e) {  // validated in prepare(); kept for safety of the contract
      return RpcStatus(StatusCode::INVALID_ARGUMENT, e.what());
    }
    for (size_t i = 0; i < call->ids.size(); ++i) routes_[call->ids[i]] = {call, i};
    return RpcStatus::OK;
  }

  // The call ended (finished, cancelled, broken): drops what the server holds for it and cancels
  // its unfinished requests in the engine.
  void forget(const std::shared_ptr<GenerateReactor>& call) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.erase(call);
    parked_.erase(std::remove(parked_.begin(), parked_.end(), call), parked_.end());
    for (uint64_t id : call->ids) {
      auto it = routes_.find(id);
      if (it == routes_.end()) continue;
      routes_.erase(it);
      engine_->cancel(id);
    }
  }

  // ---- the engine loop ----------------------------------------------------------------------

  void engine_loop() {
    while (!stop_loop_) {
      const bool more = engine_->step();
      route(engine_->poll());
      release_parked();
      expire_update();
      if (!more) engine_->wait_for_work(kIdleTick);
    }
  }

  void route(std::vector<Completion> done) {
    if (done.empty()) return;
    std::vector<std::tuple<std::shared_ptr<GenerateReactor>, size_t, Completion>> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (Completion& c : done) {
        auto it = routes_.find(c.request_id);
        if (it == routes_.end()) continue;  // its call has gone
        auto [call, prompt] = it->second;
        if (--call->unfinished[prompt] == 0) routes_.erase(it);
        out.emplace_back(std::move(call), prompt, std::move(c));
      }
    }
    for (auto& [call, prompt, c] : out) call->deliver(prompt, std::move(c));
  }

  void release_parked() {
    std::vector<std::pair<std::shared_ptr<GenerateReactor>, RpcStatus>> ended;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (parked_.empty()) return;
      const int64_t version = engine_->latest_weight_version();
      const auto give_up = std::chrono::system_clock::now() + std::chrono::milliseconds(kVersionWaitMarginMs);
      std::vector<std::shared_ptr<GenerateReactor>> still;
      for (auto& call : parked_) {
        if (version >= call->min_version) {
          RpcStatus s = submit_locked(call);
          if (!s.ok()) ended.emplace_back(call, s);
        } else if (give_up >= call->deadline) {
          ended.emplace_back(call, version_too_old(*call));
        } else {
          still.push_back(call);
        }
      }
      parked_.swap(still);
    }
    for (auto& [call, status] : ended) call->finish(status);
  }

  // ---- UpdateWeights and RpcStatus -------------------------------------------------------------

  grpc::ServerReadReactor<v1::WeightChunk>* UpdateWeights(CallbackServerContext* context,
                                                          v1::UpdateWeightsResponse* response) override;

  grpc::ServerUnaryReactor* Status(CallbackServerContext* context, const v1::StatusRequest*,
                                   v1::StatusResponse* response) override {
    *response = status();
    auto* reactor = context->DefaultReactor();
    reactor->Finish(RpcStatus::OK);
    return reactor;
  }

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
  void run_apply(std::function<void()> apply) {
    std::lock_guard<std::mutex> lock(apply_mu_);
    if (applier_.joinable()) applier_.join();
    applier_ = std::thread(std::move(apply));
  }

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

// ---- GenerateReactor -------------------------------------------------------------------------

void GenerateReactor::deliver(size_t prompt_index, Completion&& c) {
  v1::GenerateResponse r;
  r.set_prompt_index(static_cast<uint32_t>(prompt_index));
  r.set_sample_index(c.sample_index);
  *r.mutable_token_ids() = {c.token_ids.begin(), c.token_ids.end()};
  *r.mutable_logprobs() = {c.logprobs.begin(), c.logprobs.end()};
  r.set_text(std::move(c.text));
  r.set_finish_reason(to_proto(c.finish_reason));
  r.set_weight_version(c.weight_version);
  r.set_prompt_tokens(c.prompt_tokens);
  bool start;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    if (remaining_ < 0) {
      remaining_ = 0;
      for (const Request& q : requests) remaining_ += q.n;
    }
    --remaining_;
    writes_.push_back(std::move(r));
    start = !writing_;
    writing_ = true;
  }
  if (start) StartWrite(&writes_.front());
}

void GenerateReactor::OnWriteDone(bool ok) {
  const v1::GenerateResponse* next = nullptr;
  bool done = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writes_.pop_front();
    if (!ok) {  // the stream broke (the caller went away)
      writes_.clear();
      writing_ = false;
    } else if (!writes_.empty())
      next = &writes_.front();
    writing_ = next != nullptr;
    if (ok && !next && remaining_ == 0 && !finished_) done = finished_ = true;
  }
  if (!ok) return abandon();
  if (next) StartWrite(next);
  if (done) Finish(RpcStatus::OK);
}

void GenerateReactor::finish(const RpcStatus& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = true;
  }
  Finish(status);
}

void GenerateReactor::OnCancel() { abandon(); }

void GenerateReactor::abandon() {
  server_->forget(self);
  finish(RpcStatus(StatusCode::CANCELLED, "the call was cancelled"));
}

void GenerateReactor::OnDone() {
  std::shared_ptr<GenerateReactor> keep = std::move(self);
  server_->forget(keep);
}

// ---- UpdateReactor ---------------------------------------------------------------------------

// One UpdateWeights call: stages the chunks of one part (the whole update when part_count is 1)
// into the pending version (PendingUpdate); ends when the version was applied or dropped.
class UpdateReactor : public grpc::ServerReadReactor<v1::WeightChunk> {
 public:
  UpdateReactor(ServiceImpl* server, CallbackServerContext* context, v1::UpdateWeightsResponse* response)
      : server_(server), context_(context), response_(response) {
    if (server_->stopping()) {
      Finish(RpcStatus(StatusCode::UNAVAILABLE, "rollout server: shutting down"));
      return;
    }
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return end_of_stream();
    RpcStatus s = take(chunk_);
    if (!s.ok()) return fail(s);
    StartRead(&chunk_);
  }

  void OnDone() override { delete this; }

  // The version this part belongs to was applied (OK) or dropped: ends the call. Called once, by
  // the server, after part_complete accepted this part.
  void finish_part(const RpcStatus& status, double apply_ms = 0) {
    if (status.ok()) {
      response_->set_version(version_);
      response_->set_tensors(expected_);
      response_->set_bytes(bytes_);
      response_->set_receive_ms(receive_ms_);
      response_->set_wait_ms(ms_since(staged_at_) - apply_ms);
      response_->set_apply_ms(apply_ms);
    }
    Finish(status);
  }

  int64_t part() const { return part_; }

 private:
  RpcStatus take(v1::WeightChunk& c) {
    if (!update_) {
      if (!c.has_begin())
        return RpcStatus(StatusCode::INVALID_ARGUMENT,
                         "begin: the first message must carry it (version, tensor_count)");
      received_at_ = Clock::now();
      RpcStatus s = begin(c.begin());
      if (!s.ok()) return s;
    } else if (c.has_begin()) {
      return RpcStatus(StatusCode::INVALID_ARGUMENT, "begin: only the first message may carry it");
    }
    if (c.has_tensor()) {
      RpcStatus s = begin_tensor(c.tensor());
      if (!s.ok()) return s;
    }
    if (c.data().empty() && c.offset() == 0) return RpcStatus::OK;
    if (!current_.defined())
      return RpcStatus(StatusCode::INVALID_ARGUMENT, "data: no tensor has begun (a message with `tensor` comes first)");
    const int64_t size = static_cast<int64_t>(c.data().size()), total = current_.nbytes();
    if (c.offset() != filled_)
      return RpcStatus(StatusCode::INVALID_ARGUMENT, "tensor '" + name_ + "': chunk at offset " +
                                                         std::to_string(c.offset()) + ", expected " +
                                                         std::to_string(filled_) + " (chunks out of order or missing)");
    if (filled_ + size > total)
      return RpcStatus(StatusCode::INVALID_ARGUMENT, "tensor '" + name_ + "': chunk of " + std::to_string(size) +
                                                         " bytes at offset " + std::to_string(filled_) +
                                                         " overruns its " + std::to_string(total) + " bytes (shape " +
                                                         shape_str(current_.sizes()) + ")");
    std::memcpy(static_cast<char*>(current_.data_ptr()) + filled_, c.data().data(), size);
    filled_ += size;
    return RpcStatus::OK;
  }

  RpcStatus begin(const v1::UpdateBegin& b) {
    if (b.tensor_count() < 1)
      return RpcStatus(StatusCode::INVALID_ARGUMENT,
                       "begin.tensor_count: must be >= 1, got " + std::to_string(b.tensor_count()));
    if (b.total_bytes() < 0)
      return RpcStatus(StatusCode::INVALID_ARGUMENT,
                       "begin.total_bytes: must be >= 0, got " + std::to_string(b.total_bytes()));
    if (b.part_count() < 0)
      return RpcStatus(StatusCode::INVALID_ARGUMENT,
                       "begin.part_count: must be >= 0 (0: one part), got " + std::to_string(b.part_count()));
    const int64_t parts = std::max<int64_t>(b.part_count(), 1);
    if (b.part_index() < 0 || b.part_index() >= parts)
      return RpcStatus(StatusCode::INVALID_ARGUMENT, "begin.part_index: " + std::to_string(b.part_index()) +
                                                         " outside [0, part_count=" + std::to_string(parts) + ")");
    if (b.total_bytes() > server_->options().max_update_bytes) return too_large(b.total_bytes());
    RpcStatus s = server_->join_update(b, b.part_index(), parts, &update_);
    if (!s.ok()) return s;
    version_ = b.version();
    part_ = b.part_index();
    expected_ = b.tensor_count();
    return RpcStatus::OK;
  }

  RpcStatus begin_tensor(const v1::TensorBegin& t) {
    if (RpcStatus s = check_current_complete("before the next tensor began"); !s.ok()) return s;
    if (tensors_ >= expected_)
      return RpcStatus(StatusCode::INVALID_ARGUMENT, "tensor '" + t.name() + "': more tensors than the " +
                                                         std::to_string(expected_) + " announced (begin.tensor_count)");
    if (t.name().empty())
      return RpcStatus(StatusCode::INVALID_ARGUMENT, "tensor.name: empty (tensor " + std::to_string(tensors_) + ")");
    at::ScalarType type;
    if (!scalar_type_of(t.dtype(), &type))
      return RpcStatus(StatusCode::INVALID_ARGUMENT, "tensor '" + t.name() + "': dtype " + std::to_string(t.dtype()) +
                                                         " is not one of FLOAT32, BFLOAT16, FLOAT16, FLOAT8_E4M3");
    std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
    const int64_t limit = server_->options().max_update_bytes;
    int64_t numel = 1;
    for (int64_t d : shape) {
      if (d < 0)
        return RpcStatus(StatusCode::INVALID_ARGUMENT, "tensor '" + t.name() + "': negative dimension in shape");
      numel = d == 0 || numel <= limit / d ? numel * d : limit + 1;
    }
    const int64_t bytes = numel * static_cast<int64_t>(c10::elementSize(type));
    RpcStatus s = server_->stage_tensor(*update_, part_, t.name(), shape, type, bytes, &current_);
    if (!s.ok()) return s;
    name_ = t.name();
    bytes_ += bytes;
    ++tensors_;
    filled_ = 0;
    return RpcStatus::OK;
  }

  RpcStatus check_current_complete(const std::string& when) const {
    if (!current_.defined() || filled_ == current_.nbytes()) return RpcStatus::OK;
    return RpcStatus(StatusCode::INVALID_ARGUMENT, "tensor '" + name_ + "': " + std::to_string(filled_) + " of " +
                                                       std::to_string(current_.nbytes()) + " bytes received " + when +
                                                       " (truncated)");
  }

  RpcStatus too_large(int64_t bytes) const {
    return RpcStatus(StatusCode::RESOURCE_EXHAUSTED, "begin.total_bytes: " + std::to_string(bytes) +
                                                         " bytes, above the server's max_update_bytes (" +
                                                         std::to_string(server_->options().max_update_bytes) + ")");
  }

  void end_of_stream() {
    if (context_->IsCancelled()) return fail(RpcStatus(StatusCode::CANCELLED, "the update was cancelled"));
    if (!update_)
      return fail(RpcStatus(StatusCode::INVALID_ARGUMENT, "begin: the stream ended before it (empty update)"));
    if (RpcStatus s = check_current_complete("when the stream ended"); !s.ok()) return fail(s);
    if (tensors_ != expected_)
      return fail(RpcStatus(StatusCode::INVALID_ARGUMENT, "the stream ended after " + std::to_string(tensors_) +
                                                              " of " + std::to_string(expected_) +
                                                              " tensors (begin.tensor_count; truncated)"));
    receive_ms_ = ms_since(received_at_);
    staged_at_ = Clock::now();
    current_ = at::Tensor();
    // From here the server ends the call (finish_part), unless the version failed already.
    RpcStatus s = server_->part_complete(update_, this);
    if (!s.ok()) Finish(s);
  }

  // This call failed: so does its version (every part of it), when it had joined one.
  void fail(const RpcStatus& status) {
    current_ = at::Tensor();
    if (update_) {
      const std::string parts = std::to_string(update_->parts);
      server_->drop_update(
          update_, update_->parts == 1
                       ? status
                       : RpcStatus(StatusCode::ABORTED, "weights version " + std::to_string(version_) + ": part " +
                                                            std::to_string(part_) + " of " + parts + " failed (" +
                                                            status.error_message() + "); the version was dropped"));
    }
    Finish(status);
  }

  ServiceImpl* server_;
  CallbackServerContext* context_;
  v1::UpdateWeightsResponse* response_;
  v1::WeightChunk chunk_;
  std::shared_ptr<PendingUpdate> update_;  // set once `begin` was accepted
  int64_t version_ = 0, part_ = 0, expected_ = 0, tensors_ = 0, bytes_ = 0, filled_ = 0;
  Clock::time_point received_at_, staged_at_;
  double receive_ms_ = 0;
  std::string name_;  // of the tensor being filled
  at::Tensor current_;
};

RpcStatus ServiceImpl::join_update(const v1::UpdateBegin& b, int64_t part, int64_t parts,
                                   std::shared_ptr<PendingUpdate>* out) {
  expire_update();
  std::lock_guard<std::mutex> lock(update_mu_);
  const int64_t newest = engine_->latest_weight_version();
  if (b.version() <= newest)
    return RpcStatus(StatusCode::FAILED_PRECONDITION, "version: " + std::to_string(b.version()) +
                                                          " is not above the worker's newest version " +
                                                          std::to_string(newest));
  if (parts > 1 && b.version() == dropped_version_) return dropped_status_;  // a late part
  if (pending_) {
    const PendingUpdate& p = *pending_;
    if (p.parts == 1 || p.version != b.version() || p.parts != parts)
      return RpcStatus(
          StatusCode::ABORTED,
          p.parts == 1
              ? "another UpdateWeights call is in progress (version " + std::to_string(p.version) + "); retry after it"
              : "another update is in progress (version " + std::to_string(p.version) + " in " +
                    std::to_string(p.parts) + " parts; this call: version " + std::to_string(b.version()) + " in " +
                    std::to_string(parts) + "); retry after it");
    if (p.taken[part])
      return RpcStatus(StatusCode::ALREADY_EXISTS, "begin.part_index: part " + std::to_string(part) + " of " +
                                                       std::to_string(parts) + " of version " +
                                                       std::to_string(p.version) + " was sent by another call");
  } else {
    pending_ = std::make_shared<PendingUpdate>();
    pending_->version = b.version();
    pending_->parts = parts;
    pending_->started = Clock::now();
    pending_->taken.assign(parts, false);
    updating = true;
  }
  pending_->taken[part] = true;
  *out = pending_;
  return RpcStatus::OK;
}

RpcStatus ServiceImpl::stage_tensor(PendingUpdate& u, int64_t part, const std::string& name,
                                    const std::vector<int64_t>& shape, at::ScalarType type, int64_t bytes,
                                    at::Tensor* out) {
  std::lock_guard<std::mutex> lock(update_mu_);
  if (u.failed) return *u.failed;
  if (auto it = u.owner.find(name); it != u.owner.end())
    return RpcStatus(StatusCode::INVALID_ARGUMENT,
                     "tensor '" + name + "': " +
                         (it->second == part ? std::string("sent twice")
                                             : "sent by part " + std::to_string(it->second) + " and part " +
                                                   std::to_string(part) + " of version " + std::to_string(u.version)));
  if (bytes > options_.max_update_bytes - u.bytes)
    return RpcStatus(StatusCode::RESOURCE_EXHAUSTED, "tensor '" + name + "': the update reaches " +
                                                         std::to_string(u.bytes + bytes) +
                                                         " bytes, above the server's max_update_bytes (" +
                                                         std::to_string(options_.max_update_bytes) + ")");
  u.bytes += bytes;
  u.owner[name] = part;
  *out = u.staged[name] = at::empty(shape, at::TensorOptions().dtype(type));
  return RpcStatus::OK;
}

RpcStatus ServiceImpl::part_complete(const std::shared_ptr<PendingUpdate>& u, UpdateReactor* reactor) {
  {
    std::lock_guard<std::mutex> lock(update_mu_);
    if (u->failed) return *u->failed;
    u->complete.push_back(reactor);
    if (static_cast<int64_t>(u->complete.size()) < u->parts) return RpcStatus::OK;
    u->applying = true;
  }
  run_apply([this, u] {
    const Clock::time_point start = Clock::now();
    RpcStatus status;
    try {
      engine_->set_weights(u->version, u->staged);
    } catch (const InputError& e) {
      status = RpcStatus(StatusCode::INVALID_ARGUMENT, e.what());
    } catch (const std::exception& e) {
      status = RpcStatus(StatusCode::INTERNAL, std::string("applying the weights failed: ") + e.what());
    }
    const double apply_ms = ms_since(start);
    std::vector<UpdateReactor*> parts;
    {
      std::lock_guard<std::mutex> lock(update_mu_);
      if (status.ok()) {
        ++weight_updates;
      } else if (u->parts > 1) {
        dropped_version_ = u->version;
        dropped_status_ = status;
      }
      parts.swap(u->complete);
      u->staged.clear();
      if (pending_ == u) pending_.reset();
      updating = false;
    }
    for (UpdateReactor* p : parts) p->finish_part(status, apply_ms);
  });
  return RpcStatus::OK;
}

void ServiceImpl::drop_update(const std::shared_ptr<PendingUpdate>& u, const RpcStatus& status) {
  std::vector<UpdateReactor*> parts;
  {
    std::lock_guard<std::mutex> lock(update_mu_);
    if (u->failed || u->applying) return;
    u->failed = status;
    if (u->parts > 1) {
      dropped_version_ = u->version;
      dropped_status_ = status;
    }
    parts.swap(u->complete);
    u->staged.clear();
    if (pending_ == u) {
      pending_.reset();
      updating = false;
    }
  }
  for (UpdateReactor* p : parts) p->finish_part(status);
}

void ServiceImpl::expire_update() {
  std::shared_ptr<PendingUpdate> late;
  std::string missing;
  {
    std::lock_guard<std::mutex> lock(update_mu_);
    if (!pending_ || pending_->applying ||
        Clock::now() - pending_->started < std::chrono::milliseconds(options_.update_timeout_ms))
      return;
    late = pending_;
    std::vector<bool> staged(late->parts, false);
    for (const UpdateReactor* r : late->complete) staged[r->part()] = true;
    for (int64_t i = 0; i < late->parts; ++i)
      if (!staged[i])
        missing += (missing.empty() ? "" : ", ") + std::to_string(i) + (late->taken[i] ? "" : " (never began)");
  }
  drop_update(late, RpcStatus(StatusCode::DEADLINE_EXCEEDED,
                              "weights version " + std::to_string(late->version) + ": part(s) " + missing + " of " +
                                  std::to_string(late->parts) + " did not arrive complete within update_timeout_ms (" +
                                  std::to_string(options_.update_timeout_ms) +
                                  " ms of the first part); the version was dropped"));
}

grpc::ServerReadReactor<v1::WeightChunk>* ServiceImpl::UpdateWeights(CallbackServerContext* context,
                                                                     v1::UpdateWeightsResponse* response) {
  return new UpdateReactor(this, context, response);
}

}  // namespace

class RolloutServer::Impl : public ServiceImpl {
 public:
  using ServiceImpl::ServiceImpl;
};

RolloutServer::RolloutServer(std::shared_ptr<Engine> engine, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(engine), std::move(options))) {}
RolloutServer::~RolloutServer() { shutdown(); }
void RolloutServer::start() { impl_->start(); }
const std::string& RolloutServer::address() const { return impl_->address(); }
void RolloutServer::shutdown() { impl_->shutdown(); }
void RolloutServer::wait() { impl_->wait(); }
v1::StatusResponse RolloutServer::status() const { return impl_->status(); }

}  // namespace grpo::rollout
