#include "reward/code/harness.h"
#include "common/json_parse.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "reward/code/cpp_harness_prelude_source.h"
#include "reward/code/python_harness_source.h"

namespace grpo::reward {

namespace {

std::string field_string(const nlohmann::json& obj, const std::string& key, const std::string& where) {
  const auto& v = obj.at(key);
  if (!v.is_string()) throw InputError(where + ": expected a string, got " + std::string(v.type_name()));
  return v.get<std::string>();
}

bool is_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

int count_lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

std::string clip(std::string s, size_t n = 120) {
  if (s.size() > n) s = s.substr(0, n) + "...";
  return s;
}

std::string strip_left(const std::string& s) {
  size_t start = s.find_first_not_of(" \t");
  return start == std::string::npos ? "" : s.substr(start);
}

std::string rstrip(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

// The significant lines of an output: trailing whitespace off each, trailing blank lines dropped.
std::vector<std::string> normalised(const std::string& text) {
  std::vector<std::string> lines = split_lines(text);
  for (auto& l : lines) l = rstrip(l);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// python: the last "Exception: message" line of a traceback.
std::string python_exception(const std::string& stderr_text) {
  std::vector<std::string> lines = split_lines(stderr_text);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (!it->empty() && !std::isspace(static_cast<unsigned char>((*it)[0])) && it->rfind("Traceback", 0) != 0)
      return clip(*it, 200);
  return "";
}

// cpp: "Assertion `x == 1' failed" or the first line of what the program said on stderr.
std::string cpp_failure(const std::string& stderr_text) {
  size_t a = stderr_text.find("Assertion `");
  if (a != std::string::npos) {
    size_t e = stderr_text.find("' failed", a);
    if (e != std::string::npos) return clip(stderr_text.substr(a, e + 8 - a), 200);
  }
  std::vector<std::string> lines = split_lines(stderr_text);
  return lines.empty() ? "" : clip(lines.front(), 200);
}

// C++: the prelude, the solution (its own main() renamed), the driver's assert, setup, and a main()
// that records each test (reward/code/cpp_harness_prelude.h).
std::string cpp_harness(const TestSuite& suite, const std::string& solution, std::vector<CppAssert>* asserts,
                        int* solution_line) {
  std::string s =
      std::string(kCppHarnessPrelude) + "\n#include <cassert>\n#include <iostream>\n#define main grpo_solution_main\n";
  *solution_line = count_lines(s) + 1;
  s += solution;
  if (!solution.empty() && solution.back() != '\n') s += "\n";
  s += "#undef main\n#undef assert\n"
       "#define assert(...) (static_cast<bool>(__VA_ARGS__) ? (void)0 : grpo_harness::failed(#__VA_ARGS__))\n" +
       suite.setup + "\n";
  s += "int main() {\n  grpo_harness::begin();\n";
  for (size_t i = 0; i < suite.tests.size(); ++i) {
    const std::string k = std::to_string(i + 1);
    std::optional<CppAssert> a = parse_cpp_assert(suite.tests[i]);
    if (a && !a->lhs.empty()) {
      s += "  grpo_harness::value(" + k + ", [&]() { return (" + a->lhs + "); });\n";
    } else if (a) {
      s += "  grpo_harness::check(" + k + ", \"bool\", [&]() -> bool { return static_cast<bool>(" + a->inner +
           "); });\n";
    } else {
      s += "  grpo_harness::check(" + k + ", \"block\", [&]() -> bool {\n" + suite.tests[i] + "\n  return true; });\n";
    }
    asserts->push_back(a ? *a : CppAssert{});
  }
  s += "  grpo_harness::end();\n  return 0;\n}\n";
  return s;
}

}  // namespace

TestSuite parse_test_suite(const nlohmann::json& reference_in, Language default_language) {
  nlohmann::json reference = reference_in;
  if (reference.is_string()) {
    check_json_depth(reference.get<std::string>(), "reference");
    reference = nlohmann::json::parse(reference.get<std::string>(), nullptr, false);
    if (reference.is_discarded()) throw InputError("reference: expected a JSON object (or a string holding one)");
  }
  if (!reference.is_object())
    throw InputError(
        "reference: expected a JSON object with 'tests', 'test' + 'entry_point' or "
        "'cases', got " +
        std::string(reference.type_name()));
  TestSuite suite;
  suite.language = reference.contains("language")
                       ? parse_language(field_string(reference, "language", "reference.language"), "reference.language")
                       : default_language;
  if (reference.contains("tests")) {
    suite.form = TestSuite::Form::asserts;
    const auto& t = reference["tests"];
    if (t.is_string()) {
      suite.tests.push_back(t.get<std::string>());
    } else if (t.is_array()) {
      for (size_t i = 0; i < t.size(); ++i) {
        if (!t[i].is_string()) throw InputError("reference.tests[" + std::to_string(i) + "]: expected a string");
        suite.tests.push_back(t[i].get<std::string>());
      }
    } else {
      throw InputError("reference.tests: expected a string or an array of strings");
    }
    if (suite.tests.empty()) throw InputError("reference.tests: no tests");
    if (reference.contains("setup") && !reference["setup"].is_null())
      suite.setup = field_string(reference, "setup", "reference.setup");
  } else if (reference.contains("test") || reference.contains("entry_point")) {
    suite.form = TestSuite::Form::check;
    if (!reference.contains("test")) throw InputError("reference.test: missing (HumanEval form)");
    if (!reference.contains("entry_point")) throw InputError("reference.entry_point: missing (HumanEval form)");
    std::string check = field_string(reference, "test", "reference.test");
    std::string entry = field_string(reference, "entry_point", "reference.entry_point");
    if (!is_identifier(entry))
      throw InputError("reference.entry_point: expected a Python identifier, got '" + entry + "'");
    if (suite.language != Language::python)
      throw InputError("reference.language: the HumanEval form ('test' + 'entry_point') is Python only");
    suite.tests.push_back(check + "\n\ncheck(" + entry + ")\n");
  } else if (reference.contains("cases")) {
    suite.form = TestSuite::Form::cases;
    const auto& cases = reference["cases"];
    if (!cases.is_array() || cases.empty())
      throw InputError("reference.cases: expected a non-empty array of {\"stdin\", \"stdout\"}");
    for (size_t i = 0; i < cases.size(); ++i) {
      std::string where = "reference.cases[" + std::to_string(i) + "]";
      if (!cases[i].is_object()) throw InputError(where + ": expected an object");
      if (!cases[i].contains("stdout")) throw InputError(where + ".stdout: missing");
      TestSuite::Case c;
      c.stdout_data = field_string(cases[i], "stdout", where + ".stdout");
      if (cases[i].contains("stdin")) c.stdin_data = field_string(cases[i], "stdin", where + ".stdin");
      suite.cases.push_back(std::move(c));
    }
  } else {
    throw InputError("reference: expected 'tests', 'test' + 'entry_point' or 'cases'");
  }
  return suite;
}

std::string new_run_token() {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                          (static_cast<uint64_t>(std::random_device{}()) << 32)};
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    for (int k = 0; k < 16; ++k) token += hex[(v >> (4 * k)) & 15];
  }
  return token;
}

SandboxFile python_harness_module() { return {"grpo_code_harness.py", kPythonHarnessSource}; }

HarnessProgram build_harness(const TestSuite& suite, const std::string& solution, const std::string& token) {
  HarnessProgram p;
  if (suite.language == Language::cpp) {
    p.source = cpp_harness(suite, solution, &p.asserts, &p.solution_line);
    return p;
  }
  p.source = "import grpo_code_harness\ngrpo_code_harness.main()\n";
  p.files = {{"solution.py", solution},
             {"tests.json", nlohmann::json{{"token", token}, {"setup", suite.setup}, {"tests", suite.tests}}.dump()}};
  return p;
}

namespace {

// "<what> at test K: first line" or "<what> at test K line L: that line" for a multi-line test.
std::string at_test(const std::string& what, const TestSuite& suite, int k, int line) {
  std::vector<std::string> lines = split_lines(suite.tests[k - 1]);
  std::string r = what + " at test " + std::to_string(k);
  if (lines.size() > 1 && line > 0 && line <= static_cast<int>(lines.size()))
    return r + " line " + std::to_string(line) + ": " + clip(strip_left(lines[line - 1]));
  return lines.empty() ? r : r + ": " + clip(strip_left(lines.front()));
}

// A run that ended other than with exit status 0: its verdict, at the first test without a record.
std::string ended(const SandboxResult& run, int k, int total, const std::string& said) {
  std::string r = run.verdict == Verdict::runtime_error && !said.empty()
                      ? said
                      : std::string(verdict_name(run.verdict)) + ": " + run.detail;
  if (k <= total) r += " (at test " + std::to_string(k) + ")";
  return r;
}

// "<token> K ok", "<token> K fail L what", "<token> solution L what", "<token> setup L what",
// "<token> done" (reward/code/python_harness.py).
TestReport python_report(const TestSuite& suite, const SandboxResult& run, const std::string& token) {
  TestReport r;
  r.total = static_cast<int>(suite.tests.size());
  std::set<int> ok;
  std::map<int, std::pair<int, std::string>> failed;  // test -> line, what
  std::string load;                                   // why the solution or setup did not load
  bool done = false;
  for (const std::string& line : split_lines(run.stdout_data)) {
    if (line.rfind(token + " ", 0) != 0) continue;
    std::istringstream in(line.substr(token.size() + 1));
    std::string first, status, what;
    in >> first;
    if (first == "done") {
      done = true;
      continue;
    }
    if (first == "solution" || first == "setup") {
      int at = 0;
      in >> at;
      std::getline(in, what);
      load = clip(strip_left(what), 200);
      if (first == "setup") load += " in setup";
      if (at > 0) load += std::string(first == "setup" ? " line " : " at solution line ") + std::to_string(at);
      continue;
    }
    int k = std::atoi(first.c_str());
    in >> status;
    if (status == "ok") {
      ok.insert(k);
    } else if (status == "fail" && !failed.count(k)) {
      int at = 0;
      in >> at;
      std::getline(in, what);
      failed[k] = {at, clip(strip_left(what), 200)};
    }
  }
  r.passed = static_cast<int>(ok.size());
  r.finished = done && run.verdict == Verdict::ok && r.passed == r.total;
  if (r.finished) return r;
  int k = 1;  // the first test that did not pass
  while (k <= r.total && ok.count(k)) ++k;
  if (run.verdict != Verdict::ok)
    r.failure = ended(run, k, r.total, python_exception(run.stderr_data));
  else if (!load.empty())
    r.failure = load;
  else if (failed.count(k))
    r.failure = at_test(failed[k].second, suite, k, failed[k].first);
  else
    r.failure = "the program exited before its tests finished (exit status 0 after " + std::to_string(r.passed) +
                " of " + std::to_string(r.total) + " tests)";
  return r;
}

// "@grpo K value|bool|block|error ..." once per test and "@grpo done" (cpp_harness_prelude.h);
// a test with more than one record fails.
TestReport cpp_report(const TestSuite& suite, const HarnessProgram& program, const SandboxResult& run) {
  TestReport r;
  r.total = static_cast<int>(suite.tests.size());
  std::map<int, std::vector<std::pair<std::string, std::string>>> records;  // test -> kind, rest
  int done = 0;
  for (const std::string& line : split_lines(run.stdout_data)) {
    if (line.rfind("@grpo ", 0) != 0) continue;
    std::istringstream in(line.substr(6));
    std::string first, kind, rest;
    in >> first;
    if (first == "done") {
      ++done;
      continue;
    }
    in >> kind;
    std::getline(in, rest);
    records[std::atoi(first.c_str())].emplace_back(kind, strip_left(rest));
  }
  std::map<int, std::string> why;  // failed test -> what
  for (int k = 1; k <= r.total; ++k) {
    auto it = records.find(k);
    if (it == records.end()) continue;
    if (it->second.size() != 1) {
      why[k] = "the test has " + std::to_string(it->second.size()) + " records";
      continue;
    }
    const auto& [kind, rest] = it->second.front();
    const CppAssert& a = program.asserts[k - 1];
    bool pass = false;
    // Only the kind of record the driver writes for this test counts (a forged "bool 1" for a
    // split test is not a pass).
    if (kind == "value" && a.expected) {
      auto got = nlohmann::json::parse(rest, nullptr, false);
      pass = !got.is_discarded() && same_value(got, *a.expected);
      if (!pass) why[k] = "Assertion `" + a.inner + "' failed (got " + clip(rest, 80) + ")";
    } else if ((kind == "bool" && !a.inner.empty()) || (kind == "block" && a.inner.empty())) {
      pass = rest == "1";
      if (!pass) why[k] = a.inner.empty() ? "assertion failed" : "Assertion `" + a.inner + "' failed";
    } else {
      why[k] = kind == "error" ? clip(rest, 200) : "malformed record";
    }
    if (pass) ++r.passed;
  }
  r.finished = done == 1 && run.verdict == Verdict::ok && r.passed == r.total;
  if (r.finished) return r;
  int k = 1;  // the first test that did not pass
  while (k <= r.total && records.count(k) && !why.count(k)) ++k;
  if (k <= r.total && why.count(k))
    r.failure = at_test(why[k], suite, k, 0);
  else if (run.verdict != Verdict::ok)
    r.failure = ended(run, k, r.total, cpp_failure(run.stderr_data));
  else
    r.failure = "the program exited before its tests finished (exit status 0 after " + std::to_string(r.passed) +
                " of " + std::to_string(r.total) + " tests)";
  return r;
}

}  // namespace

TestReport read_report(const TestSuite& suite, const HarnessProgram& program, const SandboxResult& run,
                       const std::string& token) {
  return suite.language == Language::python ? python_report(suite, run, token) : cpp_report(suite, program, run);
}

bool outputs_match(const std::string& expected, const std::string& actual) {
  return normalised(expected) == normalised(actual);
}

std::string first_difference(const std::string& expected, const std::string& actual) {
  std::vector<std::string> e = normalised(expected), a = normalised(actual);
  for (size_t i = 0; i < std::max(e.size(), a.size()); ++i) {
    std::string want = i < e.size() ? "\"" + clip(e[i], 80) + "\"" : "end of output";
    std::string got = i < a.size() ? "\"" + clip(a[i], 80) + "\"" : "end of output";
    if (i >= e.size() || i >= a.size() || e[i] != a[i])
      return "line " + std::to_string(i + 1) + ": expected " + want + ", got " + got;
  }
  return "";
}

}  // namespace grpo::reward
