#include "rollout/service/client.h"

#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/fp8.h"

namespace grpo::rollout {
namespace {

v1::GenerateRequest to_proto(const GenerateCall& call) {
  v1::GenerateRequest r;
  const GenerationParams& g = call.params;
  v1::SamplingParams* p = r.mutable_params();
  p->set_temperature(g.sampling.temperature);
  p->set_top_p(g.sampling.top_p);
  p->set_top_k(g.sampling.top_k);
  p->set_seed(g.sampling.seed);
  p->set_max_new_tokens(g.max_new_tokens);
  *p->mutable_stop_token_ids() = {g.stop_token_ids.begin(), g.stop_token_ids.end()};
  for (const std::string& s : g.stop_strings) p->add_stop_strings(s);
  for (const GeneratePrompt& q : call.prompts) {
    v1::Prompt* out = r.add_prompts();
    *out->mutable_token_ids() = {q.token_ids.begin(), q.token_ids.end()};
    out->set_n(q.n);
    if (q.seed) out->set_seed(*q.seed);
  }
  r.set_min_weight_version(call.min_weight_version);
  r.set_record_routes(call.record_routes);
  return r;
}

// A tensor as it goes on the wire.
struct WireTensor {
  std::string name;
  v1::DType dtype;
  at::Tensor data;  // contiguous, CPU
};

v1::DType wire_dtype(const std::string& name, const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return v1::FLOAT32;
    case at::kBFloat16: return v1::BFLOAT16;
    case at::kHalf: return v1::FLOAT16;
    default:
      throw InputError("tensor '" + name + "': dtype " + std::string(c10::toString(t.scalar_type())) +
                       " cannot be sent as weights (float32, bfloat16 or float16)");
  }
}

std::vector<WireTensor> wire_tensors(const std::map<std::string, at::Tensor>& state, bool fp8) {
  std::vector<WireTensor> out;
  for (const auto& [name, t] : state) {
    at::Tensor cpu = t.detach().to(at::kCPU);
    const v1::DType dtype = wire_dtype(name, cpu);
    if (fp8 && is_fp8_quantizable(name, cpu)) {
      Fp8Blocks b;
      try {
        b = quantize_fp8_blocks(cpu.to(at::kFloat));
      } catch (const InputError& e) {
        throw InputError("tensor '" + name + "': " + e.what());
      }
      out.push_back({name, v1::FLOAT8_E4M3, b.q.contiguous()});
      out.push_back({name + kFp8ScaleSuffix, v1::FLOAT32, b.scale.contiguous()});
    } else {
      out.push_back({name, dtype, cpu.contiguous()});
    }
  }
  return out;
}

FinishReason finish_reason_of(v1::FinishReason r, bool* ok) {
  *ok = true;
  switch (r) {
    case v1::STOP: return FinishReason::kStop;
    case v1::LENGTH: return FinishReason::kLength;
    case v1::EOS: return FinishReason::kEos;
    default: *ok = false; return FinishReason::kLength;
  }
}

// Decodes r's routes (proto/rollout.proto) into `routes` for a completion of `completion_tokens`
// after `prompt_tokens`; an empty string when they fit, else what is wrong.
std::string decode_routes(const v1::GenerateResponse& r, size_t prompt_tokens, size_t completion_tokens,
                          Routes& routes) {
  if (r.routes().empty()) return {};
  const std::string sizes = std::to_string(r.routes().size()) + " route bytes, route_layers " +
                            std::to_string(r.route_layers()) + ", route_top_k " + std::to_string(r.route_top_k());
  const uint64_t row = uint64_t(r.route_layers()) * r.route_top_k() * sizeof(uint16_t);  // bytes per position
  if (row == 0 || r.routes().size() % row != 0)
    return sizes + ": expected a multiple of 2 x route_layers x route_top_k (both >= 1)";
  const auto tokens = static_cast<int64_t>(r.routes().size() / row);
  const auto expected = static_cast<int64_t>(prompt_tokens + completion_tokens) - 1;
  if (tokens != expected)
    return sizes + ": " + std::to_string(tokens) +
           " positions, expected prompt + completion - 1 = " + std::to_string(expected);
  routes.tokens = tokens;
  routes.layers = r.route_layers();
  routes.top_k = r.route_top_k();
  routes.experts.resize(r.routes().size() / sizeof(uint16_t));
  std::memcpy(routes.experts.data(), r.routes().data(), r.routes().size());
  return {};
}

}  // namespace

RolloutClient::RolloutClient(std::string address, ClientOptions options)
    : address_(std::move(address)), options_(options) {
  channel_ = make_channel(address_, options_);
  stub_ = v1::RolloutService::NewStub(channel_);
}

void RolloutClient::generate(const GenerateCall& call,
                             const std::function<void(size_t, Completion&&)>& on_completion) const {
  const v1::GenerateRequest request = to_proto(call);
  size_t total = 0;
  for (const GeneratePrompt& p : call.prompts) total += static_cast<size_t>(std::max<int64_t>(p.n, 0));
  int64_t backoff = options_.backoff_ms;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext context;
    set_deadline(context, options_, call.timeout_ms);
    auto reader = stub_->Generate(&context, request);
    std::set<std::pair<size_t, int64_t>> seen;
    auto abort = [&] {
      context.TryCancel();
      v1::GenerateResponse ignored;
      while (reader->Read(&ignored)) {}
      reader->Finish();
    };
    v1::GenerateResponse r;
    while (reader->Read(&r)) {
      const size_t prompt = r.prompt_index();
      bool known_reason = false;
      Completion c;
      c.finish_reason = finish_reason_of(r.finish_reason(), &known_reason);
      std::string problem;
      if (prompt >= call.prompts.size())
        problem = "prompt_index " + std::to_string(prompt) + " out of range";
      else if (r.sample_index() < 0 || r.sample_index() >= call.prompts[prompt].n)
        problem =
            "prompt " + std::to_string(prompt) + ": sample_index " + std::to_string(r.sample_index()) + " out of range";
      else if (!seen.insert({prompt, r.sample_index()}).second)
        problem = "prompt " + std::to_string(prompt) + ", sample " + std::to_string(r.sample_index()) + " sent twice";
      else if (!known_reason)
        problem = "finish_reason missing";
      else if (r.logprobs_size() != r.token_ids_size())
        problem = "token_ids and logprobs differ in length";
      else if (std::string why = decode_routes(r, call.prompts[prompt].token_ids.size(), r.token_ids_size(), c.routes);
               !why.empty())
        problem = "prompt " + std::to_string(prompt) + ", sample " + std::to_string(r.sample_index()) + ": " + why;
      if (!problem.empty()) {
        abort();
        throw RpcError(grpc::INTERNAL, peer() + ": Generate: bad response: " + problem);
      }
      c.sample_index = r.sample_index();
      c.token_ids.assign(r.token_ids().begin(), r.token_ids().end());
      c.logprobs.assign(r.logprobs().begin(), r.logprobs().end());
      c.text = std::move(*r.mutable_text());
      c.weight_version = r.weight_version();
      c.prompt_tokens = r.prompt_tokens();
      try {
        on_completion(prompt, std::move(c));
      } catch (...) {
        abort();
        throw;
      }
    }
    const grpc::Status status = reader->Finish();
    if (status.ok()) {
      if (seen.size() != total)
        throw RpcError(grpc::INTERNAL, peer() + ": Generate: the stream ended after " + std::to_string(seen.size()) +
                                           " of " + std::to_string(total) + " completions");
      return;
    }
    if (status.error_code() != grpc::UNAVAILABLE || !seen.empty() || attempt > options_.retries)
      throw rpc_error(peer(), "Generate", status, attempt);
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
    backoff *= 2;
  }
}

WeightUpdateStats RolloutClient::update_weights(int64_t version, const std::map<std::string, at::Tensor>& state,
                                                bool fp8, int64_t chunk_bytes, UpdatePart part) const {
  if (chunk_bytes < 1) throw InputError("update_weights: chunk_bytes must be >= 1, got " + std::to_string(chunk_bytes));
  if (part.count < 1 || part.index < 0 || part.index >= part.count)
    throw InputError("update_weights: part " + std::to_string(part.index) + " of " + std::to_string(part.count) +
                     " (expected 0 <= index < count)");
  const auto start = std::chrono::steady_clock::now();
  const std::vector<WireTensor> tensors = wire_tensors(state, fp8);
  int64_t total = 0;
  for (const WireTensor& t : tensors) total += t.data.nbytes();

  grpc::ClientContext context;
  set_deadline(context, options_);
  v1::UpdateWeightsResponse response;
  auto writer = stub_->UpdateWeights(&context, &response);
  v1::WeightChunk chunk;
  v1::UpdateBegin* begin = chunk.mutable_begin();
  begin->set_version(version);
  begin->set_tensor_count(static_cast<int64_t>(tensors.size()));
  begin->set_total_bytes(total);
  begin->set_part_index(part.index);
  begin->set_part_count(part.count);
  bool open = true;
  for (const WireTensor& t : tensors) {
    v1::TensorBegin* header = chunk.mutable_tensor();
    header->set_name(t.name);
    header->set_dtype(t.dtype);
    for (int64_t d : t.data.sizes()) header->add_shape(d);
    const char* bytes = static_cast<const char*>(t.data.data_ptr());
    const int64_t size = t.data.nbytes();
    int64_t offset = 0;
    do {  // the header travels with the first piece (an empty tensor sends just its header)
      const int64_t piece = std::min(chunk_bytes, size - offset);
      chunk.set_offset(offset);
      chunk.set_data(bytes + offset, static_cast<size_t>(piece));
      open = writer->Write(chunk);
      chunk.Clear();
      offset += piece;
    } while (open && offset < size);
    if (!open) break;  // the server ended the call; Finish() says why
  }
  if (open) writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) throw rpc_error(peer(), "UpdateWeights", status);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {response.version(), response.tensors(), response.bytes(), seconds, response.apply_ms()};
}

v1::StatusResponse RolloutClient::status() const {
  v1::StatusResponse response;
  call_with_retries(peer(), "Status", options_, 0,
                    [&](grpc::ClientContext& c) { return stub_->Status(&c, v1::StatusRequest(), &response); });
  return response;
}

}  // namespace grpo::rollout
