// The examples `grpo distill` writes, and the teacher's top-k log-probs for logit distillation.
//
// Files (each written to a temp name, synced and renamed: a reader sees the old file or the new
// one, never half of one):
//   distill.jsonl  one accepted sample a line, in source order:
//                  {"messages": [{"role": "user", "content": USER MESSAGE},
//                                {"role": "assistant", "content": OPENING + COMPLETION}],
//                   "id": "PROMPT_ID#SAMPLE", "source": SOURCE, "reward": R,
//                   "teacher": {"token_ids": [T ints], "topk_ids": [T x [k ints]],
//                               "topk_logprobs": [T x [k floats]]},      (teacher: only when k > 0)
//                   "routes": {"layers": L, "top_k": K,                     (routes: only with
//                              "experts": [P + T - 1 x [L x [K ints]]]}}     distill.routes: true)
//                  OPENING is the part of the template's generation prompt from its last "<think>"
//                  on (e.g. "<think>" or "<think>\n"), so the assistant turn is self-contained;
//                  "" when the generation prompt opens no think block. token_ids are the
//                  completion's tokens; topk_* at position t are the teacher's k most likely next
//                  tokens (log-probs descending, temperature 1) given the rendered prompt and the
//                  completion's tokens before t.
//                  routes are the experts the rollout engine's MoE routers chose (model/routes.h)
//                  at each position of prompt + completion but its last token, per MoE layer.
//   pairs.jsonl    {"prompt": RENDERED PROMPT, "completion": COMPLETION} per accepted sample.
// Text that is not valid UTF-8 (a completion cut inside a character) is written with U+FFFD.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/routes.h"

namespace grpo {
class ChatTemplate;
class CausalLM;
class Progress;

// One accepted sample.
struct DistillExample {
  std::string id;                         // "<prompt id>#<sample index>"
  std::string source;                     // the dataset or store it came from
  std::string user_message;               // the prompt as the dataset has it
  std::string rendered_prompt;            // with the chat template applied: what the teacher saw
  std::vector<int32_t> prompt_token_ids;  // [P] the rendered prompt's tokens (BOS included)
  std::string completion;
  std::vector<int32_t> completion_token_ids;  // [T]
  double reward = 0;
  Routes routes;  // written when not empty (distill.routes)
};

// The teacher's k most likely next tokens at each completion position.
struct TeacherTopK {
  std::vector<std::vector<int32_t>> ids;     // [T][k]
  std::vector<std::vector<float>> logprobs;  // [T][k], descending
};

// See OPENING above.
std::string think_opening(const ChatTemplate& chat_template);

// The user message of `rendered` = chat_template.render({{"user", message}}, true); nullopt when
// `rendered` is not of that shape (e.g. made with another template).
std::optional<std::string> user_message_of(const ChatTemplate& chat_template, const std::string& rendered);

// One forward pass per `batch` examples (right-padded; a causal model's logits at a position do
// not depend on the tokens after it): log_softmax of the logits at the positions that predict the
// completion's tokens, then the top k. 1 <= k <= vocab. `progress` (optional) advances per example.
std::vector<TeacherTopK> teacher_topk(const CausalLM& model, const std::vector<DistillExample>& examples, int64_t k,
                                      int64_t batch, Progress* progress = nullptr);

// One line of distill.jsonl (with its newline); `teacher` null: no "teacher" field; e.routes
// empty: no "routes" field.
std::string distill_line(const DistillExample& e, const std::string& opening, const TeacherTopK* teacher);
// One line of pairs.jsonl (with its newline).
std::string pair_line(const DistillExample& e);

}  // namespace grpo
