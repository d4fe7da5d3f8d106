// Batch-invariant CPU ops: a token's result depends on that token's inputs only, bit for bit —
// never on how many other rows share the call, where the token sits among them, how a prompt was
// cut into chunks, or how much padding or cache lies beyond it. This is what lets the trainer
// re-score a completion to exactly the log-probs the rollout engine reported when it sampled it
// (issue 19's contract; tests/model_batch_invariance_test.cpp guards it for every op here and for
// the whole model).
//
// Why plain ATen ops are not enough (measured with LibTorch 2.x / MKL on x86, fp32):
//  * a GEMM's row i changes with the number of rows M (small-M kernels accumulate differently);
//    linear_invariant computes every element as one dot product in a fixed order
//    (kernels/linear_dot.h) for fp32/bf16 without autograd, and pads the rows of ATen's mm to a
//    multiple of kInvariantRows otherwise (fp64, or an operand that needs a gradient), so that
//    every row takes the same kernel;
//  * element-wise transcendentals (exp inside silu and sigmoid, cos, sin) use a SIMD polynomial on
//    whole vectors and the scalar libm function on the tail of a loop, and intra-op threads cut
//    the loop at positions that depend on the tensor's size: an element's result depends on where
//    the cuts fall. Here every element goes through the same scalar libm code;
//  * attention reduces over the keys with a length and grouping that depend on the batch (the
//    longest row, the cache's size); attention_invariant reduces over exactly keys 0..slot of the
//    query, in order.
// Row-wise reductions of ATen (softmax, log_softmax, mean over the last dim) and exact element-wise
// arithmetic (+ − × ÷, sqrt) are already batch-invariant and are used as they are.
//
// These are CPU kernels. Tensors on another device (CUDA) take ATen's ops instead (the portable
// path): the same functions, not batch-invariant; attention_invariant is CPU-only (MLA's absorbed
// form with ATen's products takes its place there, model/mla.cpp). set_portable_ops(true) sends CPU tensors down
// that path too, so that tests run on the CPU the code a GPU runs.
//
// Pure functions; thread-safe (set_portable_ops: set it before the model runs). Autograd flows
// through linear_invariant, silu_invariant and sigmoid_invariant; the others are forward-only.
#pragma once
#include <ATen/ATen.h>

namespace grpo {

// Rows per GEMM tile of the ATen fallback: its GEMMs have a multiple of this many rows.
constexpr int64_t kInvariantRows = 16;

// Process-wide (default off): CPU tensors take the portable path as well. For tests.
void set_portable_ops(bool on);
// True when `t` takes the portable path: it is not on the CPU, or set_portable_ops(true).
bool portable_ops(const at::Tensor& t);

// x · wᵀ for x [..., in], w [out, in] -> [..., out] in x's dtype, each row computed as if alone.
// w is used in x's dtype (a bf16 w under fp32 x is read as it is: widening is exact).
at::Tensor linear_invariant(const at::Tensor& x, const at::Tensor& w);

// Element-wise silu(x) = x·σ(x), σ(x) = 1 / (1 + e^-x), and cos/sin, with every element computed by
// the same scalar code (no SIMD polynomial, no loop tail) wherever it sits. Under grad mode silu and
// sigmoid are ATen's differentiable ops (training forwards need gradients, not invariance). Any
// float dtype; computed in fp32 (fp64 for fp64), returned in x's dtype.
at::Tensor silu_invariant(const at::Tensor& x);
at::Tensor sigmoid_invariant(const at::Tensor& x);
at::Tensor cos_invariant(const at::Tensor& x);  // no gradient
at::Tensor sin_invariant(const at::Tensor& x);  // no gradient

// Multi-head attention of MLA's absorbed form (model/mla.h), forward only, with a fixed summation
// order: fp32 through kernels/latent_attention.h, fp64 (fp64 inputs) a scalar loop in that order:
//   query  [B, T, H, K]   (q_lat | q_rope per head)
//   keys   [B, S, K]      (c_kv | k_rope per cached token, shared by the heads)
//   slots  [B, T] int64   query (b, t) attends keys 0..slots[b, t] of row b (< S)
//   values: the first `value_dim` columns of keys (c_kv).
// Returns [B, T, H, value_dim] in query's dtype: softmax(scale · query·keys[0..slot]) · values.
at::Tensor attention_invariant(const at::Tensor& query, const at::Tensor& keys, const at::Tensor& slots,
                               int64_t value_dim, double scale);

}  // namespace grpo
