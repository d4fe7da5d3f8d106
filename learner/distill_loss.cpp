#include "learner/distill_loss.h"

#include <limits>

namespace grpo {

at::Tensor topk_kl(const at::Tensor& student_logits, const at::Tensor& topk_ids, const at::Tensor& topk_logprobs,
                   const at::Tensor& valid) {
  const double neg_inf = -std::numeric_limits<double>::infinity();
  const at::Tensor pad = valid.logical_not();                // [N, K]
  const at::Tensor z = student_logits.gather(-1, topk_ids);  // [N, K]
  const at::Tensor a = topk_logprobs.to(z.scalar_type());    // [N, K]
  // Padded entries: -inf before the softmax (weight 0), then 0 so that 0 · (0 − 0) adds nothing.
  const at::Tensor log_p = a.masked_fill(pad, neg_inf).log_softmax(-1).masked_fill(pad, 0.0);
  const at::Tensor log_q = z.masked_fill(pad, neg_inf).log_softmax(-1).masked_fill(pad, 0.0);
  const at::Tensor p = log_p.exp().masked_fill(pad, 0.0);
  return (p * (log_p - log_q)).sum(-1);  // [N]
}

}  // namespace grpo
