// The rank launcher of `grpo learner`, the way torchrun starts PyTorch jobs: --nproc local ranks
// of this same command line, each with RANK = node_rank·nproc + i, LOCAL_RANK = i,
// LOCAL_WORLD_SIZE = nproc, WORLD_SIZE = nnodes·nproc, MASTER_ADDR and MASTER_PORT set (the
// rest of the environment inherited), each dying with its launcher (PR_SET_PDEATHSIG).
//
// When one rank fails, the others stop on their own within `timeout_s` (their next collective
// fails, naming the cause); after that plus 10 s they are killed. The launcher names the first
// rank that failed and returns 1; 0 when every rank exits 0. Multi-host: one launcher per host
// with nnodes and node_rank, or a scheduler that sets RANK/WORLD_SIZE/... itself (docs/cluster.md).
//
// Not thread-safe (it forks); call from the main thread of a process that owns no other children.
#pragma once
#include <string>

#include "common/config.h"

namespace grpo {

struct LaunchOptions {
  int nproc = 1;      // ranks on this host, >= 1
  int nnodes = 1;     // hosts, >= 1
  int node_rank = 0;  // 0 .. nnodes-1
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int timeout_s = 120;  // the ranks' collective timeout
};

// Starts the ranks (this process's own command line, /proc/self/exe) and waits for them. Throws
// InputError naming the option for a value out of range.
int launch_ranks(const LaunchOptions& options);

// Whether a `grpo learner` job is a GRPO run rather than pretraining: job "grpo" or "pretrain", or
// "auto": the config's sections (train:/trainer: vs pretrain:; both is an InputError).
bool is_grpo_job(const std::string& job, const Config& config);

// The cores of this host shared by its ranks: hardware threads / LOCAL_WORLD_SIZE (unset: 1), >= 1.
int threads_per_rank();

}  // namespace grpo
