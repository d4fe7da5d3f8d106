// Logit distillation on a teacher's top-k (issue 7; `grpo sft` with records that carry "teacher").
// Pure function. Per target position n, with the teacher's k token ids S and their log-probs a
// (under the teacher's full vocabulary), and the student's logits z:
//
//   p_i = exp(a_i) / Σ_{j∈S} exp(a_j)        the teacher restricted to S, renormalised
//   q_i = exp(z_i) / Σ_{j∈S} exp(z_j)        the student restricted to the same ids, renormalised
//   KL_n = Σ_{i∈S} p_i · (log p_i − log q_i)
//
// Entries with valid = false (rows padded to a common k) take no part in either distribution.
#pragma once
#include <ATen/ATen.h>

namespace grpo {

// student_logits [N, V]; topk_ids [N, K] int64; topk_logprobs [N, K]; valid [N, K] bool (at
// least one true per row) -> KL [N] in the logits' dtype, differentiable in student_logits.
at::Tensor topk_kl(const at::Tensor& student_logits, const at::Tensor& topk_ids, const at::Tensor& topk_logprobs,
                   const at::Tensor& valid);

}  // namespace grpo
