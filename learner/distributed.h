// The process group that expert-parallel training runs on: c10d's ProcessGroupGloo (CPU) over a
// TCPStore rendezvous, set up the way torchrun, Slurm and Kubernetes launch PyTorch jobs — every
// rank reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT from its environment; rank 0
// hosts the store on MASTER_ADDR:MASTER_PORT, the others connect to it.
//
// Every collective is blocking and bounded by the timeout: a rank that died or stopped answering
// makes the others throw DistributedError (naming this rank, the operation and the cause) instead
// of hanging. Gloo reports a peer whose process died at once ("Connection reset by peer"), a
// peer that hangs after `timeout`.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace grpo {

// Thread-safety: immutable once thrown; owns its message.
class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The launch environment of one rank.
struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;

  // From RANK, WORLD_SIZE, LOCAL_RANK (default RANK), MASTER_ADDR (default 127.0.0.1) and
  // MASTER_PORT (default 29500). InputError naming the variable when one is missing (RANK and
  // WORLD_SIZE are required), not an integer, or out of range (0 <= RANK < WORLD_SIZE, port 1..65535).
  static DistEnv from_env();
  // True when RANK is set: the process was started as one rank of a job.
  static bool present();
};

// Not thread-safe: one thread runs the collectives, in the same order on every rank. Owns its process group and store.
class Distributed {
 public:
  // Rendezvous of all env.world_size ranks; throws DistributedError when they do not all arrive
  // within `timeout` (naming MASTER_ADDR:MASTER_PORT), which also bounds every later collective.
  Distributed(const DistEnv& env, std::chrono::milliseconds timeout);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  const DistEnv& env() const { return env_; }

  // In place: t = sum over ranks of t (a contiguous CPU tensor).
  void all_reduce_sum(at::Tensor& t);
  // Sums every tensor over ranks, packed into flat buckets of about bucket_bytes (one all-reduce
  // per bucket, tensors of one dtype per bucket), then copied back in place.
  void all_reduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes);
  // Every rank's `input` (a CPU tensor of the same shape and dtype on every rank) -> [size, numel],
  // row r from rank r.
  at::Tensor all_gather(const at::Tensor& input);
  // Rows of `input` ([sum(send_counts), ...]) go to the ranks in order: send_counts[r] rows to rank
  // r; returns [sum(recv_counts), ...], recv_counts[r] rows from rank r (recv_counts must be what
  // the peers send: exchange counts first with all_to_all_counts).
  at::Tensor all_to_all(const at::Tensor& input, const std::vector<int64_t>& send_counts,
                        const std::vector<int64_t>& recv_counts);
  // counts: [size * m] int64, block r for rank r -> the [size * m] blocks every rank sent to this one.
  at::Tensor all_to_all_counts(const at::Tensor& counts);
  void barrier();
  // Rank 0's `bytes` to every rank (the others' `bytes` are replaced): its size, then the bytes.
  void broadcast(std::string& bytes);

  // Small messages through the rendezvous store (hosted by rank 0), for a rank that waits on
  // another longer than a collective may take (the GRPO loop's ranks wait for rank 0's next step
  // while it generates, then take its groups by broadcast). post() stores `bytes` under `key`
  // (keys live in their own namespace); fetch() waits up to `timeout` for the key, then returns
  // its value; erase() drops a key nobody needs any more. DistributedError when the store is gone
  // (rank 0 died) or the wait times out.
  void post(const std::string& key, const std::string& bytes);
  std::string fetch(const std::string& key, std::chrono::milliseconds timeout);
  void erase(const std::string& key);

  // Payload bytes this rank sent by all_to_all (to other ranks; for benchmarks).
  int64_t all_to_all_bytes() const { return all_to_all_bytes_; }

 private:
  [[noreturn]] void fail(const std::string& op, const std::exception& e) const;

  struct Impl;
  DistEnv env_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Impl> impl_;
  int64_t all_to_all_bytes_ = 0;
};

}  // namespace grpo
