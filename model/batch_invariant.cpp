#include "model/batch_invariant.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"
#include "kernels/latent_attention.h"
#include "kernels/linear_dot.h"
#include "model/project.h"

namespace grpo {
namespace {

std::atomic<bool> g_portable{false};

}  // namespace

void set_portable_ops(bool on) { g_portable = on; }

bool portable_ops(const at::Tensor& t) { return !t.device().is_cpu() || g_portable; }

namespace {

// out[i] = f(in[i]) for every element, in fp32 (fp64 for fp64 input); x's dtype back.
// The portable path (portable_ops): `aten` on x in that dtype.
template <typename F, typename D, typename A>
at::Tensor map_elements(const at::Tensor& x, F f, D d, A aten) {
  const at::ScalarType acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  if (portable_ops(x)) return aten(x.to(acc)).to(x.scalar_type());
  const at::Tensor in = x.to(acc).contiguous();
  at::Tensor out = at::empty_like(in);
  const int64_t n = in.numel();
  if (acc == at::kDouble) {
    const double* src = in.data_ptr<double>();
    double* dst = out.data_ptr<double>();
    at::parallel_for(0, n, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dst[i] = d(src[i]);
    });
  } else {
    const float* src = in.data_ptr<float>();
    float* dst = out.data_ptr<float>();
    at::parallel_for(0, n, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dst[i] = f(src[i]);
    });
  }
  return out.to(x.scalar_type());
}

template <typename T>
T sigmoid_of(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

}  // namespace

namespace {

// The no-grad product of fp32 or bf16 operands: kernels::linear_dot, batch-invariant by
// construction. Under grad mode with an operand that needs a gradient, ATen's mm (autograd).
bool dot_kernel_applies(const at::Tensor& x, const at::Tensor& w) {
  auto kind = [](const at::Tensor& t) {
    return t.device().is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16);
  };
  if (portable_ops(x) || !kind(x) || !kind(w) || w.dim() != 2) return false;
  return !at::GradMode::is_enabled() || (!x.requires_grad() && !w.requires_grad());
}

}  // namespace

at::Tensor linear_invariant(const at::Tensor& x, const at::Tensor& w) {
  const int64_t in = x.size(-1), out = w.size(0);
  const int64_t n = in == 0 ? 0 : x.numel() / in;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  if (dot_kernel_applies(x, w)) {
    // bf16 activations take bf16 weights (as the grad-mode path does); fp32 activations read bf16
    // weights as they are (widening is exact).
    const at::Tensor wk = (x.scalar_type() == at::kBFloat16 ? like(w, x) : w).contiguous();  // [out, in]
    const at::Tensor xf = x.reshape({n, in}).to(at::kFloat).contiguous();                    // [N, in]
    at::Tensor y = at::empty({n, out}, xf.options());                                        // [N, out]
    kernels::linear_dot(xf.data_ptr<float>(), n, in, wk.data_ptr(),
                        wk.scalar_type() == at::kFloat ? kernels::WeightType::kF32 : kernels::WeightType::kBF16, out,
                        y.data_ptr<float>());
    return y.to(x.scalar_type()).view(shape);  // [..., out]
  }
  if (portable_ops(x)) return at::matmul(x, like(w, x).t());  // [..., out]
  at::Tensor rows = x.reshape({n, in});                       // [N, in]
  const int64_t pad = (kInvariantRows - n % kInvariantRows) % kInvariantRows;
  if (pad) rows = at::constant_pad_nd(rows, {0, 0, 0, pad});  // [N + pad, in]
  at::Tensor y = at::mm(rows, like(w, x).t());                // [N + pad, out]
  if (pad) y = y.narrow(0, 0, n);
  return y.reshape(shape);  // [..., out]
}

at::Tensor silu_invariant(const at::Tensor& x) {
  if (at::GradMode::is_enabled()) return at::silu(x);
  return map_elements(
      x, [](float v) { return v * sigmoid_of(v); }, [](double v) { return v * sigmoid_of(v); },
      [](const at::Tensor& v) { return at::silu(v); });
}

at::Tensor sigmoid_invariant(const at::Tensor& x) {
  if (at::GradMode::is_enabled()) return at::sigmoid(x);
  return map_elements(x, sigmoid_of<float>, sigmoid_of<double>, [](const at::Tensor& v) { return at::sigmoid(v); });
}

at::Tensor cos_invariant(const at::Tensor& x) {
  return map_elements(
      x, [](float v) { return std::cos(v); }, [](double v) { return std::cos(v); },
      [](const at::Tensor& v) { return at::cos(v); });
}

at::Tensor sin_invariant(const at::Tensor& x) {
  return map_elements(
      x, [](float v) { return std::sin(v); }, [](double v) { return std::sin(v); },
      [](const at::Tensor& v) { return at::sin(v); });
}

namespace {

// fp64: a scalar loop, every sum over channels and keys in order (the fp32 path's scores use
// linear_dot's lane order instead).
void attend_double(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& slots, int64_t value_dim,
                   double scale, at::Tensor& out) {
  const int64_t b = query.size(0), t = query.size(1), h = query.size(2), k = query.size(3), s = keys.size(1);
  const double* q = query.data_ptr<double>();
  const double* kv = keys.data_ptr<double>();
  const int64_t* slot = slots.data_ptr<int64_t>();
  double* o = out.data_ptr<double>();
  at::parallel_for(0, b * t * h, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> p(s);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t row = i / (t * h), last = slot[i / h];  // i / h = row * T + position
      const double* qi = q + i * k;
      const double* base = kv + row * s * k;
      double top = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j <= last; ++j) {  // scores, in key order
        const double* kj = base + j * k;
        double dot = 0;
        for (int64_t c = 0; c < k; ++c) dot += qi[c] * kj[c];
        p[j] = dot * scale;
        top = std::max(top, p[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j <= last; ++j) {
        p[j] = std::exp(p[j] - top);
        sum += p[j];
      }
      double* oi = o + i * value_dim;
      for (int64_t j = 0; j <= last; ++j) {  // values: the first value_dim columns of each key
        const double w = p[j] / sum;
        const double* vj = base + j * k;
        for (int64_t c = 0; c < value_dim; ++c) oi[c] += w * vj[c];
      }
    }
  });
}

// fp32: kernels::latent_attention per query position (all heads at once).
void attend_float(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& slots, int64_t value_dim,
                  double scale, at::Tensor& out) {
  const int64_t b = query.size(0), t = query.size(1), h = query.size(2), k = query.size(3), s = keys.size(1);
  const float* q = query.data_ptr<float>();
  const float* kv = keys.data_ptr<float>();
  const int64_t* slot = slots.data_ptr<int64_t>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, b * t, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch;
    for (int64_t i = begin; i < end; ++i) {  // i = row * T + position
      const int64_t count = slot[i] + 1;
      scratch.resize(h * count);
      kernels::latent_attention(q + i * h * k, h, k, kv + (i / t) * s * k, count, value_dim, static_cast<float>(scale),
                                scratch.data(), o + i * h * value_dim);
    }
  });
}

}  // namespace

at::Tensor attention_invariant(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& slots,
                               int64_t value_dim, double scale) {
  TORCH_CHECK(query.dim() == 4 && keys.dim() == 3 && slots.dim() == 2 && query.size(0) == keys.size(0) &&
                  query.size(3) == keys.size(2) && slots.size(0) == query.size(0) && slots.size(1) == query.size(1) &&
                  value_dim <= keys.size(2),
              "attention_invariant: query ", query.sizes(), ", keys ", keys.sizes(), ", slots ", slots.sizes());
  const at::ScalarType acc = query.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK(query.device().is_cpu() && keys.device().is_cpu(),
              "attention_invariant: CPU tensors only (another device takes MLA's absorbed form, model/mla.cpp)");
  const at::Tensor q = query.to(acc).contiguous(), kv = keys.to(acc).contiguous();
  const at::Tensor sl = slots.to(at::kLong).contiguous();
  const int64_t* slot = sl.data_ptr<int64_t>();
  for (int64_t i = 0; i < sl.numel(); ++i)
    if (slot[i] < 0 || slot[i] >= keys.size(1))
      throw InputError("attention: query slot " + std::to_string(slot[i]) + " outside the " +
                       std::to_string(keys.size(1)) + " keys of its row");
  at::Tensor out = at::zeros({query.size(0), query.size(1), query.size(2), value_dim}, q.options());
  if (acc == at::kDouble)
    attend_double(q, kv, sl, value_dim, scale, out);
  else
    attend_float(q, kv, sl, value_dim, scale, out);
  return out.to(query.scalar_type());
}

}  // namespace grpo
