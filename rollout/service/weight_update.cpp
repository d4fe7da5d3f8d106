// The UpdateWeights calls of the RolloutService: the multi-part weight-update assembler (each
// part's chunks staged into one pending version, applied when every part is complete, dropped on
// error or after update_timeout_ms).
#include <cstring>

#include "common/error.h"
#include "model/shape_text.h"
#include "rollout/service/service_impl.h"

namespace grpo::rollout::detail {
namespace {

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
}  // namespace

void ServiceImpl::run_apply(std::function<void()> apply) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  if (applier_.joinable()) applier_.join();
  applier_ = std::thread(std::move(apply));
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

}  // namespace grpo::rollout::detail
