// `--device` (model/device.h) and the portable path (model/batch_invariant.h) that tensors on a
// GPU take: names and errors; the whole DeepSeek and dense models through ATen's ops equal the
// CPU kernels' results (fp32, 1e-5) with and without a cache and packed; and, where a CUDA device
// is visible, the models on it against the CPU (skipped with the reason otherwise).
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "kernels/cuda_info.h"
#include "model/batch_invariant.h"
#include "model/device.h"
#include "model_test_util.h"

namespace grpo {
namespace {

using grpo::testing::copied_with;
using grpo::testing::dense_config_json;
using grpo::testing::max_abs_diff;
using grpo::testing::no_gpu_reason;
using grpo::testing::on_gpu;
using grpo::testing::PortableOps;
using grpo::testing::random_dense;
using grpo::testing::random_ids;
using grpo::testing::random_model;
using grpo::testing::small_like_config;

std::string error_of(const std::string& name) {
  try {
    resolve_device(name, "--device");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Device, NamesAndErrors) {
  EXPECT_TRUE(resolve_device("cpu").device.is_cpu());
  for (const char* bad : {"tpu", "gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "CPU", "", "cuda:123456789"}) {
    const std::string e = error_of(bad);
    EXPECT_NE(e.find("--device"), std::string::npos) << bad << ": " << e;
    if (std::string(bad).rfind("cuda:", 0) != 0 || std::string(bad) == "cuda:")
      EXPECT_NE(e.find("expected cpu, cuda, cuda:N or auto"), std::string::npos) << bad << ": " << e;
  }
  std::string why;
  const auto devices = kernels::cuda_devices(&why);
  if (devices.empty()) {
    // No GPU: cuda stops at once, saying why; auto is the CPU and says why too.
    for (const char* name : {"cuda", "cuda:0", "cuda:2"}) {
      const std::string e = error_of(name);
      EXPECT_NE(e.find(std::string("--device: ") + name + ", but no CUDA device is visible (" + why + ")"),
                std::string::npos)
          << e;
    }
    const DeviceChoice a = resolve_device("auto");
    EXPECT_TRUE(a.device.is_cpu());
    EXPECT_NE(a.reason.find(why), std::string::npos) << a.reason;
  } else {
    EXPECT_EQ(resolve_device("cuda").device, at::Device(at::kCUDA, 0));
    EXPECT_EQ(resolve_device("auto").device, at::Device(at::kCUDA, 0));
    const std::string beyond = "cuda:" + std::to_string(devices.size());
    EXPECT_NE(error_of(beyond).find(", but only " + std::to_string(devices.size()) + " CUDA device"), std::string::npos)
        << error_of(beyond);
  }
  EXPECT_EQ(device_name(at::kCPU), "cpu");
  EXPECT_EQ(device_name(at::Device(at::kCUDA, 1)), "cuda:1");
}

TEST(Device, ExpertParallelismKeepsTheCpu) {
  const at::Device gpu(at::kCUDA, 0);
  EXPECT_TRUE(expert_parallel_device(at::kCPU, false, "run.device").is_cpu());
  EXPECT_TRUE(expert_parallel_device(gpu, true, "run.device").is_cpu());  // from auto
  try {
    expert_parallel_device(gpu, false, "r.yaml: key 'run.device'");
    FAIL() << "an explicit GPU under expert parallelism was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("r.yaml: key 'run.device': cuda:0, but expert parallelism runs on the CPU"),
              std::string::npos)
        << e.what();
  }
}

TEST(Device, MemoryCheck) {
  check_device_memory(at::kCPU, int64_t{1} << 62, "model");  // the CPU is not checked here
  if (const std::string why = no_gpu_reason(); !why.empty()) GTEST_SKIP() << "no CUDA device: " << why;
  try {
    check_device_memory(at::Device(at::kCUDA, 0), int64_t{1} << 50, "/models/huge");
    FAIL() << "a petabyte fits";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("/models/huge: needs 1048576.00 GiB on cuda:0, which has "), std::string::npos) << m;
    EXPECT_NE(m.find(" GiB free of "), std::string::npos) << m;
  }
  check_device_memory(at::Device(at::kCUDA, 0), 1 << 20, "a megabyte");
}

TEST(Device, Fp8WeightsStayOnTheCpu) {
  ModelOptions o = ModelOptions::for_dtype("fp8");
  o.device = at::Device(at::kCUDA, 0);
  try {
    DeepseekModel m(small_like_config(), o);
    FAIL() << "FP8 on cuda built";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("FP8 weights run on the CPU only for now; on cuda:0 use bf16"),
              std::string::npos)
        << e.what();
  }
}

// Log-probs of `ids` [B, T] by full forwards, fed through a cache in chunks (3 tokens, then one at
// a time), and as packed sequences (the rows back to back in one row): [B, T-1] each, fp32, CPU.
struct ThreeWays {
  at::Tensor full, cached, packed;
};
ThreeWays three_ways(const CausalLM& m, const at::Tensor& ids) {
  at::NoGradGuard no_grad;
  const int64_t b = ids.size(0), t = ids.size(1);
  ThreeWays out;
  out.full = m.logprobs(ids).to(at::kCPU);
  LatentCache cache = m.make_cache(b, t);
  std::vector<at::Tensor> logits;
  for (int64_t s = 0; s < t - 1; s += s == 0 ? 3 : 1) {
    const int64_t n = std::min<int64_t>(s == 0 ? 3 : 1, t - 1 - s);
    Feed feed;
    feed.context = &cache;
    logits.push_back(m.logits(ids.narrow(1, s, n), feed).to(at::kCPU));
  }
  out.cached = at::cat(logits, 1).log_softmax(-1).gather(-1, ids.narrow(1, 1, t - 1).unsqueeze(-1)).squeeze(-1);
  Feed packed;
  packed.packed.assign(static_cast<size_t>(b), t - 1);
  const at::Tensor row = ids.narrow(1, 0, t - 1).reshape({1, -1});
  const at::Tensor lp = m.logits(row, packed).to(at::kCPU).log_softmax(-1).view({b, t - 1, -1});
  out.packed = lp.gather(-1, ids.narrow(1, 1, t - 1).unsqueeze(-1)).squeeze(-1);
  return out;
}

void expect_close(const ThreeWays& a, const ThreeWays& b, double tol, const std::string& what) {
  EXPECT_LT(max_abs_diff(a.full, b.full), tol) << what << " full";
  EXPECT_LT(max_abs_diff(a.cached, b.cached), tol) << what << " cached";
  EXPECT_LT(max_abs_diff(a.packed, b.packed), tol) << what << " packed";
  EXPECT_LT(max_abs_diff(b.full, b.cached), tol) << what << " cache vs full";
  EXPECT_LT(max_abs_diff(b.full, b.packed), tol) << what << " packed vs full";
}

TEST(PortablePath, DeepseekEqualsTheCpuKernels) {
  const ModelConfig c = small_like_config();
  const DeepseekModel m = random_model(c);
  const at::Tensor ids = random_ids(3, 21, c.vocab_size, 11);
  const ThreeWays kernels = three_ways(m, ids);
  PortableOps portable;
  expect_close(kernels, three_ways(m, ids), 1e-5, "deepseek fp32");
}

TEST(PortablePath, DenseEqualsTheCpuKernels) {
  for (const char* type : {"llama", "qwen2"}) {
    const DenseDecoder m = random_dense(dense_config_json(type));
    const at::Tensor ids = random_ids(2, 13, 40, 12);
    const ThreeWays kernels = three_ways(m, ids);
    PortableOps portable;
    expect_close(kernels, three_ways(m, ids), 1e-5, type);
  }
}

TEST(PortablePath, TakesNoCpuKernel) {
  // With the switch on, CPU tensors report the portable path; a GPU's tensors always would.
  const at::Tensor x = at::ones({2, 2});
  EXPECT_FALSE(portable_ops(x));
  {
    PortableOps portable;
    EXPECT_TRUE(portable_ops(x));
  }
  EXPECT_FALSE(portable_ops(x));
}

// On a GPU: the same weights on cuda:0 and on the CPU, fp32 (1e-4: TF32 is off in LibTorch's
// default matmul precision) and bf16 (1e-2 relative to the CPU's logits range).
TEST(CudaModel, MatchesTheCpu) {
  if (const std::string why = no_gpu_reason(); !why.empty()) GTEST_SKIP() << "no CUDA device: " << why;
  const ModelConfig c = small_like_config();
  const DeepseekModel cpu = random_model(c);
  const DeepseekModel gpu = copied_with(cpu, on_gpu());
  for (const auto& [name, t] : gpu.state_dict()) ASSERT_TRUE(t.is_cuda()) << name;
  const at::Tensor ids = random_ids(3, 21, c.vocab_size, 11);
  expect_close(three_ways(cpu, ids), three_ways(gpu, ids), 1e-4, "cuda fp32");

  const DeepseekModel gpu_bf16 = copied_with(cpu, on_gpu(ModelOptions::for_dtype("bf16")));
  at::NoGradGuard no_grad;
  const at::Tensor want = cpu.logits(ids), got = gpu_bf16.logits(ids).to(at::kCPU);
  EXPECT_LT(max_abs_diff(want, got) / want.abs().max().item<double>(), 3e-2);

  const DenseDecoder dense = random_dense(dense_config_json("llama"));
  DenseDecoder dense_gpu(DenseConfig::from_json(dense_config_json("llama"), "test"), on_gpu());
  dense_gpu.load_state(dense.state_dict(), "cpu weights");
  expect_close(three_ways(dense, random_ids(2, 13, 40, 12)), three_ways(dense_gpu, random_ids(2, 13, 40, 12)), 1e-4,
               "cuda dense");
}

}  // namespace
}  // namespace grpo
