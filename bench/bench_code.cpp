// Code-verifier throughput on the HumanEval canonical solutions: executions/s and p50/p99 latency
// at 1, 2 and 4 concurrent clients, for
//   pool        the code verifier with warm sandboxed Python zygotes (one per client)
//   fresh       the code verifier with one fresh sandboxed interpreter per request (baseline)
//   unsandboxed the same test program run by a plain `python3` subprocess (no isolation; floor)
// Prints a table and writes bench/results/code.json. Run from the repository root:
//   ./build/bench/bench_code [tests/data/code/HumanEval.jsonl.gz] [bench/results/code.json]
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <thread>

#include "reward/code/harness.h"
#include "reward/code/verifier.h"
#include "tests/code_datasets.h"

using namespace grpo::reward;
using Clock = std::chrono::steady_clock;

namespace {

// One request -> passed? Thread-safe.
using Executor = std::function<bool(int problem)>;

// The floor: the harness program the verifier would build, run by python3 with no sandbox.
bool run_unsandboxed(const nlohmann::json& row, const std::string& dir) {
  TestSuite suite = parse_test_suite({{"test", row["test"]}, {"entry_point", row["entry_point"]}}, Language::python);
  std::string token = new_run_token();
  HarnessProgram program =
      build_harness(suite, row["prompt"].get<std::string>() + row["canonical_solution"].get<std::string>(), token);
  const std::string work = dir + "/run_" + token;
  if (::mkdir(work.c_str(), 0700) != 0) return false;
  std::ofstream(work + "/main.py") << program.source;
  for (const auto& f : program.files) std::ofstream(work + "/" + f.path) << f.content;
  std::ofstream(work + "/" + python_harness_module().path) << python_harness_module().content;
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return false;
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  ::posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  ::posix_spawn_file_actions_addchdir_np(&actions, work.c_str());
  char* args[] = {const_cast<char*>("python3"), const_cast<char*>("main.py"), nullptr};
  char* env[] = {const_cast<char*>("PATH=/usr/bin:/bin"), const_cast<char*>("LANG=C.UTF-8"), nullptr};
  pid_t pid = -1;
  int spawned = ::posix_spawn(&pid, "/usr/bin/python3", &actions, nullptr, args, env);
  ::posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  if (spawned != 0) {
    ::close(in[1]);
    ::close(out[0]);
    return false;
  }
  ::close(in[1]);
  SandboxResult run;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) run.stdout_data.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  for (const char* name : {"main.py", "solution.py", "tests.json", "grpo_code_harness.py"})
    std::remove((work + "/" + name).c_str());
  ::rmdir(work.c_str());
  run.verdict = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? Verdict::ok : Verdict::runtime_error;
  return read_report(suite, program, run, token).finished;
}

struct Row {
  std::string mode;
  int clients = 0;
  int total = 0, passed = 0;
  double seconds = 0, per_s = 0, p50_ms = 0, p99_ms = 0;
};

Row measure(const std::string& mode, int clients, int problems, const Executor& exec) {
  for (int i = 0; i < std::min(problems, 2 * clients); ++i) exec(i);  // warm-up, not timed
  std::atomic<int> next{0}, passed{0};
  std::vector<std::vector<double>> latencies(clients);
  Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  threads.reserve(clients);
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      for (int i = next++; i < problems; i = next++) {
        Clock::time_point t0 = Clock::now();
        if (exec(i)) ++passed;
        latencies[c].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    });
  for (auto& t : threads) t.join();
  Row r;
  r.mode = mode;
  r.clients = clients;
  r.total = problems;
  r.passed = passed;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.per_s = problems / r.seconds;
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))]; };
  r.p50_ms = pct(0.50);
  r.p99_ms = pct(0.99);
  std::printf("%-12s %7d %9.1f %9.1f %9.1f %7d/%d\n", r.mode.c_str(), r.clients, r.per_s, r.p50_ms, r.p99_ms, r.passed,
              r.total);
  std::fflush(stdout);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string data = argc > 1 ? argv[1] : "tests/data/code/HumanEval.jsonl.gz";
  const std::string out = argc > 2 ? argv[2] : "bench/results/code.json";
  std::vector<nlohmann::json> rows = grpo::testdata::read_jsonl(data);
  const int problems = static_cast<int>(rows.size());
  char tmpl[] = "/tmp/grpo-bench-code-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);

  auto loadavg = [] {
    std::ifstream f("/proc/loadavg");
    double one = 0;
    f >> one;
    return one;
  };
  const double load_before = loadavg();
  std::printf("HumanEval canonical solutions (%d), %u hardware threads, load average %.2f\n", problems,
              std::thread::hardware_concurrency(), load_before);
  std::printf("%-12s %7s %9s %9s %9s %9s\n", "mode", "clients", "exec/s", "p50 ms", "p99 ms", "passed");
  std::vector<Row> results;
  for (int clients : {1, 2, 4}) {
    for (const std::string mode : {"pool", "fresh", "unsandboxed"}) {
      std::unique_ptr<Verifier> verifier;
      if (mode != "unsandboxed") verifier = make_code_verifier({{"python_pool", mode == "pool" ? clients : 0}});
      Executor exec = [&](int i) {
        if (!verifier) return run_unsandboxed(rows[i], dir);
        return verifier
            ->verify(grpo::testdata::humaneval_request(rows[i], rows[i]["canonical_solution"].get<std::string>()))
            .correct;
      };
      results.push_back(measure(mode, clients, problems, exec));
    }
  }
  ::rmdir(dir.c_str());

  nlohmann::json j;
  j["benchmark"] = "code verifier, HumanEval canonical solutions";
  j["hardware_threads"] = std::thread::hardware_concurrency();
  j["load_average_before"] = load_before;
  j["load_average_after"] = loadavg();
  for (const Row& r : results)
    j["rows"].push_back({{"mode", r.mode},
                         {"clients", r.clients},
                         {"executions_per_s", r.per_s},
                         {"p50_ms", r.p50_ms},
                         {"p99_ms", r.p99_ms},
                         {"passed", r.passed},
                         {"total", r.total},
                         {"seconds", r.seconds}});
  std::ofstream(out + ".tmp") << j.dump(2) << "\n";
  if (std::rename((out + ".tmp").c_str(), out.c_str()) != 0) {
    std::fprintf(stderr, "cannot write %s (run from the repository root)\n", out.c_str());
    return 1;
  }
  std::printf("wrote %s\n", out.c_str());
  return 0;
}
