#include "tokenizer/chat_template.h"

#include <filesystem>

namespace grpo {
namespace {

constexpr const char* kR1ZeroSystem =
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
    "tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>.";

constexpr const char* kR1ZeroBoxedSystem =
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
    "tags, respectively, with the final answer written in \\boxed{}, i.e., <think> reasoning process here "
    "</think> <answer> \\boxed{answer here} </answer>.";

ChatTemplate r1_zero(const char* system) {
  ChatTemplate t;
  t.system = system;
  t.user_prefix = " User: ";
  t.user_suffix = ".";
  t.assistant_prefix = t.generation_prompt = " Assistant:";
  return t;
}

ChatTemplate chatml() {
  ChatTemplate t;
  t.system_prefix = "<|im_start|>system\n";
  t.user_prefix = "<|im_start|>user\n";
  t.assistant_prefix = t.generation_prompt = "<|im_start|>assistant\n";
  t.system_suffix = t.user_suffix = t.assistant_suffix = "<|im_end|>\n";
  return t;
}

std::string names_list() {
  std::string out;
  for (const auto& n : ChatTemplate::builtin_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

const std::vector<std::string>& ChatTemplate::builtin_names() {
  static const std::vector<std::string> names = {"r1-zero", "r1-zero-boxed", "chatml"};
  return names;
}

ChatTemplate ChatTemplate::builtin(const std::string& name) {
  if (name == "r1-zero") return r1_zero(kR1ZeroSystem);
  if (name == "r1-zero-boxed") return r1_zero(kR1ZeroBoxedSystem);
  if (name == "chatml") return chatml();
  throw InputError("unknown chat template \"" + name + "\" (built-ins: " + names_list() + ")");
}

ChatTemplate ChatTemplate::from_config(const Config& config) {
  ChatTemplate t;
  const std::pair<const char*, std::string ChatTemplate::*> fields[] = {
      {"prefix", &ChatTemplate::prefix},
      {"system", &ChatTemplate::system},
      {"system_prefix", &ChatTemplate::system_prefix},
      {"system_suffix", &ChatTemplate::system_suffix},
      {"user_prefix", &ChatTemplate::user_prefix},
      {"user_suffix", &ChatTemplate::user_suffix},
      {"assistant_prefix", &ChatTemplate::assistant_prefix},
      {"assistant_suffix", &ChatTemplate::assistant_suffix},
      {"generation_prompt", &ChatTemplate::generation_prompt}};
  std::set<std::string> allowed = {"name"};
  for (const auto& f : fields) allowed.insert(f.first);
  config.require_known(allowed);
  if (config.keys().empty())
    throw InputError(config.where("name") + ": required key is missing (give a built-in name: " + names_list() +
                     ", or the template fields)");
  if (config.has("name")) {
    const std::string name = config.get<std::string>("name");
    try {
      t = builtin(name);
    } catch (const InputError& e) {
      throw InputError(config.where("name") + ": " + e.what());
    }
  }
  for (const auto& [key, member] : fields)
    if (config.has(key)) t.*member = config.get<std::string>(key);
  if (config.has("assistant_prefix") && !config.has("generation_prompt")) t.generation_prompt = t.assistant_prefix;
  return t;
}

ChatTemplate ChatTemplate::load(const std::string& name_or_file) {
  namespace fs = std::filesystem;
  const std::string ext = fs::path(name_or_file).extension().string();
  std::error_code ec;
  if (ext == ".yaml" || ext == ".yml" || fs::is_regular_file(name_or_file, ec))
    return from_config(Config::load(name_or_file));
  return builtin(name_or_file);
}

std::string ChatTemplate::name_from_config(const Config& c, const std::string& key, const std::string& fallback) {
  const std::string name = c.get<std::string>(key, fallback);
  const std::string ext = std::filesystem::path(name).extension().string();
  return ext == ".yaml" || ext == ".yml" ? c.get_path(key, fallback) : name;
}

std::string ChatTemplate::render(const std::vector<Message>& messages, bool add_generation_prompt) const {
  std::string out = prefix;
  size_t first = 0;
  if (!messages.empty() && messages[0].role == "system") {
    out += system_prefix + messages[0].content + system_suffix;
    first = 1;
  } else if (!system.empty()) {
    out += system_prefix + system + system_suffix;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (m.role == "user") {
      out += user_prefix + m.content + user_suffix;
    } else if (m.role == "assistant") {
      out += assistant_prefix + m.content + assistant_suffix;
    } else if (m.role == "system") {
      throw InputError("messages[" + std::to_string(i) + "].role: a system message may only come first");
    } else {
      throw InputError("messages[" + std::to_string(i) + "].role: unknown role \"" + m.role +
                       "\" (expected system, user or assistant)");
    }
  }
  if (add_generation_prompt) out += generation_prompt;
  return out;
}

}  // namespace grpo
