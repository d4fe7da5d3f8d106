// The tests a code reference asks for, the program that runs a solution against them, and what
// its run says. The verdict is out of the solution's reach: nothing the solution's code does in
// its process (patching builtins, print or stdout, a custom __eq__, reading files or its own
// memory, exiting early, macros, code before main) can turn a failing test into a passing one.
//
// Python (reward/code/python_harness.py): the sandbox runs a trusted runner T beside the
// solution's process C. T makes itself non-dumpable, takes the tests and a random per-run token
// from a file it unlinks before C exists, and forks C, which runs the solution and then answers
// T's calls over a pipe pair. The tests run in T's interpreter, where the solution's names are
// proxies; results come back as JSON of builtin data, decoded by T into fresh builtin values (or
// opaque handles, equal only to themselves), so every comparison is T's. T alone holds the
// verdict channel (its stdout; C's stdout is stderr) and prints "<token> K ok|fail" per test.
//
// C++ (reward/code/cpp_harness_prelude.h, cpp_assert.h): the solution, then (after `#undef
// assert` and the driver's own assert) a main() that runs each test. A test `assert(A == B);`
// with a literal B is split: the driver prints only A's value and the host compares it with B,
// which never enters the sandbox, so code before main, forged output or an operator== of the
// solution's cannot produce B. Any other test (a plain assert(E), several statements) is judged
// inside the program; its record can be forged by code that runs before main (documented limit:
// write C++ tests as `assert(f(...) == literal);`). Every test gets exactly one record; a
// duplicate fails it.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "reward/code/cpp_assert.h"
#include "reward/code/runner.h"

namespace grpo::reward {

struct TestSuite {
  enum class Form { asserts, check, cases };
  struct Case {
    std::string stdin_data;
    std::string stdout_data;
  };
  Form form = Form::asserts;
  Language language = Language::python;
  std::vector<std::string> tests;  // asserts: one entry per test; check: the check() call
  std::string setup;               // asserts: code between the solution and the tests
  std::vector<Case> cases;         // cases
};

// Reads one of the three reference forms (see reward/code/verifier.h). Throws InputError naming
// the field ("reference.cases[2].stdout: missing") for a malformed reference.
TestSuite parse_test_suite(const nlohmann::json& reference, Language default_language);

// A fresh random token (32 hex digits).
std::string new_run_token();

// The trusted Python runner as a module (grpo_code_harness.py) that the harness's main.py
// imports: give it to RunnerOptions::python_modules.
SandboxFile python_harness_module();

struct HarnessProgram {
  std::string source;              // python: main.py, which runs python_harness_module(); cpp: main.cpp
  std::vector<SandboxFile> files;  // python: solution.py and tests.json, beside main.py
  int solution_line = 1;           // cpp: the line of main.cpp where the solution starts
  std::vector<CppAssert> asserts;  // cpp: per test, what the host compares (lhs empty: in-program)
};
// asserts/check forms only. Every test runs (Python: in T; C++: each in its own try block).
HarnessProgram build_harness(const TestSuite& suite, const std::string& solution, const std::string& token);

struct TestReport {
  int total = 0;
  int passed = 0;         // tests whose record says they passed
  bool finished = false;  // passed == total, the end record seen and exit status 0
  std::string failure;    // when !finished, e.g. "AssertionError at test 3: assert f(3) == 4"
};
TestReport read_report(const TestSuite& suite, const HarnessProgram& program, const SandboxResult& run,
                       const std::string& token);

// Expected and actual stdout agree line by line, ignoring trailing whitespace on each line and
// trailing blank lines.
bool outputs_match(const std::string& expected, const std::string& actual);
// The first line where they differ: "line 2: expected \"3\", got \"4\"".
std::string first_difference(const std::string& expected, const std::string& actual);

}  // namespace grpo::reward
