// The CUDA block FP8 quantiser against its CPU reference (model/fp8.h): the same codes and scales,
// bit for bit. Skips, saying why, in a build without the CUDA parts or on a machine without a GPU.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include "common/error.h"
#include "kernels/cuda_info.h"
#include "model/fp8.h"
#ifdef GRPO_WITH_CUDA
#include "kernels/fp8_block_quant.h"
#endif

namespace {

// Skips the test unless the CUDA quantiser can run here.
#define REQUIRE_CUDA_DEVICE()                                                                 \
  do {                                                                                        \
    const auto build = grpo::kernels::cuda_build();                                           \
    if (!build.built) GTEST_SKIP() << "no CUDA parts in this build: " << build.why_not;       \
    std::string why;                                                                          \
    if (grpo::kernels::cuda_devices(&why).empty()) GTEST_SKIP() << "no CUDA device: " << why; \
  } while (0)

#ifdef GRPO_WITH_CUDA
void expect_equal_to_cpu(const at::Tensor& w, int64_t block) {
  const grpo::Fp8Blocks cpu = grpo::quantize_fp8_blocks(w, block);
  const grpo::kernels::Fp8BlockCodes gpu = grpo::kernels::quantize_fp8_blocks_cuda(w.to(at::kCUDA), block);
  ASSERT_EQ(gpu.q.scalar_type(), at::kFloat8_e4m3fn);
  const at::Tensor gq = gpu.q.cpu().view(at::kByte), cq = cpu.q.view(at::kByte);
  const at::Tensor gs = gpu.scale_inv.cpu();
  ASSERT_EQ(gs.sizes(), cpu.scale.sizes());
  EXPECT_TRUE(at::equal(gs, cpu.scale)) << "scales differ, max |Δ| " << (gs - cpu.scale).abs().max().item<float>();
  const int64_t differing = gq.ne(cq).sum().item<int64_t>();
  EXPECT_EQ(differing, 0) << differing << " of " << gq.numel() << " codes differ (" << w.size(0) << "x" << w.size(1)
                          << ", block " << block << ")";
}
#endif

TEST(Fp8BlockQuantCuda, EqualsTheCpuReferenceBitForBit) {
  REQUIRE_CUDA_DEVICE();
#ifdef GRPO_WITH_CUDA
  at::manual_seed(7);
  // Ragged edges, a tall and a wide matrix, several magnitudes per block (subnormal codes too).
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{128, 128}, {300, 517}, {1, 1000}, {1029, 64}}) {
    at::Tensor w = at::randn({rows, cols}) * at::exp(at::randn({rows, cols}) * 4);
    expect_equal_to_cpu(w, 128);
    expect_equal_to_cpu(w.to(at::kBFloat16), 128);
  }
  expect_equal_to_cpu(at::randn({100, 100}), 32);
  // An all-zero block (scale 1) beside a block whose amax underflows the scale (denorm_min).
  at::Tensor w = at::zeros({128, 256});
  w.index_put_({0, 200}, 1e-44f);
  expect_equal_to_cpu(w, 128);
#endif
}

TEST(Fp8BlockQuantCuda, RejectsNonFiniteBlocksAndBadShapes) {
  REQUIRE_CUDA_DEVICE();
#ifdef GRPO_WITH_CUDA
  at::Tensor w = at::randn({130, 130}, at::kCUDA);
  w.index_put_({129, 3}, std::numeric_limits<float>::infinity());
  EXPECT_THROW(grpo::kernels::quantize_fp8_blocks_cuda(w), grpo::InputError);
  EXPECT_THROW(grpo::kernels::quantize_fp8_blocks_cuda(at::randn({4}, at::kCUDA)), std::invalid_argument);
  EXPECT_THROW(grpo::kernels::quantize_fp8_blocks_cuda(at::randn({4, 4})), std::invalid_argument);  // on the CPU
#endif
}

// Runs everywhere: the build says what it holds, and a CPU-only machine reports why it sees no device.
TEST(CudaInfo, TheBuildAndTheDevicesDescribeThemselves) {
  const auto build = grpo::kernels::cuda_build();
#ifdef GRPO_WITH_CUDA
  EXPECT_TRUE(build.built);
  EXPECT_FALSE(build.nvcc.empty());
  EXPECT_NE(build.archs.find("90a"), std::string::npos) << build.archs;  // "80,90a-real"
  EXPECT_FALSE(build.nccl.empty());
#else
  EXPECT_FALSE(build.built);
  EXPECT_FALSE(build.why_not.empty());
#endif
  std::string why;
  const auto devices = grpo::kernels::cuda_devices(&why);
  if (devices.empty()) {
    EXPECT_FALSE(why.empty());
    std::cout << "[ info ] no CUDA device: " << why << "\n";
  }
}

}  // namespace
