// The Generate calls of the RolloutService: validation, admission (or parking until the weights
// are new enough), submission to the engine and routing of completions back to their calls.
#include <algorithm>
#include <tuple>

#include "common/error.h"
#include "rollout/service/service_impl.h"

namespace grpo::rollout::detail {
namespace {

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
}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* ServiceImpl::Generate(CallbackServerContext* context,
                                                                  const grpc::ByteBuffer* bytes) {
  auto call = std::make_shared<GenerateReactor>(this, context);
  call->self = call;
  v1::GenerateRequest request;
  std::string error;
  RpcStatus status = parse_message(*bytes, &request, &error) ? prepare(request, *call, context)
                                                             : RpcStatus(StatusCode::INVALID_ARGUMENT, error);
  if (status.ok()) status = admit(call);
  if (!status.ok()) call->finish(status);
  return call.get();
}

RpcStatus ServiceImpl::prepare(const v1::GenerateRequest& r, GenerateReactor& call,
                               CallbackServerContext* context) const {
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
    q.record_routes = r.record_routes();
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

RpcStatus ServiceImpl::admit(const std::shared_ptr<GenerateReactor>& call) {
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

RpcStatus ServiceImpl::version_too_old(const GenerateReactor& call) const {
  return RpcStatus(StatusCode::FAILED_PRECONDITION, "min_weight_version: the worker's weights are version " +
                                                        std::to_string(engine_->latest_weight_version()) +
                                                        ", the call needs " + std::to_string(call.min_version) +
                                                        " and none newer arrived before its deadline");
}

RpcStatus ServiceImpl::submit_locked(const std::shared_ptr<GenerateReactor>& call) {
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

void ServiceImpl::forget(const std::shared_ptr<GenerateReactor>& call) {
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

void ServiceImpl::route(std::vector<Completion> done) {
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

void ServiceImpl::release_parked() {
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
  if (!c.routes.empty()) {  // [tokens, layers, top_k] uint16 as they lie in memory: little-endian on our hosts
    r.set_routes(reinterpret_cast<const char*>(c.routes.experts.data()), c.routes.experts.size() * sizeof(uint16_t));
    r.set_route_layers(static_cast<uint32_t>(c.routes.layers));
    r.set_route_top_k(static_cast<uint32_t>(c.routes.top_k));
  }
  bool start;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    if (remaining_ < 0) {
      remaining_ = 0;
      for (const Request& q : requests) remaining_ += q.n;
    }
    --remaining_;
    writes_.push_back(to_byte_buffer(r));
    start = !writing_;
    writing_ = true;
  }
  if (start) StartWrite(&writes_.front());
}

void GenerateReactor::OnWriteDone(bool ok) {
  const grpc::ByteBuffer* next = nullptr;
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
}  // namespace grpo::rollout::detail
