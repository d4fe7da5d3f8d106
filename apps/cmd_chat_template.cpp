// `grpo chat-template`: renders JSONL conversations with a chat template, to check prompts.
//   echo '{"prompt": "What is 2+3?"}' | grpo chat-template --template r1-zero
#include <iostream>

#include "apps/jsonl_filter.h"
#include "common/cli.h"
#include "tokenizer/chat_template.h"

namespace {

std::vector<grpo::Message> messages_of(const nlohmann::json& obj) {
  if (obj.contains("prompt")) return {{"user", grpo::jsonl_string(obj, "prompt")}};
  auto it = obj.find("messages");
  if (it == obj.end()) throw grpo::InputError("missing field \"messages\" (or \"prompt\")");
  if (!it->is_array()) throw grpo::InputError("field \"messages\" must be an array");
  std::vector<grpo::Message> out;
  for (size_t i = 0; i < it->size(); ++i) {
    const auto& m = (*it)[i];
    if (!m.is_object())
      throw grpo::InputError("messages[" + std::to_string(i) + "] must be an object with role and content");
    try {
      out.push_back({grpo::jsonl_string(m, "role"), grpo::jsonl_string(m, "content")});
    } catch (const grpo::InputError& e) {
      throw grpo::InputError("messages[" + std::to_string(i) + "]: " + e.what());
    }
  }
  return out;
}

int run_chat_template(const grpo::Args& args) {
  const grpo::ChatTemplate tpl = grpo::ChatTemplate::load(args.get("template"));
  const bool generation_prompt = !args.flag("no-generation-prompt");
  const int max_bytes = args.get_int("max-line-bytes", 1);
  return grpo::run_jsonl_filter(std::cin, std::cout, static_cast<size_t>(max_bytes), [&](const nlohmann::json& obj) {
    return nlohmann::json{{"text", tpl.render(messages_of(obj), generation_prompt)}};
  });
}

GRPO_COMMAND("chat-template",
             "Render JSONL {\"messages\": [...]} or {\"prompt\": ...} lines on stdin to {\"text\": ...}",
             "< in.jsonl > out.jsonl",
             ({{"template", "NAME|FILE.yaml", "r1-zero, r1-zero-boxed, chatml, or a template YAML file", true},
               {"no-generation-prompt", "", "do not open the assistant's turn at the end", false},
               {"max-line-bytes", "N", "longest input line accepted", false, "16777216"}}),
             run_chat_template);

}  // namespace
