// What this build's CUDA parts are and which CUDA devices the process sees (`grpo info`).
// Thread-safe: pure queries.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace grpo::kernels {

struct CudaBuild {
  bool built = false;      // the CUDA parts were compiled in (GRPO_CUDA, cmake/cuda.cmake)
  std::string why_not;     // when !built: the configure step's reason
  std::string nvcc;        // nvcc version the kernels were compiled with
  std::string archs;       // CMAKE_CUDA_ARCHITECTURES, e.g. "80,90a-real"
  std::string torch_cuda;  // the CUDA version LibTorch was built with ("" for a CPU-only torch)
  std::string nccl;        // NCCL version LibTorch was built with ("" when not built)
};
CudaBuild cuda_build();

struct CudaDevice {
  std::string name;
  int major = 0, minor = 0;  // compute capability
  double memory_gib = 0;
};
// The visible devices; empty without a CUDA build, a driver or a GPU. `why_empty` (if given) says
// which of these it was.
std::vector<CudaDevice> cuda_devices(std::string* why_empty = nullptr);

// Free and total bytes of CUDA device `index` (cudaMemGetInfo on it); false (and `why`) when that
// cannot be asked: no CUDA build, no such device, a driver error.
bool cuda_memory(int index, int64_t* free_bytes, int64_t* total_bytes, std::string* why = nullptr);

}  // namespace grpo::kernels
