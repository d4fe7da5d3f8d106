// Process-wide LibTorch runtime settings: intra-op threads and the BLAS actually loaded.
#pragma once
#include <string>

namespace grpo {

// Every command calls this with its --threads value (0 = all cores), so runs do not depend on
// LibTorch's default (OMP_NUM_THREADS, cgroup limits). Returns the number of threads now in use.
int set_torch_threads(int threads);

// The BLAS LibTorch's matrix products run on: "MKL" when LibTorch was built with it (the PyPI
// wheel links it in), else the path of the BLAS shared library mapped into this process after a
// float64 product (e.g. /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3), or "" if none.
std::string blas_library();

}  // namespace grpo
