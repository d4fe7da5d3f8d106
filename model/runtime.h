// Process-wide LibTorch runtime settings: intra-op threads and the BLAS actually loaded.
#pragma once
#include <string>

namespace grpo {

// Debian's LibTorch starts with one intra-op thread; every command calls this with its
// --threads value (0 = all cores). Returns the number of threads now in use.
int set_torch_threads(int threads);

// Path of the BLAS shared library mapped into this process after a matrix product
// (e.g. /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3), or "" if none is mapped.
std::string loaded_blas_library();

}  // namespace grpo
