// Warm Python interpreters for sandboxed runs: interpreter start-up (~20-40 ms) dominates short
// test programs, so each zygote is a sandboxed python3 that has started once and forks a fresh
// child per job (reward/code/python_zygote.py). A zygote never runs untrusted code and no process
// serves two jobs: each job gets a new process in its own user, PID, mount, network, IPC and UTS
// namespaces, fresh tmpfs working dir and /tmp, no capabilities, no further user namespaces, the
// rlimits of its SandboxSpec, and dies with everything it started. A job that overruns its wall
// time or output cap takes its zygote down with it (the zygote is replaced).
//
// Differences from a fresh `python3 main.py` (run_sandboxed): the modules in Options::preload and
// Options::modules are already imported; the interpreter's hash seed is the zygote's; the program's parent is its
// namespace's init (pid 1), not the sandbox's shell.
#pragma once
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "reward/code/sandbox.h"

namespace grpo::reward {

// Thread-safe: run() from many threads at once (waits for a free zygote). Owns its zygotes and spawner thread.
class PythonPool {
 public:
  struct Options {
    int size = 2;  // zygotes (= jobs at once)
    std::string python = "/usr/bin/python3";
    std::vector<std::string> preload = {  // imported by every zygote before it serves (ast, ctypes,
                                          // signal: the code verifier's harness, python_harness.py)
        "collections", "itertools", "functools", "math",      "re",      "string",     "heapq",    "bisect",
        "typing",      "operator",  "copy",      "fractions", "decimal", "statistics", "datetime", "json",
        "hashlib",     "array",     "cmath",     "ast",       "ctypes",  "signal"};
    // Trusted modules ("name.py") beside zygote.py, imported by every zygote before it serves.
    std::vector<SandboxFile> modules;
    int64_t start_timeout_ms = 20'000;  // for a zygote to come up
  };

  // Starts options.size zygotes; throws std::runtime_error when the first cannot start.
  explicit PythonPool(Options options);
  ~PythonPool();

  // Runs spec.argv = {python, script, args...} (script relative to the working dir) as a fresh
  // child of a warm zygote. Same contract as run_sandboxed(); spec.export_dir is not supported
  // (InputError). Thread-safe; waits while every zygote is busy.
  SandboxResult run(const SandboxSpec& spec);

 private:
  struct Zygote;
  struct Lease;
  std::unique_ptr<Zygote> start_zygote() const;
  // Starts a zygote on the spawner thread: bubblewrap's --die-with-parent ties a sandbox to the
  // thread that forked it, so zygotes are forked by one thread that lives as long as the pool.
  std::unique_ptr<Zygote> spawn();
  void spawner_loop();
  std::unique_ptr<Zygote> acquire();
  void release(std::unique_ptr<Zygote> zygote);  // null: it died

  Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Zygote>> idle_;
  int live_ = 0;
  std::mutex spawn_mu_;
  std::condition_variable spawn_cv_;
  std::deque<std::packaged_task<std::unique_ptr<Zygote>()>> spawn_queue_;
  bool stopping_ = false;
  std::thread spawner_;
};

}  // namespace grpo::reward
