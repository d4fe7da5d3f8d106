#include "kernels/fp8_block_quant.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <stdexcept>
#include <string>

#include "common/error.h"
#include "kernels/fp8_block_quant_kernel.h"

namespace grpo::kernels {

Fp8BlockCodes quantize_fp8_blocks_cuda(const at::Tensor& w, int64_t block) {
  if (block <= 0)
    throw std::invalid_argument("quantize_fp8_blocks_cuda: block must be positive, got " + std::to_string(block));
  if (!w.is_cuda() || w.dim() != 2 || !at::isFloatingType(w.scalar_type()))
    throw std::invalid_argument("quantize_fp8_blocks_cuda: expects a 2-D floating CUDA tensor, got " +
                                std::string(c10::toString(w.scalar_type())) + " on " + w.device().str() + " with " +
                                std::to_string(w.dim()) + " dims");
  const c10::cuda::CUDAGuard guard(w.device());
  const at::Tensor x = w.to(at::kFloat).contiguous();
  const int64_t rows = x.size(0), cols = x.size(1);
  const auto opts = x.options();
  at::Tensor q = at::empty({rows, cols}, opts.dtype(at::kFloat8_e4m3fn));
  at::Tensor s = at::empty({(rows + block - 1) / block, (cols + block - 1) / block}, opts);
  at::Tensor flag = at::zeros({1}, opts.dtype(at::kInt));
  const cudaError_t e =
      launch_fp8_block_quant(x.data_ptr<float>(), rows, cols, block, static_cast<uint8_t*>(q.data_ptr()),
                             s.data_ptr<float>(), flag.data_ptr<int>(), c10::cuda::getCurrentCUDAStream());
  if (e != cudaSuccess)  // the kernel and the shapes it was launched with
    throw std::runtime_error("quantize_fp8_blocks_cuda: fp8_block_quant_kernel on w [" + std::to_string(rows) + ", " +
                             std::to_string(cols) + "], block " + std::to_string(block) + " (" + w.device().str() +
                             "): " + cudaGetErrorString(e));
  if (flag.item<int>() != 0)
    throw InputError("quantize_fp8_blocks_cuda: input holds inf or NaN, which FP8 blocks cannot scale");
  return {q, s};
}

}  // namespace grpo::kernels
