// `grpo tokenize`: JSONL text <-> token ids with a HF tokenizer.json, for checking what the
// policy sees.   echo '{"text": "2+2"}' | grpo tokenize --tokenizer /models/DeepSeek-V3
#include <iostream>

#include "apps/jsonl_filter.h"
#include "common/cli.h"
#include "tokenizer/tokenizer.h"

namespace {

int run_tokenize(const grpo::Args& args) {
  const grpo::Tokenizer tok = grpo::Tokenizer::load(args.get("tokenizer"));
  const bool decode = args.flag("decode"), skip_special = args.flag("skip-special");
  const int max_bytes = args.get_int("max-line-bytes", 1);
  return grpo::run_jsonl_filter(std::cin, std::cout, static_cast<size_t>(max_bytes), [&](const nlohmann::json& obj) {
    if (!decode) return nlohmann::json{{"ids", tok.encode(grpo::jsonl_string(obj, "text"))}};
    auto it = obj.find("ids");
    if (it == obj.end()) throw grpo::InputError("missing field \"ids\"");
    if (!it->is_array()) throw grpo::InputError("field \"ids\" must be an array of integers");
    std::vector<int32_t> ids;
    for (const auto& v : *it) {
      if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX)
        throw grpo::InputError("field \"ids\" must be an array of integers, got " + v.dump());
      ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
    }
    return nlohmann::json{{"text", tok.decode(ids, skip_special)}};
  });
}

GRPO_COMMAND("tokenize", "Token ids of JSONL {\"text\": ...} lines on stdin (or text of {\"ids\": [...]})",
             "< in.jsonl > out.jsonl",
             ({{"tokenizer", "PATH", "tokenizer.json or the directory holding it", true},
               {"decode", "", "read {\"ids\": [...]} lines and write {\"text\": ...}", false},
               {"skip-special", "", "with --decode: leave special tokens out of the text", false},
               {"max-line-bytes", "N", "longest input line accepted", false, "16777216"}}),
             run_tokenize);

}  // namespace
