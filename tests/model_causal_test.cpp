// Causality: the logits at position t never depend on tokens after t — in every mode the model
// runs in (no grad / with grad, fp32 / bf16 compute, batch of one / many, MoE routing).
#include <gtest/gtest.h>

#include "model/deepseek.h"
#include "model_test_util.h"

namespace grpo {
namespace {

void expect_causal(ModelOptions opts, bool grad, int64_t batch) {
  DeepseekModel m = testing::random_model(testing::tiny_config(), opts);
  if (grad) m.set_requires_grad(true);
  at::Tensor ids = testing::random_ids(batch, 24, 64, 11);
  at::Tensor changed = ids.clone();
  changed.narrow(1, 12, 12).copy_(testing::random_ids(batch, 12, 64, 99));
  at::Tensor a = m.forward(ids), b = m.forward(changed);  // [B, 24, V]
  const double tol = opts.compute_dtype == at::kBFloat16 ? 1e-2 : 1e-5;
  EXPECT_LT(testing::max_abs_diff(a.narrow(1, 0, 12), b.narrow(1, 0, 12)), tol)
      << "grad " << grad << " batch " << batch << " dtype " << c10::toString(opts.compute_dtype);
  EXPECT_GT(testing::max_abs_diff(a.narrow(1, 12, 12), b.narrow(1, 12, 12)), tol);  // the change is seen after
}

TEST(Causality, LaterTokensNeverChangeEarlierLogits) {
  for (bool grad : {false, true})
    for (int64_t batch : {1, 3}) {
      expect_causal({}, grad, batch);
      ModelOptions bf16;
      bf16.compute_dtype = at::kBFloat16;
      expect_causal(bf16, grad, batch);
    }
}

}  // namespace
}  // namespace grpo
