// The code verifier: extracting the program, the three reference forms in Python and C++, what a
// PASS requires, bad input, and the real datasets (all HumanEval / MBPP reference solutions pass,
// stubs pass none).
#include "reward/code/verifier.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "file_testutil.h"
#include "reward/code/extract.h"
#include "reward/code/harness.h"
#include "tests/code_datasets.h"

using namespace grpo::reward;

namespace {

Verifier& verifier() {
  static std::unique_ptr<Verifier> v = make_code_verifier({{"python_pool", 2}});
  return *v;
}

VerifyResult verify(const std::string& completion, const nlohmann::json& reference,
                    const nlohmann::json& options = nullptr, Limits limits = {}) {
  VerifyRequest r;
  r.completion = completion;
  r.reference = reference;
  r.options = options;
  r.limits = limits;
  return verifier().verify(r);
}

std::string py(const std::string& code) { return "```python\n" + code + "```\n"; }
std::string cpp(const std::string& code) { return "```cpp\n" + code + "```\n"; }

const nlohmann::json kDoubleTests = {
    {"tests", {"assert double(1) == 2", "assert double(2) == 4", "assert double(-3) == -6"}}};

using ::grpo::ckpt_test::error_of;

// Runs `count` requests on `threads` threads; returns the indices whose `correct` != expected.
// Generous limits: some reference solutions need seconds of CPU (MBPP 123 about 3 s), and CI
// machines are shared.
std::vector<int> run_all(int count, int threads, const std::function<VerifyRequest(int)>& make_request, bool expected,
                         std::vector<std::string>* reasons) {
  auto make = [&](int i) {
    VerifyRequest r = make_request(i);
    r.limits.timeout_ms = r.limits.cpu_ms = 60'000;
    return r;
  };
  std::atomic<int> next{0};
  std::mutex mu;
  std::vector<int> wrong;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (int i = next++; i < count; i = next++) {
        VerifyResult r = verifier().verify(make(i));
        if (r.correct != expected) {
          std::lock_guard<std::mutex> lock(mu);
          wrong.push_back(i);
          reasons->push_back(std::to_string(i) + ": " + r.reason);
        }
      }
    });
  for (auto& t : pool) t.join();
  return wrong;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < 10; ++i) s += v[i] + "\n";
  return s;
}

}  // namespace

// ---- extraction ----

TEST(CodeExtract, TakesTheLastMatchingBlockAfterThinking) {
  auto e = extract_code(
      "<think>```python\nwrong()\n```</think>text\n```py\nfirst()\n```\n"
      "```python\nsecond()\n```\nbye",
      Language::python, false);
  ASSERT_TRUE(e.found) << e.reason;
  EXPECT_EQ(e.code, "second()\n");
  e = extract_code("```cpp\nint a;\n```\n```\nplain()\n```", Language::python, false);
  EXPECT_EQ(e.code, "plain()\n");  // unlabelled beats another language
  e = extract_code("```python\nx = 1\n```\n```cpp\nint main() {}\n```", Language::cpp, false);
  EXPECT_EQ(e.code, "int main() {}\n");
  e = extract_code("Answer:\n```python\ndef f():\n    return 1\n", Language::python, false);
  EXPECT_EQ(e.code, "def f():\n    return 1\n");  // left open: runs to the end
  e = extract_code("def f():\n    return 1\n", Language::python, false);
  EXPECT_EQ(e.code, "def f():\n    return 1\n");  // no fence: the whole answer
}

TEST(CodeExtract, SaysWhyThereIsNoCode) {
  EXPECT_EQ(extract_code("<think>still thinking ```python\nx\n```", Language::python, false).reason,
            "no answer: <think> is never closed");
  EXPECT_EQ(extract_code("def f(): pass", Language::python, true).reason, "no ```python block");
  EXPECT_EQ(extract_code("```cpp\nint x;\n```", Language::python, false).reason, "no ```python block (found ```cpp)");
  EXPECT_EQ(extract_code("</think>  \n ", Language::python, false).reason, "no code in the answer");
}

TEST(CodeOutputs, CompareIgnoringTrailingWhitespace) {
  EXPECT_TRUE(outputs_match("1 2\n3\n", "1 2   \n3\t\n\n\n"));
  EXPECT_TRUE(outputs_match("a\r\nb", "a\nb\n"));
  EXPECT_FALSE(outputs_match("1 2\n", " 1 2\n"));
  EXPECT_FALSE(outputs_match("1\n2\n", "1\n"));
  EXPECT_EQ(first_difference("1\n2\n", "1\n3\n"), "line 2: expected \"2\", got \"3\"");
  EXPECT_EQ(first_difference("1\n2\n", "1\n"), "line 2: expected \"2\", got end of output");
}

// ---- Python assert tests ----

TEST(CodeVerifier, PythonAssertTestsPassAndNameTheFailure) {
  VerifyResult r = verify(py("def double(x):\n    return 2 * x\n"), kDoubleTests);
  EXPECT_TRUE(r.correct) << r.reason;
  EXPECT_EQ(r.reward, 1.0);
  EXPECT_EQ(r.reason, "passed 3 of 3 tests");
  EXPECT_EQ(r.components.at("tests_passed_fraction"), 1.0);
  EXPECT_EQ(r.extracted, "def double(x):\n    return 2 * x\n");

  r = verify(py("def double(x):\n    return x + 1\n"), kDoubleTests);
  EXPECT_FALSE(r.correct);
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.reason, "AssertionError at test 2: assert double(2) == 4");
  EXPECT_NEAR(r.components.at("tests_passed_fraction"), 1.0 / 3, 1e-9);

  r = verify(py("def double(x):\n    return x + 1\n"), kDoubleTests, {{"reward", "fraction"}});
  EXPECT_NEAR(r.reward, 1.0 / 3, 1e-9);
  EXPECT_EQ(r.components.at("accuracy"), 0.0);

  r = verify(py("def double(x):\n    return undefined_name\n"), {{"tests", "assert double(1) == 2"}});
  EXPECT_EQ(r.reason, "NameError: name 'undefined_name' is not defined at test 1: assert double(1) == 2");

  r = verify(py("def double(x)\n    return 2 * x\n"), kDoubleTests);
  EXPECT_EQ(r.reason, "SyntaxError: expected ':' at solution line 1");

  // setup runs between the solution and the tests.
  r = verify(py("class Box:\n    def __init__(self, v):\n        self.v = v\n"
                "def unbox(b):\n    return b.v\n"),
             {{"tests", {"assert unbox(b) == 7"}}, {"setup", "b = Box(7)"}});
  EXPECT_TRUE(r.correct) << r.reason;
}

TEST(CodeVerifier, PassMeansTheTestsRanToTheEnd) {
  const std::vector<std::string> cheats = {
      "import sys\ndef double(x):\n    return 0\nsys.exit(0)\n",
      "import os\ndef double(x):\n    return 0\nos._exit(0)\n",
      "def double(x):\n    return 0\nprint('done')\nprint('ok')\nraise SystemExit\n",
      // reads its own file looking for a token to print: the token is not in it
      ("import re, sys\ndef double(x):\n    return 0\n"
       "for t in set(re.findall(r'[0-9a-f]{32}', open(__file__).read())):\n"
       "    print(t, 'done'); print(t, 1, 'ok'); print(t, 2, 'ok'); print(t, 3, 'ok')\n"
       "sys.stdout.flush()\nimport os\nos._exit(0)\n"),
      // and it is not re-readable from stdin either
      "import os, sys\ndef double(x):\n    return 0\nos.lseek(0, 0, 0)\n",
  };
  for (const auto& c : cheats) {
    VerifyResult r = verify(py(c), kDoubleTests);
    EXPECT_FALSE(r.correct) << c << "\n" << r.reason;
    EXPECT_EQ(r.reward, 0.0) << c;
  }
  VerifyResult r = verify(py(cheats[0]), kDoubleTests);
  EXPECT_EQ(r.reason, "SystemExit: 0 at solution line 4");
}

TEST(CodeVerifier, HumanEvalStyleCheck) {
  nlohmann::json ref = {{"test",
                         "def check(candidate):\n    assert candidate(2) == 3\n"
                         "    assert candidate(5) == 6\n"},
                        {"entry_point", "inc"}};
  VerifyResult r = verify(py("def inc(x):\n    return x + 1\n"), ref);
  EXPECT_TRUE(r.correct) << r.reason;
  r = verify(py("def inc(x):\n    return 3\n"), ref);
  EXPECT_FALSE(r.correct);
  EXPECT_EQ(r.reason, "AssertionError at test 1 line 3: assert candidate(5) == 6");
}

TEST(CodeVerifier, LimitsShowInTheReason) {
  Limits limits;
  limits.timeout_ms = 1500;
  VerifyResult r = verify(py("def double(x):\n    while True:\n        pass\n"), kDoubleTests, nullptr, limits);
  EXPECT_FALSE(r.correct);
  EXPECT_EQ(r.reason, "timeout: wall time limit of 1500 ms (at test 1)");
  limits = {};
  limits.memory_mb = 256;
  r = verify(py("def double(x):\n    return len(bytearray(2**40))\n"), kDoubleTests, nullptr, limits);
  EXPECT_EQ(r.reason, "MemoryError at test 1: assert double(1) == 2");
}

// ---- stdin/stdout cases ----

TEST(CodeVerifier, PythonStdinStdoutCases) {
  nlohmann::json ref = {{"cases",
                         {{{"stdin", "1 2\n"}, {"stdout", "3\n"}},
                          {{"stdin", "10 -4\n"}, {"stdout", "6"}},
                          {{"stdin", "0 0\n"}, {"stdout", "0\n"}}}}};
  VerifyResult r = verify(py("a, b = map(int, input().split())\nprint(a + b, '  ')\n"), ref);
  EXPECT_TRUE(r.correct) << r.reason;
  EXPECT_EQ(r.reason, "passed 3 of 3 cases");
  EXPECT_EQ(r.components.at("cases_passed_fraction"), 1.0);

  r = verify(py("a, b = map(int, input().split())\nprint(abs(a) + abs(b))\n"), ref);
  EXPECT_FALSE(r.correct);
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.reason, "wrong answer on case 2: line 1: expected \"6\", got \"14\"");
  EXPECT_NEAR(r.components.at("cases_passed_fraction"), 2.0 / 3, 1e-9);
  r = verify(py("a, b = map(int, input().split())\nprint(abs(a) + abs(b))\n"), ref, {{"reward", "fraction"}});
  EXPECT_NEAR(r.reward, 2.0 / 3, 1e-9);

  r = verify(py("print(1 / 0)\n"), ref);
  EXPECT_EQ(r.reason, "runtime_error on case 1: exit status 1 (ZeroDivisionError: division by zero)");
}

// ---- C++ ----

TEST(CodeVerifier, CppStdinStdoutCasesCompileOnce) {
  nlohmann::json ref = {
      {"language", "cpp"},
      {"cases", {{{"stdin", "3\n1 2 3\n"}, {"stdout", "6\n"}}, {{"stdin", "2\n-5 5\n"}, {"stdout", "0\n"}}}}};
  VerifyResult r = verify(
      "<think>sum them</think>\n" + cpp("#include <iostream>\nint main() {\n  int n; long s = 0, x;\n  std::cin >> n;\n"
                                        "  while (n--) { std::cin >> x; s += x; }\n  std::cout << s << \"\\n\";\n}\n"),
      ref);
  EXPECT_TRUE(r.correct) << r.reason;
  r = verify(cpp("#include <iostream>\nint main() { std::cout << 6 << std::endl; }\n"), ref);
  EXPECT_EQ(r.reason, "wrong answer on case 2: line 1: expected \"0\", got \"6\"");
  r = verify(cpp("int main() { return undefined_thing; }\n"), ref);
  EXPECT_FALSE(r.correct);
  EXPECT_EQ(r.reason.rfind("compile error: main.cpp:1:21: error: 'undefined_thing' was not declared", 0), 0u)
      << r.reason;
  r = verify(cpp("#include <cstdlib>\nint main() { abort(); }\n"), ref);
  EXPECT_EQ(r.reason, "runtime_error on case 1: killed by signal 6 (ABRT)");
}

TEST(CodeVerifier, CppAssertTests) {
  nlohmann::json ref = {{"language", "cpp"},
                        {"tests", {"assert(add(1, 2) == 3);", "assert(add(-1, 1) == 0);", "assert(add(2, 2) == 4);"}}};
  VerifyResult r = verify(cpp("int add(int a, int b) { return a + b; }\n"), ref);
  EXPECT_TRUE(r.correct) << r.reason;
  // Its own main() does not clash with the harness and does not run.
  r = verify(cpp("#include <cstdlib>\nint add(int a, int b) { return a + b; }\n"
                 "int main() { std::exit(3); }\n"),
             ref);
  EXPECT_TRUE(r.correct) << r.reason;
  r = verify(cpp("int add(int a, int b) { return a > 0 ? a + b : 7; }\n"), ref);
  EXPECT_FALSE(r.correct);
  EXPECT_EQ(r.reason, "Assertion `add(-1, 1) == 0' failed (got 7) at test 2: assert(add(-1, 1) == 0);");
  EXPECT_NEAR(r.components.at("tests_passed_fraction"), 2.0 / 3, 1e-9);
  r = verify(cpp("#include <cstdlib>\nint add(int a, int b) { std::exit(0); }\n"), ref);
  EXPECT_FALSE(r.correct);
}

// ---- bad input ----

TEST(CodeVerifier, BadReferencesAreInputErrorsNamingTheField) {
  const std::string ok = py("def f(): pass\n");
  EXPECT_EQ(error_of([&] {
              verify(ok, {{"language", "python"}});
            }),
            "reference: expected 'tests', 'test' + 'entry_point' or 'cases'");
  EXPECT_EQ(error_of([&] {
              verify(ok, {{"test", "def check(c): pass"}});
            }),
            "reference.entry_point: missing (HumanEval form)");
  EXPECT_EQ(error_of([&] { verify(ok, {{"entry_point", "f"}}); }), "reference.test: missing (HumanEval form)");
  EXPECT_EQ(error_of([&] { verify(ok, {{"cases", {{{"stdin", "1"}}}}}); }), "reference.cases[0].stdout: missing");
  EXPECT_EQ(error_of([&] { verify(ok, {{"tests", 5}}); }), "reference.tests: expected a string or an array of strings");
  EXPECT_EQ(error_of([&] { verify(ok, {{"tests", {"assert 1", 2}}}); }), "reference.tests[1]: expected a string");
  EXPECT_EQ(error_of([&] {
              verify(ok, {{"tests", "assert 1"}, {"language", "rust"}});
            }),
            "reference.language: unknown language 'rust' (expected \"python\" or \"cpp\")");
  EXPECT_EQ(error_of([&] { verify(ok, 42); }),
            "reference: expected a JSON object with 'tests', 'test' + 'entry_point' or 'cases', got number");
  EXPECT_EQ(error_of([&] { verify(ok, "not json"); }), "reference: expected a JSON object (or a string holding one)");
  EXPECT_EQ(error_of([&] {
              verify(ok, kDoubleTests, {{"reward", "half"}});
            }),
            "options.reward: expected \"all_or_nothing\" or \"fraction\", got \"half\"");
  EXPECT_EQ(error_of([&] { verify(ok, kDoubleTests, {{"python_pool", 3}}); }), "options: unknown option 'python_pool'");
  EXPECT_EQ(error_of([] {
              make_code_verifier({{"reward", "fraction"}, {"colour", 1}});
            }),
            "code verifier options: unknown option 'colour'");
  EXPECT_EQ(error_of([] {
              make_code_verifier({{"disk_mb", -1}});
            }),
            "code verifier options.disk_mb: must be positive, got -1");
  Limits bad;
  bad.timeout_ms = 0;
  EXPECT_EQ(error_of([&] { verify(ok, kDoubleTests, nullptr, bad); }), "limits.timeout_ms: must be in 1..2^40, got 0");
  // A reference given as a JSON string works like the object.
  EXPECT_TRUE(verify(py("def double(x):\n    return 2 * x\n"), kDoubleTests.dump()).correct);
}

TEST(CodeVerifier, BadAnswersGetZeroAndAReason) {
  VerifyResult r = verify("", kDoubleTests);
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.reason, "empty completion");
  r = verify("```python\nprint('\xff')\n```", kDoubleTests);
  EXPECT_EQ(r.reason, "completion is not valid UTF-8");
  std::string huge = "```python\n# " + std::string(10 << 20, 'x') + "\n```";
  r = verify(huge, kDoubleTests);
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(r.reason, "too long: " + std::to_string(huge.size()) + " bytes > limit 1048576");
  r = verify("<think>let me think about doubling", kDoubleTests);
  EXPECT_EQ(r.reason, "no answer: <think> is never closed");
  r = verify("def double(x): return 2 * x", kDoubleTests, {{"require_fence", true}});
  EXPECT_EQ(r.reason, "no ```python block");
  EXPECT_EQ(r.components.at("accuracy"), 0.0);
}

// ---- real datasets ----

TEST(CodeDatasets, AllHumanEvalCanonicalSolutionsPassAndStubsPassNone) {
  auto rows = grpo::testdata::read_jsonl(GRPO_TEST_DATA "/code/HumanEval.jsonl.gz");
  ASSERT_EQ(rows.size(), 164u);
  std::vector<std::string> reasons;
  auto t0 = std::chrono::steady_clock::now();
  auto wrong = run_all(
      164, 4,
      [&](int i) {
        return grpo::testdata::humaneval_request(rows[i], rows[i]["canonical_solution"].get<std::string>());
      },
      true, &reasons);
  EXPECT_TRUE(wrong.empty()) << wrong.size() << " canonical solutions failed:\n" << joined(reasons);
  auto t1 = std::chrono::steady_clock::now();
  for (const char* body : {"    return None\n", "    pass\n"}) {
    reasons.clear();
    wrong = run_all(
        164, 4, [&](int i) { return grpo::testdata::humaneval_request(rows[i], body); }, false, &reasons);
    EXPECT_TRUE(wrong.empty()) << wrong.size() << " stubs passed:\n" << joined(reasons);
  }
  auto t2 = std::chrono::steady_clock::now();
  using ms = std::chrono::milliseconds;
  std::printf("HumanEval: 164 canonical in %lld ms, 2 x 164 stubs in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<ms>(t1 - t0).count()),
              static_cast<long long>(std::chrono::duration_cast<ms>(t2 - t1).count()));
}

TEST(CodeDatasets, AllMbppReferenceSolutionsPassAndStubsPassNone) {
  auto rows = grpo::testdata::read_jsonl(GRPO_TEST_DATA "/code/mbpp.jsonl");
  ASSERT_EQ(rows.size(), 974u);
  std::vector<std::string> reasons;
  auto t0 = std::chrono::steady_clock::now();
  auto wrong = run_all(
      974, 4, [&](int i) { return grpo::testdata::mbpp_request(rows[i], rows[i]["code"].get<std::string>()); }, true,
      &reasons);
  EXPECT_TRUE(wrong.empty()) << wrong.size() << " reference solutions failed:\n" << joined(reasons);
  auto t1 = std::chrono::steady_clock::now();
  reasons.clear();
  wrong = run_all(
      974, 4,
      [&](int i) {
        std::string code = rows[i]["code"].get<std::string>();
        return grpo::testdata::mbpp_request(rows[i], grpo::testdata::mbpp_stub(code, i % 2 ? "pass" : "return None"));
      },
      false, &reasons);
  EXPECT_TRUE(wrong.empty()) << wrong.size() << " stubs passed:\n" << joined(reasons);
  auto t2 = std::chrono::steady_clock::now();
  using ms = std::chrono::milliseconds;
  std::printf("MBPP: 974 references in %lld ms, 974 stubs in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<ms>(t1 - t0).count()),
              static_cast<long long>(std::chrono::duration_cast<ms>(t2 - t1).count()));
}

TEST(CodeVerifier, CompilerIsSandboxedAndLimited) {
  auto v = make_code_verifier({{"python_pool", 0}, {"compile_timeout_ms", 10000}, {"compile_memory_mb", 512}});
  nlohmann::json ref = {{"language", "cpp"}, {"cases", {{{"stdin", ""}, {"stdout", "1"}}}}};
  VerifyRequest req;
  req.reference = ref;
  // An endless include: stopped by the compiler's memory (or time) limit.
  req.completion = cpp("#include \"/dev/zero\"\n");
  VerifyResult r = v->verify(req);
  EXPECT_FALSE(r.correct);
  EXPECT_TRUE(r.reason.rfind("compile memory_limit: ", 0) == 0 || r.reason.rfind("compile timeout: ", 0) == 0)
      << r.reason;
  // Secrets of the host are not there to include.
  req.completion = cpp("#include \"/etc/shadow\"\nint main() {}\n");
  r = v->verify(req);
  EXPECT_EQ(r.reason.rfind("compile error: main.cpp:1:10: fatal error: /etc/shadow: No such file or directory", 0), 0u)
      << r.reason;
}
