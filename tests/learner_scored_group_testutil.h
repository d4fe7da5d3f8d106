// Scored groups for the codec and experience store tests: deterministic content from (step, index),
// with every field set to something that a wrong encoder would garble.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "learner/scored_group.h"

namespace grpo::store_test {

inline ScoredGroup make_group(int64_t step, int index, int group_size = 3, int tokens = 12) {
  ScoredGroup g;
  g.run_id = "run-α";
  g.step = step;
  g.prompt_id = "p" + std::to_string(index);
  g.prompt_text = "What is " + std::to_string(index) + " + 1?\n";
  g.prompt_text.push_back('\0');  // binary-safe: embedded NUL
  g.prompt_token_ids = {1, index, -5, 2147483647};
  g.reference_answer = std::to_string(index + 1);
  g.created_us = 1700000000000000 + index;
  g.scored_us = g.created_us + 12345;
  for (int i = 0; i < group_size; ++i) {
    Completion c;
    c.text = "<think>step " + std::to_string(i) + "</think> " + std::to_string(index + i) + "\xE2\x82";  // cut UTF-8
    for (int t = 0; t < tokens; ++t) {
      c.token_ids.push_back(index * 1000 + i * 100 + t);
      c.logprobs.push_back(-0.01f * static_cast<float>(t + i) - 1e-7f * static_cast<float>(index));
    }
    if (!c.logprobs.empty()) c.logprobs.back() = -std::numeric_limits<float>::infinity();
    c.reward = i == 0 ? 1.0 : -0.25 * i;
    c.reward_components = {{"accuracy", i == 0 ? 1.0 : 0.0}, {"format", 0.5}, {"overlong", -0.125 * i}};
    c.reward_reason = i == 0 ? "equal" : "different";
    c.correct = i == 0;
    c.finish_reason = static_cast<FinishReason>(i % 3);
    c.weight_version = step - i;
    c.finished_us = g.created_us + 1000 * (i + 1);
    g.completions.push_back(c);
  }
  return g;
}

// Gives every completion of g routes over `layers` MoE layers, top_k experts each (ids depend on
// the completion, token, layer and k; up to 65535, the top of the u16 range).
inline void add_routes(ScoredGroup& g, int64_t layers = 2, int64_t top_k = 3) {
  for (size_t i = 0; i < g.completions.size(); ++i) {
    Completion& c = g.completions[i];
    c.routes = {};
    c.routes.tokens = static_cast<int64_t>(g.prompt_token_ids.size() + c.token_ids.size()) - 1;
    c.routes.layers = layers;
    c.routes.top_k = top_k;
    for (int64_t t = 0; t < c.routes.tokens; ++t)
      for (int64_t l = 0; l < layers; ++l)
        for (int64_t k = 0; k < top_k; ++k)
          c.routes.experts.push_back(static_cast<uint16_t>(t == 0 && k == 0 ? 65535 : i * 7 + t * 5 + l * 3 + k));
  }
}

inline bool same_float_bits(float a, float b) {
  uint32_t x = 0, y = 0;
  std::memcpy(&x, &a, sizeof a);
  std::memcpy(&y, &b, sizeof b);
  return x == y;
}

inline void expect_same_group(const ScoredGroup& a, const ScoredGroup& b) {
  EXPECT_EQ(a.run_id, b.run_id);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.prompt_id, b.prompt_id);
  EXPECT_EQ(a.prompt_text, b.prompt_text);
  EXPECT_EQ(a.prompt_token_ids, b.prompt_token_ids);
  EXPECT_EQ(a.reference_answer, b.reference_answer);
  EXPECT_EQ(a.created_us, b.created_us);
  EXPECT_EQ(a.scored_us, b.scored_us);
  ASSERT_EQ(a.completions.size(), b.completions.size());
  for (size_t i = 0; i < a.completions.size(); ++i) {
    const Completion &x = a.completions[i], &y = b.completions[i];
    EXPECT_EQ(x.text, y.text) << i;
    EXPECT_EQ(x.token_ids, y.token_ids) << i;
    ASSERT_EQ(x.logprobs.size(), y.logprobs.size()) << i;
    for (size_t t = 0; t < x.logprobs.size(); ++t)
      EXPECT_TRUE(same_float_bits(x.logprobs[t], y.logprobs[t])) << i << " " << t;
    EXPECT_EQ(x.reward, y.reward) << i;
    EXPECT_EQ(x.reward_components, y.reward_components) << i;
    EXPECT_EQ(x.reward_reason, y.reward_reason) << i;
    EXPECT_EQ(x.correct, y.correct) << i;
    EXPECT_EQ(x.finish_reason, y.finish_reason) << i;
    EXPECT_EQ(x.weight_version, y.weight_version) << i;
    EXPECT_EQ(x.finished_us, y.finished_us) << i;
    EXPECT_EQ(x.routes.tokens, y.routes.tokens) << i;
    EXPECT_EQ(x.routes.layers, y.routes.layers) << i;
    EXPECT_EQ(x.routes.top_k, y.routes.top_k) << i;
    EXPECT_EQ(x.routes.experts, y.routes.experts) << i;
  }
}

}  // namespace grpo::store_test
