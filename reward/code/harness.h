// The tests a code reference asks for, the program that runs a solution against them, and what
// its run says: how many tests passed and whether they really all ran.
//
// Assert-style tests (and HumanEval's check(), run as one test) go into one program after the
// solution and `setup`. The harness reads a random per-run token from stdin before the solution
// runs and prints "<token> K ok" after test K and "<token> done" after the last, so a solution
// that exits early (sys.exit(0), os._exit(0), exit(0)) or prints a fake marker does not pass. The
// token is not in the program's text. Known limit: code that deliberately inspects the harness's
// variables at run time can still find it — this stops accidents and reward hacks that print, not
// an adversary with full in-process access.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

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

struct HarnessProgram {
  std::string source;      // what runs: prologue, solution, setup, tests
  std::string stdin_data;  // the token line
  int solution_line = 1;   // line of the source where the solution starts
};
// asserts/check forms only. Python runs every test (a failing one prints its exception and the
// next runs); C++ asserts abort at the first failure.
HarnessProgram build_harness(const TestSuite& suite, const std::string& solution, const std::string& token);

struct TestReport {
  int total = 0;
  int passed = 0;         // tests that printed "<token> K ok"
  bool finished = false;  // "<token> done" printed and exit status 0
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
