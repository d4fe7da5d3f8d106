// Chat templates: a conversation -> the prompt text the policy sees.
//
// A template is a set of strings placed around each message:
//   prefix                                   (once, first: e.g. a BOS string)
//   system_prefix + SYSTEM + system_suffix   (SYSTEM: a leading system message, else `system`;
//                                             skipped when both are absent/empty)
//   user_prefix + content + user_suffix      (each user message)
//   assistant_prefix + content + assistant_suffix
//   generation_prompt                        (when asked: opens the assistant's turn)
//
// Built-ins:
//   r1-zero        the DeepSeek-R1-Zero paper's prompt:
//                  "A conversation between User and Assistant. ... <think> reasoning process here
//                  </think> <answer> answer here </answer>. User: {prompt}. Assistant:"
//   r1-zero-boxed  the same, asking for the final answer in \boxed{} inside <answer>
//   chatml         <|im_start|>role\n...<|im_end|>\n (Qwen style), no default system
//
// From YAML (grpo::Config, so errors name the file and key): either `name: r1-zero`, or the
// fields above, or both (fields override the named template). Setting assistant_prefix without
// generation_prompt sets both, e.g. `assistant_prefix: "<|im_start|>assistant\n<think>\n"`
// forces the think block.
#pragma once
#include <string>
#include <vector>

#include "common/config.h"

namespace grpo {

struct Message {
  std::string role;  // "system" (first only), "user" or "assistant"
  std::string content;
};

// Thread-safety: a plain value (owns its strings); const methods may be called concurrently.
class ChatTemplate {
 public:
  std::string prefix, system, system_prefix, system_suffix, user_prefix, user_suffix, assistant_prefix,
      assistant_suffix, generation_prompt;

  // Throws InputError for an unknown name, listing the built-ins.
  static ChatTemplate builtin(const std::string& name);
  static const std::vector<std::string>& builtin_names();
  // `name:` and/or the template fields; InputError naming the file and key for unknown keys,
  // non-string values, an unknown name, or an empty map.
  static ChatTemplate from_config(const Config& config);
  // A built-in name, or a YAML file (a path that exists or ends in .yaml/.yml).
  static ChatTemplate load(const std::string& name_or_file);
  // The template named at `key` of a config: a built-in name, or a .yaml/.yml file (a relative
  // one resolves as Config::get_path says); `fallback` when the key is absent.
  static std::string name_from_config(const Config& c, const std::string& key, const std::string& fallback);

  // Throws InputError naming messages[i] for an unknown role or a system message not first.
  std::string render(const std::vector<Message>& messages, bool add_generation_prompt) const;
};

}  // namespace grpo
