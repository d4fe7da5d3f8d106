// Builds and runs untrusted programs in the sandbox: Python 3 source, or C++ compiled by g++
// inside the sandbox (its own time/memory limits) and then run as a binary.
//
//   CodeRunner runner({});
//   BuildResult b = runner.build(Language::cpp, source);     // b.ok, else b.error = "compile error: ..."
//   SandboxResult r = runner.run(b.program, "1 2\n", limits);  // one run per stdin case
//
// Python runs either in a fresh sandboxed interpreter per run or, with options.python_pool > 0,
// in a fresh child forked by a warm sandboxed interpreter (reward/code/python_pool.h); both give every
// run a fresh working dir, its own namespaces and the same limits.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "reward/code/sandbox.h"

namespace grpo::reward {

class PythonPool;

enum class Language { python, cpp };
// "python", "python3", "py" / "cpp", "c++", "cxx"; anything else is an InputError naming `field`.
Language parse_language(const std::string& name, const std::string& field);
const char* language_name(Language language);

struct RunnerOptions {
  std::string python = "/usr/bin/python3";
  std::string cxx = "/usr/bin/g++";
  std::vector<std::string> cxx_flags = {"-std=c++17", "-O2", "-pipe"};
  SandboxLimits compile_limits = [] {
    SandboxLimits l;
    l.wall_ms = 30'000;
    l.cpu_ms = 30'000;
    l.memory_mb = 2048;
    l.output_bytes = 64 << 10;
    l.disk_mb = 256;
    return l;
  }();
  int python_pool = 0;  // warm Python zygotes; 0 = a fresh sandboxed interpreter per run
  // Trusted modules ("name.py") every Python run can import: placed in its working dir, and
  // imported by the pool's zygotes before they serve (so a run does not compile them again).
  std::vector<SandboxFile> python_modules;
};

// A program ready to run any number of times.
struct Program {
  Language language = Language::python;
  std::string source;  // python: the file run as main.py
  std::string binary;  // cpp: the executable g++ produced
};

struct BuildResult {
  bool ok = false;
  Program program;
  SandboxResult compile;  // the compiler's run (cpp only)
  std::string error;      // when !ok: "compile error: main.cpp:3:5: error: ..." or the limit hit
};

// Thread-safe: build() and run() may be called from many threads at once. Owns its Python pool (python_pool > 0).
class CodeRunner {
 public:
  explicit CodeRunner(RunnerOptions options);
  ~CodeRunner();
  const RunnerOptions& options() const { return options_; }
  // Python: nothing to do. C++: compiles main.cpp in the sandbox under options.compile_limits.
  BuildResult build(Language language, const std::string& source) const;
  // Runs the program with stdin_data under `limits`, with `files` placed in its working dir
  // beside it (relative paths). Thread-safe.
  SandboxResult run(const Program& program, const std::string& stdin_data, const SandboxLimits& limits,
                    const std::vector<SandboxFile>& files = {}) const;

 private:
  RunnerOptions options_;
  std::unique_ptr<PythonPool> pool_;
};

}  // namespace grpo::reward
