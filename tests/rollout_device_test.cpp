// The rollout engine on the portable path (model/batch_invariant.h: the ATen ops a GPU runs, here
// on the CPU) and, where a CUDA device is visible, on cuda:0 with its paged cache in GPU memory:
// greedy tokens equal the CPU kernels' no-cache reference, log-probs within 1e-4; a group shares
// and forks its prompt pages the same way. Skipped on the GPU part with the reason when none is visible.
#include <gtest/gtest.h>

#include "kernels/cuda_info.h"
#include "model/batch_invariant.h"
#include "rollout/sampler.h"
#include "rollout_test_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

// Greedy completions of a few groups (mixed prompt lengths, a prompt fed in chunks, page-sized
// pages) from `engine_model`, against the CPU model's no-cache greedy reference.
void expect_greedy_like_cpu(const DeepseekModel& cpu, std::shared_ptr<const DeepseekModel> engine_model) {
  EngineOptions opt;
  opt.page_size = 4;
  opt.max_seqs = 8;
  opt.max_batched_tokens = 16;  // the 30-token prompt in two chunks
  Engine engine(std::move(engine_model), 0, opt);
  const int64_t vocab = cpu.config().vocab_size;
  const std::vector<std::vector<int64_t>> prompts = {random_prompt(5, vocab, 1), random_prompt(30, vocab, 2),
                                                     random_prompt(1, vocab, 3)};
  std::vector<uint64_t> ids;
  GenerationParams g;
  g.sampling.temperature = 0;
  g.max_new_tokens = 8;
  for (const auto& p : prompts) ids.push_back(engine.submit({p, 2, g}));
  const CompletionMap done = by_key(engine.run_until_idle());
  ASSERT_EQ(done.size(), 6u);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::vector<int64_t> want = greedy_reference(cpu, prompts[i], 8);
    const std::vector<float> want_lp = model_logprobs(cpu, prompts[i], want);
    for (int64_t k = 0; k < 2; ++k) {
      const Completion& c = done.at({ids[i], k});
      EXPECT_EQ(c.token_ids, want) << "prompt " << i << " sample " << k;
      if (c.token_ids != want) continue;
      for (size_t t = 0; t < want.size(); ++t)
        EXPECT_NEAR(c.logprobs[t], want_lp[t], 1e-4) << i << "," << k << "," << t;
    }
  }
  EXPECT_EQ(engine.stats().pages_used, 0);
}

TEST(EngineDevice, PortablePathMatchesTheCpuKernels) {
  const ModelConfig c = small_like_config();
  const DeepseekModel cpu = random_model(c);
  PortableOps portable;
  expect_greedy_like_cpu(cpu, shared_model(random_model(c)));
}

TEST(EngineDevice, CudaMatchesTheCpu) {
  if (const std::string why = no_gpu_reason(); !why.empty()) GTEST_SKIP() << "no CUDA device: " << why;
  const DeepseekModel cpu = random_model(small_like_config());
  expect_greedy_like_cpu(cpu, shared_model(copied_with(cpu, on_gpu())));
}

// The sampler on cuda:0 draws the CPU's tokens from the same logits and keys (greedy, plain,
// top-p/top-k rows), with the same log-probs to 1e-5.
TEST(EngineDevice, CudaSamplerDrawsTheCpuTokens) {
  if (const std::string why = no_gpu_reason(); !why.empty()) GTEST_SKIP() << "no CUDA device: " << why;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const at::Tensor logits = at::randn({48, 500}, gen) * 3;  // [N, V]
  SamplingParams greedy, plain, nucleus, topk;
  greedy.temperature = 0;
  plain.temperature = 0.8;
  nucleus.temperature = 1.0, nucleus.top_p = 0.9;
  topk.temperature = 1.2, topk.top_k = 20, topk.top_p = 0.95;
  std::vector<SampleRow> rows;
  const SamplingParams* kinds[] = {&greedy, &plain, &nucleus, &topk};
  for (int64_t i = 0; i < 48; ++i)
    rows.push_back({kinds[i % 4], static_cast<uint64_t>(i), static_cast<uint64_t>(i / 4)});
  const std::vector<Draw> cpu = sample_tokens(logits, rows);
  const std::vector<Draw> gpu = sample_tokens(logits.to(at::Device(at::kCUDA, 0)), rows);
  for (size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_EQ(cpu[i].token, gpu[i].token) << "row " << i;
    EXPECT_NEAR(cpu[i].logprob, gpu[i].logprob, 1e-5) << "row " << i;
  }
}

}  // namespace
