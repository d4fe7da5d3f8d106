#include "learner/sft_data.h"

#include <algorithm>
#include <fstream>

#include "common/error.h"
#include "common/json_parse.h"

namespace grpo {
namespace {

using nlohmann::json;

// InputError "WHERE: FIELD: what".
[[noreturn]] void bad(const std::string& where, const std::string& field, const std::string& what) {
  throw InputError(where + ": " + field + ": " + what);
}

const std::string& string_field(const json& j, const std::string& key, const std::string& field,
                                const std::string& where) {
  if (!j.contains(key)) bad(where, field, "missing");
  if (!j[key].is_string()) bad(where, field, "expected a string");
  return j[key].get_ref<const std::string&>();
}

std::vector<int64_t> encode(const Tokenizer& tok, const std::string& text) {
  std::vector<int64_t> ids;
  for (int32_t id : tok.encode(text)) ids.push_back(id);
  return ids;
}

std::vector<int64_t> id_list(const json& a, const std::string& field, const std::string& where, int64_t vocab) {
  if (!a.is_array()) bad(where, field, "expected an array of token ids");
  std::vector<int64_t> ids;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_number_integer()) bad(where, field + "[" + std::to_string(i) + "]", "expected an integer token id");
    const int64_t id = a[i].get<int64_t>();
    if (id < 0 || id >= vocab)
      bad(where, field + "[" + std::to_string(i) + "]",
          "token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    ids.push_back(id);
  }
  return ids;
}

// The teacher's top-k for the answer tokens `answer` (EOS included when the tokenizer has one).
void read_teacher(const json& t, const std::vector<int64_t>& answer, bool has_eos, int64_t vocab,
                  const std::string& where, SftExample* ex) {
  if (!t.is_object()) bad(where, "teacher", "expected an object with token_ids, topk_ids, topk_logprobs");
  for (const char* key : {"token_ids", "topk_ids", "topk_logprobs"})
    if (!t.contains(key)) bad(where, std::string("teacher.") + key, "missing");
  const std::vector<int64_t> ids = id_list(t["token_ids"], "teacher.token_ids", where, vocab);
  const size_t n = ids.size();
  const size_t without_eos = answer.size() - (has_eos ? 1 : 0);
  if (!(n == answer.size() || n == without_eos) || !std::equal(ids.begin(), ids.end(), answer.begin()))
    bad(where, "teacher.token_ids",
        "differ from the student's tokenization of the answer (" + std::to_string(n) + " vs " +
            std::to_string(without_eos) + " tokens): logit distillation needs the teacher's tokenizer");
  const json& tid = t["topk_ids"];
  const json& tlp = t["topk_logprobs"];
  for (const auto& [key, a] :
       {std::pair<const char*, const json*>{"teacher.topk_ids", &tid}, {"teacher.topk_logprobs", &tlp}})
    if (!a->is_array() || a->size() != n)
      bad(where, key,
          "expected " + std::to_string(n) + " entries (one per teacher.token_ids), got " +
              (a->is_array() ? std::to_string(a->size()) : std::string("no array")));
  for (size_t i = 0; i < n; ++i) {
    const std::string fi = "teacher.topk_ids[" + std::to_string(i) + "]";
    const std::string fl = "teacher.topk_logprobs[" + std::to_string(i) + "]";
    std::vector<int64_t> row = id_list(tid[i], fi, where, vocab);
    if (row.empty()) bad(where, fi, "empty (expected k >= 1 ids)");
    if (!tlp[i].is_array() || tlp[i].size() != row.size())
      bad(where, fl, "expected " + std::to_string(row.size()) + " numbers (as many as " + fi + ")");
    std::vector<float> lps;
    for (size_t j = 0; j < row.size(); ++j) {
      if (!tlp[i][j].is_number()) bad(where, fl + "[" + std::to_string(j) + "]", "expected a number");
      const double v = tlp[i][j].get<double>();
      if (v > 1e-6) bad(where, fl + "[" + std::to_string(j) + "]", "a log-probability must be <= 0");
      lps.push_back(static_cast<float>(v));
    }
    ex->topk_ids.push_back(std::move(row));
    ex->topk_logprobs.push_back(std::move(lps));
  }
}

}  // namespace

bool sft_example(const json& record, const Tokenizer& tok, const ChatTemplate& tmpl, const SftDataOptions& o,
                 const std::string& where, SftExample* out, SftDataReport* report) {
  if (!record.is_object()) bad(where, "record", "expected a JSON object");
  std::string prompt, answer;
  if (record.contains("messages")) {
    const json& m = record["messages"];
    if (!m.is_array() || m.empty()) bad(where, "messages", "expected a non-empty array of {role, content}");
    std::vector<Message> messages;
    for (size_t i = 0; i < m.size(); ++i) {
      const std::string f = "messages[" + std::to_string(i) + "]";
      if (!m[i].is_object()) bad(where, f, "expected an object {role, content}");
      const std::string& role = string_field(m[i], "role", f + ".role", where);
      if (role != "system" && role != "user" && role != "assistant")
        bad(where, f + ".role", "unknown role \"" + role + "\" (expected system, user or assistant)");
      if (role == "system" && i > 0) bad(where, f + ".role", "a system message may only come first");
      messages.push_back({role, string_field(m[i], "content", f + ".content", where)});
    }
    const std::string last = "messages[" + std::to_string(m.size() - 1) + "]";
    if (messages.back().role != "assistant")
      bad(where, last + ".role", "the last message must be the assistant's answer (a prompt without an answer)");
    answer = messages.back().content;
    messages.pop_back();
    if (messages.empty() || messages.back().role == "system") bad(where, "messages", "no prompt before the answer");
    if (messages.back().role == "assistant") bad(where, last + ".role", "follows another assistant message");
    prompt = tmpl.render(messages, /*add_generation_prompt=*/true);
    answer += tmpl.assistant_suffix;
  } else if (record.contains("prompt") || record.contains("completion")) {
    prompt = string_field(record, "prompt", "prompt", where);
    answer = string_field(record, "completion", "completion", where);
  } else {
    bad(where, "record", "expected \"messages\", or \"prompt\" and \"completion\"");
  }
  if (answer.empty()) bad(where, record.contains("messages") ? "messages" : "completion", "empty answer");

  SftExample ex;
  if (tok.bos_id() >= 0) ex.ids.push_back(tok.bos_id());
  for (int64_t id : encode(tok, prompt)) ex.ids.push_back(id);
  ex.prompt_len = static_cast<int64_t>(ex.ids.size());
  if (ex.prompt_len == 0) bad(where, "prompt", "empty, and the tokenizer has no BOS to predict the answer from");
  std::vector<int64_t> target = encode(tok, answer);
  if (tok.eos_id() >= 0) target.push_back(tok.eos_id());
  if (record.contains("teacher"))
    read_teacher(record["teacher"], target, tok.eos_id() >= 0, tok.vocab_size(), where, &ex);
  ex.ids.insert(ex.ids.end(), target.begin(), target.end());

  const int64_t n = static_cast<int64_t>(ex.ids.size());
  if (n > o.seq_len) {
    if (!o.truncate || ex.prompt_len >= o.seq_len) {
      ++report->overlong;
      return false;
    }
    ex.ids.resize(o.seq_len);
    const size_t kept = static_cast<size_t>(o.seq_len - ex.prompt_len);
    if (ex.topk_ids.size() > kept) {
      ex.topk_ids.resize(kept);
      ex.topk_logprobs.resize(kept);
    }
    ++report->truncated;
  }
  *out = std::move(ex);
  return true;
}

std::vector<SftExample> load_sft_data(const SftDataOptions& o, const Tokenizer& tok, const ChatTemplate& tmpl,
                                      SftDataReport* report) {
  std::vector<SftExample> out;
  for (const std::string& file : o.files) {
    std::ifstream in(file);
    if (!in) throw InputError("sft data: cannot read '" + file + "'");
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      ++report->lines;
      const std::string where = file + ":" + std::to_string(n);
      try {
        json j;
        try {
          j = parse_json(line, "");
        } catch (const InputError& e) {
          bad(where, "record", e.what());
        }
        SftExample ex;
        if (!sft_example(j, tok, tmpl, o, where, &ex, report)) continue;
        report->with_teacher += !ex.topk_ids.empty();
        out.push_back(std::move(ex));
      } catch (const InputError& e) {
        if (!o.skip_bad) throw;
        ++report->bad;
        if (report->bad_examples.size() < 5) report->bad_examples.push_back(e.what());
      }
    }
  }
  report->examples = static_cast<int64_t>(out.size());
  if (out.empty())
    throw InputError("sft data: no usable examples in " + std::to_string(o.files.size()) + " file(s) (" +
                     std::to_string(report->lines) + " records, " + std::to_string(report->bad) + " bad, " +
                     std::to_string(report->overlong) + " too long)");
  return out;
}

}  // namespace grpo
