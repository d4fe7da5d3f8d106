#include "rollout/prompts.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_parse.h"

namespace grpo::rollout {

using nlohmann::json;

std::vector<int64_t> parse_id_list(const std::string& s, const std::string& option) {
  std::vector<int64_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t pos = 0;
      ids.push_back(std::stoll(item, &pos));
      if (pos != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw InputError("--" + option + ": expected comma-separated integers, got \"" + item + "\"");
    }
  }
  if (ids.empty()) throw InputError("--" + option + ": empty");
  return ids;
}

std::vector<int64_t> encode_prompt(const Tokenizer& tok, const std::string& text, bool bos) {
  std::vector<int64_t> ids;
  if (bos && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
  for (int32_t id : tok.encode(text)) ids.push_back(id);
  return ids;
}

std::vector<std::vector<int64_t>> read_prompt_file(const std::string& path, const Tokenizer* tok, bool bos) {
  std::ifstream file;
  if (path != "-") {
    file.open(path);
    if (!file) throw InputError("--prompts: cannot read '" + path + "'");
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::vector<std::vector<int64_t>> prompts;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = "--prompts " + path + ", line " + std::to_string(n) + ": ";
    const json j = parse_json(line, where.substr(0, where.size() - 2));
    if (j.is_object() && j.contains("prompt_ids") && j["prompt_ids"].is_array()) {
      std::vector<int64_t> ids;
      for (const json& v : j["prompt_ids"]) {
        if (!v.is_number_integer()) throw InputError(where + "\"prompt_ids\" must hold integers");
        ids.push_back(v.get<int64_t>());
      }
      prompts.push_back(std::move(ids));
    } else if (j.is_object() && (j.contains("prompt") || j.contains("text"))) {
      const json& text = j.contains("prompt") ? j["prompt"] : j["text"];
      if (!text.is_string()) throw InputError(where + "the prompt text must be a string");
      if (!tok) throw InputError(where + "a text prompt needs --tokenizer");
      prompts.push_back(encode_prompt(*tok, text.get<std::string>(), bos));
    } else {
      throw InputError(where + "expected {\"prompt\": \"text\"}, {\"text\": \"...\"} or {\"prompt_ids\": [ids]}");
    }
  }
  return prompts;
}

}  // namespace grpo::rollout
