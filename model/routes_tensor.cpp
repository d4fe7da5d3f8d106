#include "model/routes_tensor.h"

#include <stdexcept>

namespace grpo {

void append_routes(Routes& out, const std::vector<at::Tensor>& layer_routes, int64_t begin, int64_t count) {
  std::vector<at::Tensor> rows;  // per MoE layer [count, k]
  for (const at::Tensor& l : layer_routes)
    if (l.defined()) rows.push_back(l.narrow(0, begin, count));
  if (rows.empty()) return;
  const at::Tensor ids = at::stack(rows, 1).to(at::kCPU).contiguous();  // [count, L, k]
  const int64_t layers = ids.size(1), top_k = ids.size(2);
  if (out.tokens == 0) {
    out.layers = layers;
    out.top_k = top_k;
  }
  if (out.layers != layers || out.top_k != top_k)
    throw std::logic_error("append_routes: " + std::to_string(layers) + " layers × " + std::to_string(top_k) +
                           " experts onto routes of " + std::to_string(out.layers) + " × " + std::to_string(out.top_k));
  if (count > 0 && ids.min().item<int64_t>() < 0)
    throw std::logic_error("append_routes: a position that skipped the routed experts has no route");
  const int64_t* p = ids.data_ptr<int64_t>();
  out.experts.insert(out.experts.end(), p, p + ids.numel());
  out.tokens += count;
}

void truncate_routes(Routes& r, int64_t tokens) {
  if (tokens >= r.tokens) return;
  r.tokens = tokens;
  r.experts.resize(static_cast<size_t>(r.offset(tokens, 0)));
}

at::Tensor routes_tensor(const Routes& r) {
  at::Tensor out = at::empty({r.tokens, r.layers, r.top_k}, at::kLong);
  int64_t* p = out.data_ptr<int64_t>();
  for (size_t i = 0; i < r.experts.size(); ++i) p[i] = r.experts[i];
  return out;
}

}  // namespace grpo
