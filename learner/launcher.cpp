#include "learner/launcher.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/error.h"

namespace grpo {
namespace {

// This process's own command line (to start the ranks with it).
std::vector<std::string> own_argv() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> argv;
  for (std::string a; std::getline(in, a, '\0');) argv.push_back(a);
  return argv;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

}  // namespace

int launch_ranks(const LaunchOptions& o) {
  const int nproc = o.nproc, nnodes = o.nnodes, node_rank = o.node_rank;
  const int port = o.master_port, timeout_s = o.timeout_s;
  if (nproc < 1) throw InputError("--nproc: expected an integer >= 1");
  if (nnodes < 1) throw InputError("--nnodes: expected an integer >= 1");
  if (node_rank < 0 || node_rank >= nnodes)
    throw InputError("--node-rank: " + std::to_string(node_rank) + " outside [0, --nnodes=" + std::to_string(nnodes) +
                     ")");
  const std::vector<std::string> argv = own_argv();
  const int world = nnodes * nproc;
  std::map<pid_t, int> ranks;  // pid -> rank
  for (int i = 0; i < nproc; ++i) {
    const int rank = node_rank * nproc + i;
    const std::map<std::string, std::string> env{{"RANK", std::to_string(rank)},
                                                 {"LOCAL_RANK", std::to_string(i)},
                                                 {"LOCAL_WORLD_SIZE", std::to_string(nproc)},
                                                 {"WORLD_SIZE", std::to_string(world)},
                                                 {"MASTER_ADDR", o.master_addr},
                                                 {"MASTER_PORT", std::to_string(port)}};
    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
      const std::string kv = *e;
      if (!env.count(kv.substr(0, kv.find('=')))) env_strings.push_back(kv);
    }
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> cargv, cenv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    for (const auto& e : env_strings) cenv.push_back(const_cast<char*>(e.c_str()));
    cargv.push_back(nullptr);
    cenv.push_back(nullptr);
    std::cout.flush();
    std::cerr.flush();
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("learner: fork failed");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // a rank does not outlive its launcher
      execve("/proc/self/exe", cargv.data(), cenv.data());
      _exit(127);
    }
    ranks[pid] = rank;
  }
  // Wait for all; after the first failure the others get the collective timeout (plus a margin)
  // to notice and exit on their own, then they are killed.
  int failed_rank = -1;
  std::string failure;
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (!ranks.empty()) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0 && ranks.count(pid)) {
      const int rank = ranks[pid];
      ranks.erase(pid);
      if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) && failed_rank < 0) {
        failed_rank = rank;
        failure = describe_status(status);
        std::cerr << "learner: rank " << rank << " (pid " << pid << ") " << failure << "; waiting up to "
                  << timeout_s + 10 << "s for the other ranks to stop\n";
        deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s + 10);
      }
      continue;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      for (const auto& [p, rank] : ranks) {
        std::cerr << "learner: rank " << rank << " (pid " << p << ") did not stop; killing it\n";
        kill(p, SIGKILL);
      }
      deadline = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (failed_rank >= 0) {
    std::cerr << "learner: failed: rank " << failed_rank << " " << failure << " (first failure of " << world
              << " ranks); rerun with pretrain.resume=true to continue from the last checkpoint\n";
    return 1;
  }
  return 0;
}

// The cores of this host shared by its ranks (LOCAL_WORLD_SIZE of them).
int threads_per_rank() {
  const char* local = std::getenv("LOCAL_WORLD_SIZE");
  const int per_host = local ? std::max(1, std::atoi(local)) : 1;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / per_host);
}

bool is_grpo_job(const std::string& job, const Config& config) {
  if (job != "auto" && job != "grpo" && job != "pretrain")
    throw InputError("--job: expected auto, pretrain or grpo, got '" + job + "'");
  const bool pretrain = config.has("pretrain"), grpo_run = config.has("train") || config.has("trainer");
  if (job == "auto" && pretrain && grpo_run)
    throw InputError(config.where("pretrain") + ": the config has both a pretrain: and a train:/trainer: " +
                     "section; choose the job with --job pretrain or --job grpo");
  return job == "grpo" || (job == "auto" && grpo_run);
}

}  // namespace grpo
