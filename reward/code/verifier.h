// The `code` verifier: runs the program in a model's answer against the reference's tests inside
// the sandbox (reward/code/sandbox.h).
//
// Reference (VerifyRequest.reference: a JSON object, or a string holding one):
//   {"language": "python"|"cpp", "tests": "assert f(1) == 2" | ["assert f(1) == 2", ...],
//    "setup": "..."}                        assert-style tests, run after the solution and `setup`
//                                           (C++: statements run in main(), e.g. "assert(f(1) == 2);";
//                                           only `assert(A == literal);` is judged outside the program)
//   {"test": "def check(candidate): ...", "entry_point": "f"}
//                                           HumanEval style (Python): runs check(f)
//   {"language": ..., "cases": [{"stdin": "...", "stdout": "..."}, ...]}
//                                           stdin/stdout cases, compared line by line ignoring
//                                           trailing whitespace and trailing blank lines
// "language" defaults to the verifier's option `language` ("python").
//
// The code is taken from the answer after </think>: the last ```python / ```cpp fenced block, else
// the whole answer (reward/code/extract.h). A test PASSes only when the harness printed its per-run
// token after the last test and the program exited 0 (reward/code/harness.h).
//
// Result: reward (see `reward` below), correct = every test/case passed, components
//   "accuracy" (0/1) and "tests_passed_fraction" or "cases_passed_fraction"; reason names the
//   failing test or case and why ("AssertionError at test 3: assert f(3) == 4",
//   "timeout: wall time limit of 5000 ms (at test 2)", "compile error: main.cpp:3:5: error: ...").
// Limits: request.limits (completion bytes, wall time for the whole verification, CPU and memory
// per run). Bad answers (empty, invalid UTF-8, too long, no code) get reward 0 and a reason; a
// malformed reference or option is an InputError naming the field.
//
// Options (factory; those marked * may also come per request in VerifyRequest.options):
//   reward*         "all_or_nothing" (default) or "fraction" (tests or cases passed / total).
//                   Either way every test and case runs (tests go on after a failed one; a C++
//                   crash ends the rest), so the *_passed_fraction component is always set.
//   require_fence*  false: true = an answer without a fenced block has no code
//   language*       "python": when the reference names none
//   python_pool     2: warm sandboxed Python interpreters (0 = a fresh sandbox per run)
//   python, cxx     "/usr/bin/python3", "/usr/bin/g++"
//   cxx_flags       ["-std=c++17", "-O2", "-pipe"]
//   compile_timeout_ms 30000, compile_memory_mb 2048: limits of the g++ run
//   disk_mb 64, processes 64, output_bytes 1048576: limits of each program run
#pragma once
#include <nlohmann/json.hpp>

#include <memory>

#include "reward/verifier.h"

namespace grpo::reward {

// Throws InputError for unknown or ill-typed options, or when the Python pool cannot start.
std::unique_ptr<Verifier> make_code_verifier(const nlohmann::json& options);

}  // namespace grpo::reward
