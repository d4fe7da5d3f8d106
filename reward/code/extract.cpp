#include "reward/code/extract.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <vector>

namespace grpo::reward {

namespace {

struct Block {
  std::string lang;  // lower-cased first word of the info string ("" when unlabelled)
  std::string body;
};

std::string_view trim_left(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// The fenced blocks of `text` in order.
std::vector<Block> fenced_blocks(std::string_view text) {
  std::vector<Block> blocks;
  Block* open = nullptr;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view t = trim_left(line);
    if (t.substr(0, 3) == "```") {
      if (open) {
        open = nullptr;  // closing fence
      } else {
        std::string_view info = trim_left(t.substr(3));
        size_t word = 0;
        while (word < info.size() && !std::isspace(static_cast<unsigned char>(info[word])) && info[word] != '`') ++word;
        Block b;
        for (char c : info.substr(0, word)) b.lang += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        blocks.push_back(std::move(b));
        open = &blocks.back();
      }
    } else if (open) {
      open->body.append(text.substr(pos, end - pos));
      open->body.push_back('\n');
    }
    pos = end + 1;
  }
  return blocks;
}

bool labels(Language language, const std::string& lang) {
  static const std::vector<std::string> python = {"python", "py", "python3"};
  static const std::vector<std::string> cpp = {"cpp", "c++", "cc", "cxx"};
  const auto& names = language == Language::python ? python : cpp;
  return std::find(names.begin(), names.end(), lang) != names.end();
}

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

}  // namespace

ExtractedCode extract_code(std::string_view completion, Language language, bool require_fence) {
  ExtractedCode out;
  std::string_view answer = completion;
  size_t close = completion.rfind("</think>");
  if (close != std::string_view::npos) {
    answer = completion.substr(close + 8);
  } else if (completion.find("<think>") != std::string_view::npos) {
    out.reason = "no answer: <think> is never closed";
    return out;
  }
  std::vector<Block> blocks = fenced_blocks(answer);
  const Block* chosen = nullptr;
  for (const auto& b : blocks)
    if (labels(language, b.lang)) chosen = &b;
  if (!chosen)
    for (const auto& b : blocks)
      if (b.lang.empty()) chosen = &b;
  if (chosen) {
    out.code = chosen->body;
  } else if (!blocks.empty()) {
    out.reason = std::string("no ```") + language_name(language) + " block (found ```" + blocks.back().lang + ")";
    return out;
  } else if (require_fence) {
    out.reason = std::string("no ```") + language_name(language) + " block";
    return out;
  } else {
    out.code = std::string(answer);
  }
  if (blank(out.code)) {
    out.reason = "no code in the answer";
    out.code.clear();
    return out;
  }
  out.found = true;
  return out;
}

}  // namespace grpo::reward
