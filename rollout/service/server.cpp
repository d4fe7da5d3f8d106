#include "rollout/service/server.h"

#include "common/error.h"
#include "rollout/service/service_impl.h"

namespace grpo::rollout {
namespace detail {
namespace {

const char* dtype_name(const ModelOptions& o) {
  if (o.fp8) return "fp8";
  switch (o.compute_dtype) {
    case at::kBFloat16: return "bf16";
    case at::kDouble: return "fp64";
    default: return "fp32";
  }
}
}  // namespace

// ---- lifecycle -------------------------------------------------------------------------------

void ServiceImpl::start() {
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

void ServiceImpl::shutdown() {
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

bool ServiceImpl::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !calls_.empty();
}

bool ServiceImpl::stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

void ServiceImpl::wait() {
  if (server_) server_->Wait();
}

// ---- Status ----------------------------------------------------------------------------------

v1::StatusResponse ServiceImpl::status() const {
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
  const LmSpec& c = engine_->spec();
  v1::ModelInfo* m = r.mutable_model();
  m->set_model_type(c.model_type);
  m->set_vocab_size(c.vocab_size);
  m->set_hidden_size(c.hidden_size);
  m->set_num_hidden_layers(c.num_hidden_layers);
  m->set_max_position_embeddings(c.max_position_embeddings);
  // Family-specific sizes from config.json; 0 where the model has none (a dense decoder's MLA and MoE).
  const nlohmann::json& j = engine_->model_config();
  auto size_of = [&](const char* key) -> int64_t {
    const auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
  };
  m->set_num_attention_heads(size_of("num_attention_heads"));
  m->set_kv_lora_rank(size_of("kv_lora_rank"));
  m->set_q_lora_rank(size_of("q_lora_rank"));
  m->set_n_routed_experts(size_of("n_routed_experts"));
  m->set_num_experts_per_tok(size_of("num_experts_per_tok"));
  m->set_dtype(dtype_name(engine_->model_options()));
  return r;
}

grpc::ServerUnaryReactor* ServiceImpl::Status(CallbackServerContext* context, const grpc::ByteBuffer* request,
                                              grpc::ByteBuffer* response) {
  auto* reactor = context->DefaultReactor();
  v1::StatusRequest r;
  std::string error;
  if (!parse_message(*request, &r, &error)) {
    reactor->Finish(RpcStatus(StatusCode::INVALID_ARGUMENT, error));
    return reactor;
  }
  *response = to_byte_buffer(status());
  reactor->Finish(RpcStatus::OK);
  return reactor;
}

// ---- the engine loop -------------------------------------------------------------------------

void ServiceImpl::engine_loop() {
  while (!stop_loop_) {
    const bool more = engine_->step();
    route(engine_->poll());
    release_parked();
    expire_update();
    if (!more) engine_->wait_for_work(kIdleTick);
  }
}

}  // namespace detail

class RolloutServer::Impl : public detail::ServiceImpl {
 public:
  using detail::ServiceImpl::ServiceImpl;
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
