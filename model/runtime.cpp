#include "model/runtime.h"

#include <fstream>
#include <thread>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace grpo {

int set_torch_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  return at::get_num_threads();
}

std::string blas_library() {
  if (at::hasMKL()) return "MKL";
  // A float64 product goes through BLAS (dgemm) rather than oneDNN, so the library is mapped.
  auto a = at::ones({64, 64}, at::kDouble);
  (void)a.mm(a).sum().item<double>();
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    // libblas.so.3 is Debian's alternatives link; the mapped path is the real provider
    // (openblas-pthread/, openblas-openmp/, or blas/ for the slow reference BLAS).
    if (path.find("libblas.so") != std::string::npos) return path;
  }
  return "";
}

}  // namespace grpo
