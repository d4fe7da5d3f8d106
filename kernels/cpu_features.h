// What this CPU can run, read once per process: the instruction sets our kernels pick between and
// the native bf16 dot-product extensions that make LibTorch's bf16 matrix products fast; and how
// many threads the kernels' parallel loops get. Queries; thread-safe.
#pragma once
#include <string>

namespace grpo::kernels {

// True when the CPU runs AVX2 and FMA (the kernels' vector path; otherwise their scalar reference).
bool cpu_has_avx2_fma();

// The CPU's native bf16 dot-product extensions as /proc/cpuinfo names them ("avx512_bf16",
// "amx_bf16", comma-separated), "" when it has none: without one, bf16 GEMMs (LibTorch's, used in
// training and prefill) run several times slower than fp32.
std::string cpu_native_bf16();

// How many threads our kernels' parallel loops run on now: the distinct threads that run a chunk of
// one at::parallel_for over 64 tasks, compiled here like the kernels with -fopenmp
// (cmake/torch.cmake). With at::get_num_threads() > 1 anything but that number means the kernels
// run serially (the build lost the flag) or LibTorch's pool is not the one they use.
int kernel_threads();

}  // namespace grpo::kernels
