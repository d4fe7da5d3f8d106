#include "model/causal_lm.h"

#include "common/error.h"
#include "model/deepseek.h"
#include "model/dense_decoder.h"

namespace grpo {

at::Tensor CausalLM::logprobs(const at::Tensor& ids) const {
  const int64_t t = ids.size(1);
  const at::Tensor all = logits(ids.narrow(1, 0, t - 1));  // [B, T-1, V]
  return all.log_softmax(-1).gather(-1, ids.narrow(1, 1, t - 1).to(all.device()).unsqueeze(-1)).squeeze(-1);
}

at::Tensor CausalLM::mtp_hidden(const at::Tensor&, const at::Tensor&, const Feed&) const {
  throw InputError("mtp_hidden: this " + spec().model_type + " model has no MTP module");
}

at::Tensor CausalLM::mtp_logits_at(const at::Tensor&, const at::Tensor&) const {
  throw InputError("mtp_logits_at: this " + spec().model_type + " model has no MTP module");
}

LatentCache CausalLM::make_cache(int64_t batch, int64_t capacity) const {
  const LmSpec s = spec();
  return LatentCache(s.num_hidden_layers, batch, capacity, s.cache_width, /*rope_dim=*/0, options().compute_dtype,
                     options().device);
}

std::unique_ptr<CausalLM> make_causal_lm(const nlohmann::json& config, const std::string& source,
                                         const ModelOptions& options) {
  if (is_dense_config(config)) return std::make_unique<DenseDecoder>(DenseConfig::from_json(config, source), options);
  return std::make_unique<DeepseekModel>(ModelConfig::from_json(config, source), options);
}

}  // namespace grpo
