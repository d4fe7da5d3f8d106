// HumanEval and MBPP (tests/data/code, see SOURCE.txt) as code-verifier requests: the reference
// solutions as answers, and stubs that must fail. Shared by tests/reward_code_verifier_test.cpp and
// bench/bench_code.cpp.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "reward/verifier.h"

namespace grpo::testdata {

// One JSON object per line; `.gz` files are read through `gzip -dc`.
inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::string text;
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) {
    FILE* p = ::popen(("gzip -dc '" + path + "'").c_str(), "r");
    if (!p) throw std::runtime_error("cannot run gzip -dc " + path);
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
    if (::pclose(p) != 0) throw std::runtime_error("gzip -dc " + path + " failed");
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::vector<nlohmann::json> rows;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos) rows.push_back(nlohmann::json::parse(text.substr(pos, end - pos)));
    pos = end + 1;
  }
  return rows;
}

inline std::string fenced(const std::string& code) { return "```python\n" + code + "\n```\n"; }

// HumanEval: the answer a model would give (prompt + canonical solution in a fence, after its
// reasoning) and the HumanEval-form reference.
inline reward::VerifyRequest humaneval_request(const nlohmann::json& row, const std::string& body) {
  reward::VerifyRequest r;
  r.completion = "<think>Complete the function.</think>\n" + fenced(row["prompt"].get<std::string>() + body);
  r.reference = {{"test", row["test"]}, {"entry_point", row["entry_point"]}};
  return r;
}

// MBPP: the reference code as the answer; test_list (+ test_setup_code) as assert tests.
inline reward::VerifyRequest mbpp_request(const nlohmann::json& row, const std::string& code) {
  reward::VerifyRequest r;
  r.completion = fenced(code);
  r.reference = {{"language", "python"}, {"tests", row["test_list"]}, {"setup", row["test_setup_code"]}};
  return r;
}

// An MBPP stub: every top-level function of the reference code with its body replaced by `body`.
inline std::string mbpp_stub(const std::string& code, const std::string& body) {
  static const std::regex def_line(R"(^def [A-Za-z_]\w*\s*\(.*\)\s*(->.*)?:)");
  std::string stub, line;
  std::istringstream in(code);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::smatch m;
    if (std::regex_search(line, m, def_line)) stub += m.str(0) + "\n    " + body + "\n";
  }
  return stub;
}

}  // namespace grpo::testdata
