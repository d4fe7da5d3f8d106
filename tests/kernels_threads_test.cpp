// The kernels' parallel loops (at::parallel_for compiled into kernels/ and model/) run on as many
// threads as LibTorch is set to: without -fopenmp on those sources they silently ran on one
// (cmake/torch.cmake). And the no-grad product gives the same bits on 1 and 2 real threads.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/cpu_features.h"
#include "kernels/linear_dot.h"

namespace {

TEST(KernelThreads, TheParallelLoopsRunOnLibTorchsThreadCount) {
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    EXPECT_EQ(grpo::kernels::kernel_threads(), threads);
  }
  at::set_num_threads(1);
}

TEST(KernelThreads, LinearDotIsTheSameOnOneAndTwoThreads) {
  const int64_t m = 37, k = 515, n = 300;  // many tasks of 48 rows × 64 outputs, awkward tails
  const at::Tensor x = at::randn({m, k}), w = at::randn({n, k});
  at::Tensor one = at::empty({m, n}), two = at::empty({m, n});
  at::set_num_threads(1);
  grpo::kernels::linear_dot(x.data_ptr<float>(), m, k, w.data_ptr<float>(), grpo::kernels::WeightType::kF32, n,
                            one.data_ptr<float>());
  at::set_num_threads(2);
  ASSERT_EQ(grpo::kernels::kernel_threads(), 2);
  grpo::kernels::linear_dot(x.data_ptr<float>(), m, k, w.data_ptr<float>(), grpo::kernels::WeightType::kF32, n,
                            two.data_ptr<float>());
  at::set_num_threads(1);
  EXPECT_TRUE(at::equal(one.view(at::kInt), two.view(at::kInt)));  // bit for bit
}

}  // namespace
