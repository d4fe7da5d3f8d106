#include "model/runtime.h"

#include <gtest/gtest.h>

#include "common/torch_pch.h"

// The reference BLAS is ~40x slower than OpenBLAS: make sure LibTorch really runs on OpenBLAS.
TEST(Runtime, LibTorchUsesOpenBlas) {
  std::string blas = grpo::loaded_blas_library();
  EXPECT_NE(blas.find("openblas"), std::string::npos)
      << "LibTorch's BLAS is '" << blas << "'; install libopenblas0-pthread (make deps)";
}

TEST(Runtime, SetsIntraOpThreads) {
  EXPECT_EQ(grpo::set_torch_threads(2), 2);
  EXPECT_EQ(at::get_num_threads(), 2);
  EXPECT_GE(grpo::set_torch_threads(0), 1);
}
