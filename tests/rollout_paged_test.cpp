// The paged latent cache as MLA's context: rows with different lengths over scattered and shared
// pages give the logits of full forwards (float64, both attention forms); the pool's reference
// counts; the cache's size per token next to a standard MHA cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "common/error.h"
#include "rollout/paged_batch.h"
#include "rollout_test_util.h"

using namespace grpo;
using namespace grpo::rollout;
using namespace grpo::testing;

namespace {

TEST(PagedBatch, RaggedRowsOverScatteredPagesEqualFullForwards) {
  at::NoGradGuard no_grad;
  for (const nlohmann::json& patch :
       {nlohmann::json::object(), nlohmann::json{{"rope_interleave", false},
                                                 {"rope_scaling",
                                                  {{"type", "yarn"},
                                                   {"factor", 4},
                                                   {"original_max_position_embeddings", 16},
                                                   {"mscale", 0.707},
                                                   {"mscale_all_dim", 1.0}}}}}) {
    ModelConfig c = tiny_config(patch);
    DeepseekModel m = random_model(c, {at::kDouble, at::kDouble});
    const int64_t ps = 4;
    PagePool pool(c.num_hidden_layers, 64, ps, c.kv_lora_rank + c.qk_rope_head_dim, at::kDouble);
    // Take pages in a scrambled order so that no row's pages are contiguous.
    std::vector<int32_t> all;
    for (int i = 0; i < 64; ++i) all.push_back(pool.allocate());
    std::shuffle(all.begin(), all.end(), std::mt19937(5));
    for (size_t i = 32; i < all.size(); ++i) pool.release(all[i]);
    auto take = [&](int64_t n) {
      std::vector<int32_t> p(all.begin(), all.begin() + n);
      all.erase(all.begin(), all.begin() + n);
      return p;
    };

    const std::vector<int64_t> lengths = {3, 9, 1, 14};  // prompt lengths, then 5 decode steps each
    at::Tensor ids = random_ids(4, 20, c.vocab_size, 9);
    std::vector<std::vector<int32_t>> pages;
    for (int64_t len : lengths) pages.push_back(take((len + 5 + ps - 1) / ps));
    PagedBatch batch(pool);
    // Prefill each row alone (fresh chunks), then decode all rows together.
    for (size_t r = 0; r < lengths.size(); ++r) {
      batch.set_rows({{&pages[r], 0}}, lengths[r]);
      at::Tensor got = m.forward(ids.narrow(0, r, 1).narrow(1, 0, lengths[r]), {}, &batch);
      at::Tensor want = m.forward(ids.narrow(0, r, 1).narrow(1, 0, lengths[r]));
      EXPECT_LT(max_abs_diff(got, want), 1e-10);
    }
    for (int64_t step = 0; step < 5; ++step) {
      std::vector<PagedBatch::Row> rows;
      std::vector<int64_t> next;
      for (size_t r = 0; r < lengths.size(); ++r) {
        rows.push_back({&pages[r], lengths[r] + step});
        next.push_back(ids[r][lengths[r] + step].item<int64_t>());
      }
      batch.set_rows(rows, 1);
      for (AttentionForm form : {AttentionForm::kAbsorbed, AttentionForm::kNaive}) {
        if (form == AttentionForm::kNaive) batch.set_rows(rows, 1);  // rewrite the same slots
        at::Tensor got = m.forward(at::tensor(next, at::kLong).unsqueeze(1), {}, &batch, form);  // [4, 1, V]
        for (size_t r = 0; r < lengths.size(); ++r) {
          at::Tensor full = m.forward(ids.narrow(0, r, 1).narrow(1, 0, lengths[r] + step + 1));
          EXPECT_LT(max_abs_diff(got[r][0], full[0][-1]), 1e-10) << "row " << r << " step " << step;
        }
      }
    }
    // A chunk of several tokens continuing rows of different lengths (a later prefill chunk).
    std::vector<int32_t> extra0 = pages[0], extra1 = pages[1];
    for (int32_t p : take(1)) extra0.push_back(p);
    for (int32_t p : take(1)) extra1.push_back(p);
    std::vector<PagedBatch::Row> rows = {{&extra0, lengths[0] + 5}, {&extra1, lengths[1] + 5}};
    at::Tensor more = random_ids(2, 3, c.vocab_size, 10);
    batch.set_rows(rows, 3);
    at::Tensor got = m.forward(more, {}, &batch);  // [2, 3, V]
    for (int64_t r = 0; r < 2; ++r) {
      at::Tensor seq = at::cat({ids[r].narrow(0, 0, lengths[r] + 5), more[r]}).unsqueeze(0);
      EXPECT_LT(max_abs_diff(got[r], m.forward(seq)[0].narrow(0, lengths[r] + 5, 3)), 1e-10);
    }
  }
}

TEST(PagedBatch, SharedPromptPagesServeSeveralRows) {
  at::NoGradGuard no_grad;
  ModelConfig c = tiny_config();
  DeepseekModel m = random_model(c, {at::kDouble, at::kDouble});
  PagePool pool(c.num_hidden_layers, 16, 4, c.kv_lora_rank + c.qk_rope_head_dim, at::kDouble);
  at::Tensor prompt = random_ids(1, 8, c.vocab_size, 12);  // exactly 2 pages
  std::vector<int32_t> shared = {pool.allocate(), pool.allocate()};
  PagedBatch batch(pool);
  batch.set_rows({{&shared, 0}}, 8);
  m.forward(prompt, {}, &batch);
  // Three rows fork from the prompt: each retains the shared pages and writes its own.
  std::vector<std::vector<int32_t>> rows_pages;
  std::vector<PagedBatch::Row> rows;
  for (int r = 0; r < 3; ++r) {
    rows_pages.push_back(shared);
    for (int32_t p : shared) pool.retain(p);
    rows_pages.back().push_back(pool.allocate());
  }
  for (int32_t p : shared) EXPECT_EQ(pool.refcount(p), 4);
  for (auto& p : rows_pages) rows.push_back({&p, 8});
  at::Tensor next = at::tensor(std::vector<int64_t>{5, 9, 13}, at::kLong).unsqueeze(1);
  batch.set_rows(rows, 1);
  at::Tensor got = m.forward(next, {}, &batch);
  for (int r = 0; r < 3; ++r) {
    at::Tensor seq = at::cat({prompt[0], next[r]}).unsqueeze(0);
    EXPECT_LT(max_abs_diff(got[r][0], m.forward(seq)[0][-1]), 1e-10);
  }
  EXPECT_EQ(pool.used_pages(), 5);
  for (auto& p : rows_pages)
    for (int32_t id : p) pool.release(id);
  EXPECT_EQ(pool.used_pages(), 2);
  for (int32_t p : shared) pool.release(p);
  EXPECT_EQ(pool.used_pages(), 0);
  EXPECT_EQ(pool.peak_used_pages(), 5);
}

TEST(PagePool, AllocationRefcountsAndCopy) {
  PagePool pool(2, 3, 4, 5, at::kFloat);
  EXPECT_EQ(pool.bytes_per_token(), 2 * 5 * 4);
  int32_t a = pool.allocate(), b = pool.allocate(), c = pool.allocate();
  EXPECT_EQ(pool.allocate(), -1) << "no free page";
  EXPECT_EQ(pool.free_pages(), 0);
  pool.layer(0)[a].fill_(1.0);
  pool.layer(1)[a].fill_(2.0);
  pool.copy(a, b, 3);
  EXPECT_EQ(pool.layer(0)[b].narrow(0, 0, 3).sum().item<float>(), 15.0f);
  EXPECT_EQ(pool.layer(1)[b].narrow(0, 0, 3).sum().item<float>(), 30.0f);
  EXPECT_EQ(pool.layer(0)[b][3].abs().sum().item<float>(), 0.0f) << "only the rows asked for";
  pool.retain(c);
  pool.release(c);
  EXPECT_EQ(pool.free_pages(), 0);
  pool.release(c);
  EXPECT_EQ(pool.free_pages(), 1);
  EXPECT_EQ(pool.allocate(), c);
  EXPECT_THROW(PagePool(1, 0, 4, 5, at::kFloat), InputError);
}

TEST(PagePool, LatentCacheIsSmallerThanAnMhaCache) {
  // dsv3-small (bench/configs): 8 layers, 8 heads, kv_lora 128 + rope 32 = 160 values per token
  // per layer; MHA would keep heads × (qk_head_dim 96 + v 64) = 1280.
  ModelConfig c = ModelConfig::load(std::string(GRPO_SOURCE_DIR) + "/bench/configs/dsv3-small.json");
  Engine engine(shared_model(DeepseekModel(c, ModelOptions::for_dtype("bf16"))), 0, rollout::EngineOptions{16, 4});
  EXPECT_EQ(engine.cache_bytes_per_token(), 8 * 160 * 2);
  EXPECT_EQ(engine.mha_cache_bytes_per_token(), 8 * 1280 * 2);
}

}  // namespace
