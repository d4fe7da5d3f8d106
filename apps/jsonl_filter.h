// The stdin -> stdout JSONL loop of the `grpo tokenize` / `grpo chat-template` filters.
//
// Each input line must be a JSON object; `fn` maps it to the output object. One output line per
// input line, always: a bad line (invalid JSON, a missing or mistyped field, a line over the size
// limit) prints {"error": "line N: ..."} and the other lines are still processed. Returns the exit
// status: 0 when every line succeeded, 1 otherwise.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <istream>
#include <ostream>
#include <string>

#include "common/error.h"
#include "common/json_parse.h"

namespace grpo {

// Reads one line (without '\n') into `line`. Returns false at end of input. A line longer than
// max_bytes is consumed to its end but only its first max_bytes are kept; *too_long says so.
inline bool read_bounded_line(std::istream& in, std::string& line, size_t max_bytes, bool* too_long) {
  line.clear();
  *too_long = false;
  bool any = false;
  char buf[4096];
  while (in.get(buf, sizeof(buf), '\n') || in.gcount() > 0) {
    any = true;
    const size_t n = static_cast<size_t>(in.gcount());
    if (line.size() + n > max_bytes) {
      *too_long = true;
      line.append(buf, max_bytes > line.size() ? max_bytes - line.size() : 0);
    } else {
      line.append(buf, n);
    }
    if (in.peek() == '\n') break;
  }
  if (in.fail() && !in.eof()) in.clear();  // an empty line sets failbit on get()
  if (in.peek() == '\n') {
    in.get();
    return true;
  }
  return any;
}

// A string field of a JSONL object, or InputError naming it.
inline const std::string& jsonl_string(const nlohmann::json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end()) throw InputError(std::string("missing field \"") + field + "\"");
  if (!it->is_string()) throw InputError(std::string("field \"") + field + "\" must be a string");
  return it->get_ref<const std::string&>();
}

inline int run_jsonl_filter(std::istream& in, std::ostream& out, size_t max_line_bytes,
                            const std::function<nlohmann::json(const nlohmann::json&)>& fn) {
  int status = 0;
  std::string line;
  bool too_long = false;
  for (size_t number = 1; read_bounded_line(in, line, max_line_bytes, &too_long); ++number) {
    nlohmann::json result;
    try {
      if (too_long) throw InputError("longer than --max-line-bytes " + std::to_string(max_line_bytes));
      const nlohmann::json obj = parse_json(line, "");
      if (!obj.is_object()) throw InputError("expected a JSON object");
      result = fn(obj);
    } catch (const InputError& e) {
      result = {{"error", "line " + std::to_string(number) + ": " + e.what()}};
      status = 1;
    }
    // Decoded text may hold partial UTF-8 sequences; JSON strings cannot, so they become U+FFFD.
    out << result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    out.flush();
  }
  return status;
}

}  // namespace grpo
