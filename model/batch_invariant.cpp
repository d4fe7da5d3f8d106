#include "model/batch_invariant.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"

namespace grpo {
namespace {

// out[i] = f(in[i]) for every element, in fp32 (fp64 for fp64 input); x's dtype back.
template <typename F, typename D>
at::Tensor map_elements(const at::Tensor& x, F f, D d) {
  const at::ScalarType acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
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

at::Tensor linear_invariant(const at::Tensor& x, const at::Tensor& w) {
  const int64_t in = x.size(-1), out = w.size(0);
  const int64_t n = in == 0 ? 0 : x.numel() / in;
  at::Tensor rows = x.reshape({n, in});  // [N, in]
  const int64_t pad = (kInvariantRows - n % kInvariantRows) % kInvariantRows;
  if (pad) rows = at::constant_pad_nd(rows, {0, 0, 0, pad});  // [N + pad, in]
  at::Tensor y = at::mm(rows, w.t());                         // [N + pad, out]
  if (pad) y = y.narrow(0, 0, n);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  return y.reshape(shape);  // [..., out]
}

at::Tensor silu_invariant(const at::Tensor& x) {
  if (at::GradMode::is_enabled()) return at::silu(x);
  return map_elements(
      x, [](float v) { return v * sigmoid_of(v); }, [](double v) { return v * sigmoid_of(v); });
}

at::Tensor sigmoid_invariant(const at::Tensor& x) {
  if (at::GradMode::is_enabled()) return at::sigmoid(x);
  return map_elements(x, sigmoid_of<float>, sigmoid_of<double>);
}

at::Tensor cos_invariant(const at::Tensor& x) {
  return map_elements(
      x, [](float v) { return std::cos(v); }, [](double v) { return std::cos(v); });
}

at::Tensor sin_invariant(const at::Tensor& x) {
  return map_elements(
      x, [](float v) { return std::sin(v); }, [](double v) { return std::sin(v); });
}

namespace {

template <typename T>
void attend(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& slots, int64_t value_dim, double scale,
            at::Tensor& out) {
  const int64_t b = query.size(0), t = query.size(1), h = query.size(2), k = query.size(3), s = keys.size(1);
  const T* q = query.data_ptr<T>();
  const T* kv = keys.data_ptr<T>();
  const int64_t* slot = slots.data_ptr<int64_t>();
  T* o = out.data_ptr<T>();
  const T sc = static_cast<T>(scale);
  at::parallel_for(0, b * t * h, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> p(s);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t row = i / (t * h), query_index = i / h;  // query_index = row * T + position
      const int64_t last = slot[query_index];
      if (last < 0 || last >= s)
        throw InputError("attention: query slot " + std::to_string(last) + " outside the " + std::to_string(s) +
                         " keys of its row");
      const T* qi = q + i * k;
      const T* base = kv + row * s * k;
      T top = -std::numeric_limits<T>::infinity();
      for (int64_t j = 0; j <= last; ++j) {  // scores, in key order
        const T* kj = base + j * k;
        T dot = 0;
        for (int64_t c = 0; c < k; ++c) dot += qi[c] * kj[c];
        p[j] = dot * sc;
        top = std::max(top, p[j]);
      }
      T sum = 0;
      for (int64_t j = 0; j <= last; ++j) {
        p[j] = std::exp(p[j] - top);
        sum += p[j];
      }
      T* oi = o + i * value_dim;
      for (int64_t j = 0; j <= last; ++j) {  // values: the first value_dim columns of each key
        const T w = p[j] / sum;
        const T* vj = base + j * k;
        for (int64_t c = 0; c < value_dim; ++c) oi[c] += w * vj[c];
      }
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
  const at::Tensor q = query.to(acc).contiguous(), kv = keys.to(acc).contiguous();
  const at::Tensor sl = slots.to(at::kLong).contiguous();
  at::Tensor out = at::zeros({query.size(0), query.size(1), query.size(2), value_dim}, q.options());
  if (acc == at::kDouble)
    attend<double>(q, kv, sl, value_dim, scale, out);
  else
    attend<float>(q, kv, sl, value_dim, scale, out);
  return out.to(query.scalar_type());
}

}  // namespace grpo
