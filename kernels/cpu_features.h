// What this CPU can run, read once per process: the instruction sets our kernels pick between and
// the native bf16 dot-product extensions that make LibTorch's bf16 matrix products fast. Pure
// queries; thread-safe.
#pragma once
#include <string>

namespace grpo::kernels {

// True when the CPU runs AVX2 and FMA (the kernels' vector path; otherwise their scalar reference).
bool cpu_has_avx2_fma();

// The CPU's native bf16 dot-product extensions as /proc/cpuinfo names them ("avx512_bf16",
// "amx_bf16", comma-separated), "" when it has none: without one, bf16 GEMMs (LibTorch's, used in
// training and prefill) run several times slower than fp32.
std::string cpu_native_bf16();

}  // namespace grpo::kernels
