#include "dataset/prompt_dataset.h"

#include <zlib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <unordered_set>

#include "common/error.h"
#include "common/json_parse.h"
#ifdef GRPO_PARQUET
#include "dataset/parquet/parquet_rows.h"
#endif

namespace grpo {
namespace {

using nlohmann::json;

// A row's field names after the format's defaults are filled in.
struct Fields {
  std::string prompt, answer, id;
  bool answer_given = false;  // the user named answer_field (math500 then has no fallback)
  bool id_required = false;   // the user named id_field
};

// A problem with one row; the loader prefixes "file:line: ".
struct RowError : InputError {
  using InputError::InputError;
};

const json& field(const json& row, const std::string& name) {
  auto it = row.find(name);
  if (it == row.end() || it->is_null()) throw RowError("missing field \"" + name + "\"");
  return *it;
}

std::string string_field(const json& row, const std::string& name) {
  const json& v = field(row, name);
  if (!v.is_string()) throw RowError("field \"" + name + "\": expected a string, got " + std::string(v.type_name()));
  return v.get<std::string>();
}

// A string, or a number printed as an integer when it is one (27.0 -> "27").
std::string scalar_text(const json& v, const std::string& name) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return v.dump();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.0f", d);
      return buf;
    }
    return v.dump();
  }
  throw RowError("field \"" + name + "\": expected a string or a number, got " + std::string(v.type_name()));
}

std::string non_empty(std::string s, const std::string& name) {
  if (s.find_first_not_of(" \t\r\n") == std::string::npos) throw RowError("field \"" + name + "\": empty");
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Whether a row that failed has no answer at all: its answer field (math500: or the fallback
// "answer") is absent, null or a blank string.
bool lacks_answer(const json& row, const Fields& f) {
  if (!row.is_object()) return false;
  auto blank = [&](const std::string& name) {
    auto it = row.find(name);
    if (it == row.end() || it->is_null()) return true;
    return it->is_string() && it->get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos;
  };
  return blank(f.answer) && (f.answer_given || blank("answer"));
}

// ---- format adapters: row -> item (id is filled in by the loader) ----

PromptItem generic_jsonl(const json& row, const Fields& f) {
  PromptItem item;
  item.prompt = non_empty(string_field(row, f.prompt), f.prompt);
  const json& a = field(row, f.answer);
  if (a.is_object() || a.is_array()) {
    item.reference = a.dump();
    item.reference_is_json = true;
  } else {
    item.reference = non_empty(scalar_text(a, f.answer), f.answer);
  }
  return item;
}

PromptItem gsm8k(const json& row, const Fields& f) {
  PromptItem item;
  item.prompt = non_empty(string_field(row, f.prompt), f.prompt);
  std::string solution = string_field(row, f.answer);
  size_t mark = solution.rfind("#### ");
  if (mark == std::string::npos) throw RowError("field \"" + f.answer + "\": no final answer after \"#### \"");
  std::string answer;
  for (char c : trim(solution.substr(mark + 5)))
    if (c != ',') answer += c;
  item.reference = non_empty(answer, f.answer);
  return item;
}

PromptItem math500(const json& row, const Fields& f) {
  PromptItem item;
  item.prompt = non_empty(string_field(row, f.prompt), f.prompt);
  std::string name = f.answer;
  if (!f.answer_given && !row.contains(name)) name = "answer";
  item.reference = non_empty(scalar_text(field(row, name), name), name);
  return item;
}

// The text inside the last \boxed{...} (or \fbox{...}) of a worked solution, braces balanced.
std::string last_boxed(const std::string& solution, const std::string& name) {
  size_t at = std::string::npos;
  for (const char* macro : {"\\boxed{", "\\fbox{"}) {
    const size_t m = solution.rfind(macro);
    if (m != std::string::npos && (at == std::string::npos || m > at)) at = m;
  }
  if (at == std::string::npos) throw RowError("field \"" + name + "\": no \\boxed{...} answer in the solution");
  const size_t open = solution.find('{', at);
  int depth = 0;
  for (size_t i = open; i < solution.size(); ++i) {
    if (solution[i] == '{') ++depth;
    if (solution[i] == '}' && --depth == 0) return trim(solution.substr(open + 1, i - open - 1));
  }
  throw RowError("field \"" + name + "\": unbalanced braces in the last \\boxed{...}");
}

PromptItem math(const json& row, const Fields& f) {
  PromptItem item;
  item.prompt = non_empty(string_field(row, f.prompt), f.prompt);
  item.reference = non_empty(last_boxed(string_field(row, f.answer), f.answer), f.answer);
  return item;
}

// verl's data files: the prompt is a string or a list of chat messages (the last "user" message is
// the prompt); the answer is reward_model.ground_truth (or a plain value); without an id field the
// id is "<data_source>:<extra_info.index>" when extra_info has an index.
PromptItem verl(const json& row, const Fields& f) {
  PromptItem item;
  const json& p = field(row, f.prompt);
  if (p.is_string()) {
    item.prompt = p.get<std::string>();
  } else if (p.is_array()) {
    for (size_t i = 0; i < p.size(); ++i) {
      const json& m = p[i];
      const std::string where = "field \"" + f.prompt + "\"[" + std::to_string(i) + "]";
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
          !m["content"].is_string())
        throw RowError(where + ": expected a chat message {role, content} with string values");
      if (m["role"] == "user") item.prompt = m["content"].get<std::string>();
    }
    if (item.prompt.empty()) throw RowError("field \"" + f.prompt + "\": no message with role \"user\"");
  } else {
    throw RowError("field \"" + f.prompt + "\": expected a string or a list of chat messages, got " +
                   std::string(p.type_name()));
  }
  item.prompt = non_empty(item.prompt, f.prompt);
  const json& a = field(row, f.answer);
  const std::string name = a.is_object() ? f.answer + ".ground_truth" : f.answer;
  item.reference = trim(non_empty(scalar_text(a.is_object() ? field(a, "ground_truth") : a, name), name));
  auto extra = row.find("extra_info");
  if (extra != row.end() && extra->is_object() && extra->contains("index") && !(*extra)["index"].is_null()) {
    auto source = row.find("data_source");
    item.id = (source != row.end() && source->is_string() ? source->get<std::string>() + ":" : "") +
              scalar_text((*extra)["index"], "extra_info.index");
  }
  return item;
}

PromptItem aime(const json& row, const Fields& f) {
  PromptItem item;
  item.prompt = non_empty(string_field(row, f.prompt), f.prompt);
  std::string answer = trim(non_empty(scalar_text(field(row, f.answer), f.answer), f.answer));
  if (answer.find_first_not_of("0123456789") == std::string::npos) {
    size_t nz = answer.find_first_not_of('0');
    answer = nz == std::string::npos ? "0" : answer.substr(nz);
  }
  item.reference = answer;
  return item;
}

PromptItem amc23(const json& row, const Fields& f) {
  PromptItem item;
  item.prompt = non_empty(string_field(row, f.prompt), f.prompt);
  item.reference = trim(non_empty(scalar_text(field(row, f.answer), f.answer), f.answer));
  return item;
}

const char* const kFence = "```python\n";

PromptItem humaneval(const json& row, const Fields& f) {
  PromptItem item;
  std::string code = non_empty(string_field(row, f.prompt), f.prompt);
  if (code.back() != '\n') code += '\n';
  item.prompt =
      "Complete the following Python function. Answer with the complete function, including the "
      "imports it needs, in a ```python code block.\n\n" +
      std::string(kFence) + code + "```";
  json ref = {{"test", non_empty(string_field(row, f.answer), f.answer)},
              {"entry_point", non_empty(string_field(row, "entry_point"), "entry_point")}};
  item.reference = ref.dump();
  item.reference_is_json = true;
  item.verifier = "code";
  return item;
}

PromptItem mbpp(const json& row, const Fields& f) {
  PromptItem item;
  std::string text = trim(non_empty(string_field(row, f.prompt), f.prompt));
  const json& tests = field(row, f.answer);
  if (!tests.is_array() || tests.empty())
    throw RowError("field \"" + f.answer + "\": expected a non-empty list of assert strings");
  std::string listed;
  for (size_t i = 0; i < tests.size(); ++i) {
    if (!tests[i].is_string())
      throw RowError("field \"" + f.answer + "\"[" + std::to_string(i) + "]: expected a string");
    listed += tests[i].get<std::string>() + "\n";
  }
  item.prompt = text + " Your code should pass these tests:\n\n" + kFence + listed +
                "```\n\nAnswer with the Python code in a ```python code block.";
  json ref = {{"language", "python"}, {"tests", tests}};
  auto setup = row.find("test_setup_code");
  if (setup != row.end() && !setup->is_null()) {
    if (!setup->is_string()) throw RowError("field \"test_setup_code\": expected a string");
    if (!setup->get<std::string>().empty()) ref["setup"] = *setup;
  }
  item.reference = ref.dump();
  item.reference_is_json = true;
  item.verifier = "code";
  return item;
}

struct Format {
  const char* name;
  const char* prompt_field;
  const char* answer_field;
  const char* id_field;
  PromptItem (*adapt)(const json&, const Fields&);
};

const Format kFormats[] = {
    {"jsonl", "prompt", "answer", "id", generic_jsonl},
    {"gsm8k", "question", "answer", "id", gsm8k},
    {"math", "problem", "solution", "id", math},
    {"math500", "problem", "expected_answer", "id", math500},
    {"aime", "problem", "answer", "id", aime},
    {"amc23", "problem", "answer", "id", amc23},
    {"humaneval", "prompt", "test", "task_id", humaneval},
    {"mbpp", "text", "test_list", "task_id", mbpp},
    {"verl", "prompt", "reward_model", "id", verl},
};

const Format* find_format(const std::string& name) {
  for (const Format& f : kFormats)
    if (name == f.name) return &f;
  return nullptr;
}

std::string format_list() {
  std::string s;
  for (const Format& f : kFormats) s += (s.empty() ? "" : ", ") + std::string(f.name);
  return s;
}

// Calls fn(line_number, line, too_long) for every line of a plain or gzip-compressed file.
void for_each_line(const std::string& path, int64_t max_line_bytes,
                   const std::function<void(int64_t, const std::string&, bool)>& fn) {
  gzFile in = gzopen(path.c_str(), "rb");
  if (!in) throw InputError(path + ": cannot open the dataset file");
  std::string line;
  bool too_long = false;
  int64_t number = 0;
  char buf[1 << 16];
  try {
    while (true) {
      int n = gzread(in, buf, sizeof buf);
      if (n < 0) {
        int code = 0;
        std::string msg = gzerror(in, &code);
        throw InputError(path + ": cannot read the dataset file (" + msg + ")");
      }
      if (n == 0) break;
      for (int i = 0; i < n; ++i) {
        if (buf[i] == '\n') {
          fn(++number, line, too_long);
          line.clear();
          too_long = false;
        } else if (static_cast<int64_t>(line.size()) < max_line_bytes) {
          line += buf[i];
        } else {
          too_long = true;
        }
      }
    }
    if (!line.empty() || too_long) fn(++number, line, too_long);
  } catch (...) {
    gzclose(in);
    throw;
  }
  gzclose(in);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A path that is no file but reads as a Hugging Face Hub dataset ("openai/gsm8k",
// "hf://datasets/openai/gsm8k/main/train-00000-of-00001.parquet") is an InputError with the
// command that downloads it.
void reject_hub_id(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return;
  const std::string prefix = "hf://datasets/";
  std::string id = path.rfind(prefix, 0) == 0 ? path.substr(prefix.size()) : path;
  const size_t slash = id.find('/');
  if (slash == std::string::npos || slash == 0) return;
  const size_t end = id.find('/', slash + 1);
  const bool hub = path.rfind(prefix, 0) == 0 ||
                   (end == std::string::npos && id[0] != '.' && id.find('.', slash) == std::string::npos);
  if (!hub) return;
  id = id.substr(0, std::min(end, id.find('@')));
  const std::string local = "data/" + id.substr(slash + 1);
  throw InputError(path + ": no such file; it names the Hugging Face Hub dataset '" + id +
                   "', which is not downloaded at run time. Download it first:\n  huggingface-cli download "
                   "--repo-type dataset " +
                   id + " --local-dir " + local +
                   "\n(or: python -c \"from huggingface_hub import snapshot_download; snapshot_download('" + id +
                   "', repo_type='dataset', local_dir='" + local +
                   "')\"), then set the path to one of its .parquet "
                   "files under " +
                   local + " and the format (gsm8k, math, verl, ...)");
}

}  // namespace

const std::vector<std::string>& prompt_dataset_formats() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const Format& f : kFormats) v.push_back(f.name);
    return v;
  }();
  return names;
}

PromptDatasetSpec prompt_dataset_spec_from_config(const Config& section) {
  section.require_known({"path", "format", "prompt_field", "answer_field", "id_field", "verifier", "limit", "shuffle",
                         "seed", "skip_bad", "max_line_bytes"});
  PromptDatasetSpec spec;
  section.get<std::string>("path");  // required
  spec.path = section.get_path("path");
  if (spec.path.empty()) throw InputError(section.where("path") + ": empty path");
  spec.format = section.get<std::string>("format", spec.format);
  if (!find_format(spec.format))
    throw InputError(section.where("format") + ": unknown format '" + spec.format +
                     "' (expected one of: " + format_list() + ")");
  spec.prompt_field = section.get<std::string>("prompt_field", "");
  spec.answer_field = section.get<std::string>("answer_field", "");
  spec.id_field = section.get<std::string>("id_field", "");
  spec.verifier = section.get<std::string>("verifier", "");
  spec.limit = section.get<int64_t>("limit", 0);
  if (spec.limit < 0) throw InputError(section.where("limit") + ": expected >= 0 (0 = all)");
  spec.shuffle = section.get<bool>("shuffle", false);
  int64_t seed = section.get<int64_t>("seed", 0);
  if (seed < 0) throw InputError(section.where("seed") + ": expected >= 0");
  spec.seed = static_cast<uint64_t>(seed);
  spec.skip_bad = section.get<bool>("skip_bad", false);
  spec.max_line_bytes = section.get<int64_t>("max_line_bytes", spec.max_line_bytes);
  if (spec.max_line_bytes <= 0) throw InputError(section.where("max_line_bytes") + ": expected > 0");
  return spec;
}

std::vector<PromptItem> load_prompt_dataset(const PromptDatasetSpec& spec, PromptDatasetReport* report) {
  const Format* format = find_format(spec.format);
  if (!format)
    throw InputError(spec.path + ": unknown dataset format '" + spec.format + "' (expected one of: " + format_list() +
                     ")");
  if (spec.limit < 0) throw InputError(spec.path + ": limit must be >= 0 (0 = all)");
  Fields fields;
  fields.prompt = spec.prompt_field.empty() ? format->prompt_field : spec.prompt_field;
  fields.answer = spec.answer_field.empty() ? format->answer_field : spec.answer_field;
  fields.answer_given = !spec.answer_field.empty();
  fields.id = spec.id_field.empty() ? format->id_field : spec.id_field;
  fields.id_required = !spec.id_field.empty();

  PromptDatasetReport local;
  PromptDatasetReport& rep = report ? *report : local;
  rep = PromptDatasetReport{};
  std::vector<PromptItem> items;
  std::unordered_set<std::string> ids;

  // One row: `read` yields it as JSON (or throws RowError); `where` names it in errors.
  auto add_row = [&](const std::string& where, const std::function<json()>& read) {
    ++rep.rows;
    json row;
    try {
      row = read();
      if (!row.is_object()) throw RowError("expected a JSON object, got " + std::string(row.type_name()));
      PromptItem item = format->adapt(row, fields);
      if (row.contains(fields.id) || fields.id_required) {
        item.id = trim(scalar_text(field(row, fields.id), fields.id));
        if (item.id.empty()) throw RowError("field \"" + fields.id + "\": empty");
      } else if (item.id.empty()) {  // verl sets one from extra_info
        item.id = where;
      }
      if (!ids.insert(item.id).second) throw RowError("field \"" + fields.id + "\": duplicate id '" + item.id + "'");
      if (!spec.verifier.empty()) item.verifier = spec.verifier;
      items.push_back(std::move(item));
    } catch (const RowError& e) {
      std::string msg = where + ": " + e.what();
      if (!spec.skip_bad) throw InputError(msg);
      ++rep.skipped;
      rep.missing_answer += lacks_answer(row, fields);
      if (rep.reasons.size() < 5) rep.reasons.push_back(msg);
    }
  };

  reject_hub_id(spec.path);
  if (ends_with(spec.path, ".parquet")) {
#ifdef GRPO_PARQUET
    for_each_parquet_row(spec.path, [&](int64_t number, const json& row) {
      add_row(spec.path + ":row " + std::to_string(number), [&] { return row; });
    });
#else
    throw InputError(spec.path +
                     ": this build reads no Parquet files (it was configured without pyarrow's Arrow "
                     "library): run `make deps` (scripts/pyenv.sh installs pyarrow) and build again");
#endif
  } else {
    for_each_line(spec.path, spec.max_line_bytes, [&](int64_t number, const std::string& line, bool too_long) {
      if (!too_long && line.find_first_not_of(" \t\r") == std::string::npos) return;  // blank
      add_row(spec.path + ":" + std::to_string(number), [&] {
        if (too_long) throw RowError("line longer than max_line_bytes (" + std::to_string(spec.max_line_bytes) + ")");
        try {
          check_json_depth(line, "");
        } catch (const InputError& e) {
          throw RowError(e.what());
        }
        json row = json::parse(line, nullptr, false);
        if (row.is_discarded()) throw RowError("not valid JSON");
        return row;
      });
    });
  }

  if (rep.skipped > 0 && !report) {
    std::fprintf(stderr, "%s: skipped %lld of %lld rows (skip_bad), e.g. %s\n", spec.path.c_str(),
                 static_cast<long long>(rep.skipped), static_cast<long long>(rep.rows), rep.reasons.front().c_str());
  }
  if (items.empty())
    throw InputError(spec.path + ": no usable rows (" + std::to_string(rep.rows) + " read, " +
                     std::to_string(rep.skipped) + " skipped)");

  if (spec.shuffle) {  // Fisher-Yates on mt19937_64: the same order on every platform
    std::mt19937_64 rng(spec.seed);
    for (size_t i = items.size() - 1; i > 0; --i) std::swap(items[i], items[rng() % (i + 1)]);
  }
  if (spec.limit > 0 && static_cast<size_t>(spec.limit) < items.size()) items.resize(spec.limit);
  return items;
}

}  // namespace grpo
