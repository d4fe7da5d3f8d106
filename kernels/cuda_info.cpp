#include "kernels/cuda_info.h"

#ifdef GRPO_WITH_CUDA
#include <cuda_runtime_api.h>
#include <torch/csrc/cuda/nccl.h>
#endif

namespace grpo::kernels {

CudaBuild cuda_build() {
  CudaBuild b;
  b.torch_cuda = GRPO_TORCH_CUDA_VERSION;
#ifdef GRPO_WITH_CUDA
  b.built = true;
  b.nvcc = GRPO_NVCC_VERSION;
  b.archs = GRPO_CUDA_ARCHS;
  const uint64_t v = torch::cuda::nccl::version();  // major << 32 | minor << 16 | patch
  b.nccl = std::to_string(v >> 32) + "." + std::to_string((v >> 16) & 0xffff) + "." + std::to_string(v & 0xffff);
#else
  b.why_not = GRPO_CUDA_SKIPPED;
#endif
  return b;
}

std::vector<CudaDevice> cuda_devices(std::string* why_empty) {
  std::vector<CudaDevice> out;
#ifdef GRPO_WITH_CUDA
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why_empty) *why_empty = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky-free error so later CUDA calls start clean
    return out;
  }
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    out.push_back({p.name, p.major, p.minor, static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024 * 1024)});
  }
  if (out.empty() && why_empty) *why_empty = "no CUDA device";
#else
  if (why_empty) *why_empty = "built without CUDA";
#endif
  return out;
}

bool cuda_memory(int index, int64_t* free_bytes, int64_t* total_bytes, std::string* why) {
#ifdef GRPO_WITH_CUDA
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess || cudaSetDevice(index) != cudaSuccess) {
    if (why)
      *why = std::string("cudaSetDevice(") + std::to_string(index) + "): " + cudaGetErrorString(cudaGetLastError());
    return false;
  }
  size_t f = 0, t = 0;
  const cudaError_t e = cudaMemGetInfo(&f, &t);
  cudaSetDevice(previous);
  if (e != cudaSuccess) {
    if (why) *why = std::string("cudaMemGetInfo: ") + cudaGetErrorString(e);
    cudaGetLastError();
    return false;
  }
  *free_bytes = static_cast<int64_t>(f), *total_bytes = static_cast<int64_t>(t);
  return true;
#else
  (void)index, (void)free_bytes, (void)total_bytes;
  if (why) *why = "built without CUDA";
  return false;
#endif
}

}  // namespace grpo::kernels
