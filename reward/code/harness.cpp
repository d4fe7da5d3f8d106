#include "reward/code/harness.h"
#include "common/json_parse.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <random>
#include <set>
#include <sstream>

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

// The line number of the innermost traceback frame in `file`, or 0.
int frame_line(const std::string& stderr_text, const std::string& file) {
  const std::string key = "File \"" + file + "\", line ";
  size_t at = stderr_text.rfind(key);
  if (at == std::string::npos) return 0;
  return std::atoi(stderr_text.c_str() + at + key.size());
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

std::string python_harness(const TestSuite& suite, const std::string& solution, int* solution_line) {
  std::string s =
      "import builtins as __grpo_builtins, sys as __grpo_sys, traceback as __grpo_traceback\n"
      "__grpo_token = __grpo_sys.stdin.readline().strip()\n";
  *solution_line = count_lines(s) + 1;
  s += solution;
  if (!solution.empty() && solution.back() != '\n') s += "\n";
  s += "\n" + suite.setup;
  if (!suite.setup.empty() && suite.setup.back() != '\n') s += "\n";
  s += "\n__grpo_tests = " + nlohmann::json(suite.tests).dump() + "\n";
  s += "for __grpo_i, __grpo_src in __grpo_builtins.enumerate(__grpo_tests, 1):\n"
       "    try:\n"
       "        __grpo_builtins.exec(__grpo_builtins.compile(__grpo_src, '<test %d>' % __grpo_i, 'exec'),\n"
       "                             __grpo_builtins.globals())\n"
       "    except BaseException as __grpo_e:\n"
       "        __grpo_traceback.print_exc()\n"
       "        __grpo_what = __grpo_traceback.format_exception_only(__grpo_e)[-1].strip()\n"
       "        __grpo_builtins.print(__grpo_token, __grpo_i, 'fail', __grpo_what, flush=True)\n"
       "    else:\n"
       "        __grpo_builtins.print(__grpo_token, __grpo_i, 'ok', flush=True)\n"
       "__grpo_builtins.print(__grpo_token, 'done', flush=True)\n";
  return s;
}

// C++: the solution's own main() (if any) is renamed; the tests are statements in our main().
std::string cpp_harness(const TestSuite& suite, const std::string& solution, int* solution_line) {
  std::string s = "#include <cassert>\n#include <iostream>\n#include <string>\n#define main grpo_solution_main\n";
  *solution_line = count_lines(s) + 1;
  s += solution;
  if (!solution.empty() && solution.back() != '\n') s += "\n";
  s += "#undef main\n" + suite.setup + "\n";
  s += "int main() {\n  std::string grpo_token;\n  std::getline(std::cin, grpo_token);\n";
  for (size_t i = 0; i < suite.tests.size(); ++i) {
    s += "  {\n" + suite.tests[i] + "\n  }\n";
    s += "  std::cout << grpo_token << \" " + std::to_string(i + 1) + " ok\" << std::endl;\n";
  }
  s += "  std::cout << grpo_token << \" done\" << std::endl;\n  return 0;\n}\n";
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

HarnessProgram build_harness(const TestSuite& suite, const std::string& solution, const std::string& token) {
  HarnessProgram p;
  p.stdin_data = token + "\n";
  p.source = suite.language == Language::python ? python_harness(suite, solution, &p.solution_line)
                                                : cpp_harness(suite, solution, &p.solution_line);
  return p;
}

TestReport read_report(const TestSuite& suite, const HarnessProgram& program, const SandboxResult& run,
                       const std::string& token) {
  TestReport r;
  r.total = static_cast<int>(suite.tests.size());
  std::set<int> ok;
  std::map<int, std::string> failed;  // test -> what the harness said
  bool done = false;
  for (const std::string& line : split_lines(run.stdout_data)) {
    if (line.rfind(token + " ", 0) != 0) continue;
    std::istringstream in(line.substr(token.size() + 1));
    std::string first, status;
    in >> first;
    if (first == "done") {
      done = true;
      continue;
    }
    int k = std::atoi(first.c_str());
    in >> status;
    if (status == "ok")
      ok.insert(k);
    else if (status == "fail" && !failed.count(k)) {
      std::string what;
      std::getline(in, what);
      failed[k] = clip(strip_left(what), 200);
    }
  }
  r.passed = static_cast<int>(ok.size());
  r.finished = done && run.verdict == Verdict::ok && r.passed == r.total;
  if (r.finished) return r;

  int k = 1;  // the first test that did not pass
  while (k <= r.total && ok.count(k)) ++k;
  std::string what;
  if (run.verdict != Verdict::ok && run.verdict != Verdict::runtime_error) {
    r.failure = std::string(verdict_name(run.verdict)) + ": " + run.detail;
    if (k <= r.total) r.failure += " (at test " + std::to_string(k) + ")";
    return r;
  }
  if (failed.count(k))
    what = failed[k];
  else if (suite.language == Language::python)
    what = python_exception(run.stderr_data);
  else
    what = cpp_failure(run.stderr_data);
  if (run.verdict == Verdict::ok && failed.empty()) {
    r.failure = "the program exited before its tests finished (exit status 0 after " + std::to_string(r.passed) +
                " of " + std::to_string(r.total) + " tests)";
    return r;
  }
  if (what.empty()) what = run.detail;
  // Where it failed: inside test k, or in the solution before any test ran.
  int test_line =
      suite.language == Language::python ? frame_line(run.stderr_data, "<test " + std::to_string(k) + ">") : 0;
  int main_line = suite.language == Language::python ? frame_line(run.stderr_data, "/work/main.py") : 0;
  if (k <= r.total && (failed.count(k) || test_line > 0 || suite.language == Language::cpp)) {
    std::vector<std::string> lines = split_lines(suite.tests[k - 1]);
    r.failure = what + " at test " + std::to_string(k);
    if (lines.size() > 1 && test_line > 0 && test_line <= static_cast<int>(lines.size()))
      r.failure += " line " + std::to_string(test_line) + ": " + clip(strip_left(lines[test_line - 1]));
    else if (!lines.empty())
      r.failure += ": " + clip(strip_left(lines.front()));
  } else if (k <= r.total && main_line >= program.solution_line) {
    r.failure = what + " at solution line " + std::to_string(main_line - program.solution_line + 1);
  } else {
    r.failure = what;
  }
  return r;
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
