// rollout/options.h: the engine, sampling and server sections, each parsed in one place.
#include <gtest/gtest.h>

#include "common/config.h"
#include "common/error.h"
#include "file_testutil.h"
#include "rollout/engine.h"
#include "rollout/options.h"

namespace grpo::rollout {
namespace {

using ::grpo::ckpt_test::error_of;

TEST(RolloutOptions, EngineSectionKeepsTheCallersDefaults) {
  const Config c = Config::parse("engine: {max_seqs: 300, page_size: 32}\n", "r.yaml");
  EngineOptions base;
  base.num_pages = 7;
  base.max_batched_tokens = 100;
  const EngineOptions o = engine_options_from_config(c.sub("engine"), base);
  EXPECT_EQ(o.max_seqs, 300);
  EXPECT_EQ(o.page_size, 32);
  EXPECT_EQ(o.num_pages, 7);
  EXPECT_EQ(o.max_batched_tokens, 300);  // the default is raised to max_seqs
  EXPECT_EQ(engine_options_from_config(Config::parse("", "r.yaml").sub("engine")).max_seqs, EngineOptions().max_seqs);
  EXPECT_FALSE(EngineOptions().speculative);
  EXPECT_TRUE(
      engine_options_from_config(Config::parse("engine: {speculative: true}\n", "r.yaml").sub("engine")).speculative);
  EXPECT_NE(error_of([] {
              engine_options_from_config(Config::parse("engine: {speculative: maybe}\n", "r.yaml").sub("engine"));
            }).find("engine.speculative"),
            std::string::npos);
}

// engine.gpu_memory_fraction: read, checked against [0, 1]; the pages a share of free memory holds.
TEST(RolloutOptions, GpuMemoryFraction) {
  EXPECT_EQ(engine_options_from_config(Config::parse("engine: {gpu_memory_fraction: 0.85}\n", "r.yaml").sub("engine"))
                .gpu_memory_fraction,
            0.85);
  EXPECT_EQ(EngineOptions().gpu_memory_fraction, 0.0);  // off: num_pages as given
  for (const char* bad : {"1.5", "-0.1", ".nan"}) {
    const std::string e = error_of([&] {
      engine_options_from_config(
          Config::parse(std::string("engine: {gpu_memory_fraction: ") + bad + "}\n", "r.yaml").sub("engine"));
    });
    EXPECT_NE(e.find("r.yaml: key 'engine.gpu_memory_fraction'"), std::string::npos) << bad << ": " << e;
  }
  // 80 GiB free, 90 %, pages of 16 tokens x 61 layers x 576 bf16 values (DeepSeek-V3's latent cache).
  const int64_t page = 16 * 61 * 576 * 2, gib = int64_t{1} << 30;
  EXPECT_EQ(pages_for_memory(80 * gib, 0.9, page), static_cast<int64_t>(80.0 * 0.9 * gib / page));
  EXPECT_EQ(pages_for_memory(80 * gib, 0.9, page), 68759);
  EXPECT_EQ(pages_for_memory(page - 1, 1.0, page), 0);
  EXPECT_EQ(pages_for_memory(0, 0.9, page), 0);
  EXPECT_EQ(pages_for_memory(gib, 0.0, page), 0);
}

TEST(RolloutOptions, ErrorsNameTheFileAndKey) {
  EXPECT_EQ(
      error_of([] { engine_options_from_config(Config::parse("engine: {max_seqs: 0}\n", "r.yaml").sub("engine")); }),
      "r.yaml: key 'engine.max_seqs': must be >= 1, got 0");
  EXPECT_NE(error_of([] {
              engine_options_from_config(
                  Config::parse("engine: {max_seqs: 8, max_batched_tokens: 4}\n", "r.yaml").sub("engine"));
            }).find("engine.max_batched_tokens"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              engine_options_from_config(Config::parse("engine: {pages: 3}\n", "r.yaml").sub("engine"));
            }).find("pages"),
            std::string::npos);
  const Config run = Config::parse("rollout: {sampling: {top_p: 1.5}}\n", "run.yaml");
  EXPECT_EQ(error_of([&] { generation_params_from_config(run.sub("rollout").sub("sampling")); }),
            "run.yaml: key 'rollout.sampling.top_p': must be in (0, 1], got 1.500000");
  EXPECT_NE(error_of([] {
              generation_params_from_config(Config::parse("s: {max_new_tokens: 0}\n", "g.yaml").sub("s"));
            }).find("s.max_new_tokens"),
            std::string::npos);
  EXPECT_EQ(error_of([] {
              server_options_from_config(Config::parse("server: {max_message_mb: 4096}\n", "r.yaml").sub("server"));
            }),
            "r.yaml: key 'server.max_message_mb': must be < 2048 (gRPC's limit)");
}

TEST(RolloutOptions, SamplingSection) {
  GenerationParams base;
  base.stop_strings = {"</answer>"};
  const GenerationParams g = generation_params_from_config(
      Config::parse("sampling: {temperature: 0.6, top_k: 20, max_new_tokens: 512}\n", "g.yaml").sub("sampling"), base);
  EXPECT_DOUBLE_EQ(g.sampling.temperature, 0.6);
  EXPECT_DOUBLE_EQ(g.sampling.top_p, 1.0);
  EXPECT_EQ(g.sampling.top_k, 20);
  EXPECT_EQ(g.max_new_tokens, 512);
  EXPECT_EQ(g.stop_strings, base.stop_strings);
}

}  // namespace
}  // namespace grpo::rollout
