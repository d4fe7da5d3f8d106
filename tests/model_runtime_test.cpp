#include "model/runtime.h"

#include <gtest/gtest.h>

#include <ATen/Parallel.h>

// The reference BLAS is ~40x slower than MKL or OpenBLAS: make sure LibTorch runs on a fast one.
TEST(Runtime, LibTorchUsesAnOptimisedBlas) {
  const std::string blas = grpo::blas_library();
  EXPECT_TRUE(blas == "MKL" || blas.find("openblas") != std::string::npos)
      << "LibTorch's BLAS is '" << blas << "' (the pinned PyPI wheel has MKL: make deps)";
}

TEST(Runtime, SetsIntraOpThreads) {
  EXPECT_EQ(grpo::set_torch_threads(2), 2);
  EXPECT_EQ(at::get_num_threads(), 2);
  EXPECT_GE(grpo::set_torch_threads(0), 1);
}
