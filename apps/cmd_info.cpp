// `grpo info`: what this build runs on (versions, threads, BLAS, the CUDA parts and devices).
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <iomanip>
#include <iostream>
#include <sstream>

#include <ATen/ATen.h>
#include "common/cli.h"
#include "kernels/cpu_features.h"
#include "kernels/cuda_info.h"
#include "kernels/linear_dot.h"
#include "model/device.h"
#include "model/model_options.h"
#include "model/runtime.h"

namespace {

std::string build_line() {
  const grpo::kernels::CudaBuild b = grpo::kernels::cuda_build();
  if (!b.built) return "no (" + b.why_not + ")";
  return "yes: nvcc " + b.nvcc + ", architectures " + b.archs + ", LibTorch CUDA " + b.torch_cuda + ", NCCL " + b.nccl;
}

std::string devices_line() {
  std::string why;
  const auto devices = grpo::kernels::cuda_devices(&why);
  if (devices.empty()) return "none (" + why + ")";
  std::ostringstream s;
  s << devices.size();
  for (size_t i = 0; i < devices.size(); ++i)
    s << (i ? ", " : ": ") << "cuda:" << i << " " << devices[i].name << " (sm_" << devices[i].major << devices[i].minor
      << ", " << std::fixed << std::setprecision(1) << devices[i].memory_gib << " GiB)";
  return s.str();
}

int run_info(const grpo::Args& args) {
  int threads = grpo::set_torch_threads(args.get_int("threads", 0));
  const std::string native_bf16 = grpo::kernels::cpu_native_bf16();
  const grpo::AutoDtype chosen = grpo::auto_dtype();
  std::cout << "libtorch      " << TORCH_VERSION << "\n"
            << "threads       " << threads
            << " intra-op (our kernels' parallel loops: " << grpo::kernels::kernel_threads() << ")\n"
            << "blas          " << grpo::blas_library() << "\n"
            << "mkldnn (bf16) " << (at::hasMKLDNN() ? "yes" : "no") << "\n"
            << "cpu kernels   "
            << (grpo::kernels::linear_dot_uses_avx2() ? "AVX2 + FMA" : "scalar reference (no AVX2 + FMA on this CPU)")
            << " (kernels/: the no-grad forward)\n"
            << "cpu bf16      " << (native_bf16.empty() ? "no native bf16 dot products" : "native: " + native_bf16)
            << "\n"
            << "dtype auto    " << chosen.name << " (" << chosen.reason << ")\n"
            << "cuda build    " << build_line() << "\n"
            << "cuda devices  " << devices_line() << "\n";
  const grpo::DeviceChoice device = grpo::resolve_device("auto");
  std::cout << "device auto   " << grpo::device_name(device.device) << " (" << device.reason << ")\n";
  return 0;
}

GRPO_COMMAND("info", "Show the runtime: LibTorch version, threads, BLAS, the CUDA parts built in and the devices seen",
             "", ({{"threads", "N", "intra-op threads (0 = all cores)", false, "0"}}), run_info);

}  // namespace
