// The pieces run_sandboxed() is made of, shared with the Python zygote pool: one started
// bubblewrap sandbox, pipes read under a byte cap, and the mapping from an exit to a Verdict.
// Not a public interface of the reward library; use reward/code/sandbox.h.
#pragma once
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "reward/code/sandbox.h"

namespace grpo::reward {

int64_t monotonic_ms();

// An owned file descriptor.
// Not thread-safe; one owner. Closes its descriptor when destroyed or reset(); release() gives it up.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release();
  void reset(int fd = -1);
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// A sealed in-memory file holding `content` (used for stdin and for files placed in the sandbox).
Fd memfd_with(const char* name, const std::string& content);

// Throws InputError naming the first malformed field of `spec` (see run_sandboxed()).
void validate_spec(const SandboxSpec& spec);

// The whole environment a sandboxed program gets: the clean base plus spec.env.
std::vector<std::pair<std::string, std::string>> sandbox_environment(const SandboxSpec& spec);

// The program's stdin: a pipe already holding `data` (read once, like a real pipe) when it fits in
// a pipe buffer of up to 1 MiB, else a sealed memfd.
Fd stdin_source(const std::string& data);

// Appends what a non-blocking pipe delivers, keeping at most `cap` bytes; more sets `truncated`.
// Not thread-safe: one reader. Owns its pipe's descriptor (fd).
struct CappedStream {
  Fd fd;
  int64_t cap = 0;
  std::string data;
  bool truncated = false;
  bool eof = false;
  void read_available();  // until EAGAIN, EOF or overflow
};

// What ended a program, as seen from outside: its wait status and what this side did to it.
struct ExitFacts {
  int exit_code = -1;  // >= 0 when it exited
  int signal = 0;      // > 0 when a signal ended it
  bool wall_timeout = false;
  bool output_overflow = false;
  int64_t cpu_ms = 0;
};
// Fills verdict, exit_code, signal, detail (and cpu_ms) of `result` from the facts and the
// program's stderr (how out-of-memory and disk-full show when a limit made a call fail).
void classify(const ExitFacts& facts, const SandboxLimits& limits, SandboxResult& result);

// One started bubblewrap sandbox running spec.argv: its stdout/stderr pipes, the bwrap child, and
// the sandbox's PID-namespace init once bwrap reports it. The destructor kills and reaps it all.
// Not thread-safe: one thread drives it. Owns the bwrap child, its pipes and pidfds.
class SandboxProcess {
 public:
  struct Options {
    bool nested_userns = false;  // allow user namespaces inside (the zygote needs one per job)
    int control_fd = -1;         // given to the program as fd 4 (for the zygote's job socket)
  };
  // Throws InputError for a malformed spec; a failed start shows as exited() with setup_error().
  SandboxProcess(const SandboxSpec& spec, const Options& options);
  ~SandboxProcess();
  SandboxProcess(const SandboxProcess&) = delete;
  SandboxProcess& operator=(const SandboxProcess&) = delete;

  CappedStream& out() { return out_; }
  CappedStream& err() { return err_; }
  // Readable when bwrap has exited (a pidfd); poll it beside the output pipes.
  int exit_fd() const { return pidfd_.get(); }
  // Reads the setup pipes and reaps bwrap if it has exited; true once it has.
  bool poll_exit();
  bool exited() const { return exited_; }
  // True once the program itself was exec'd inside the sandbox (the setup worked).
  bool started() const { return started_; }
  // bwrap's wait status, valid once exited().
  int wait_status() const { return wait_status_; }
  // The program's CPU time (user + system, its children included), valid once exited().
  int64_t cpu_ms() const { return cpu_ms_; }
  // SIGKILLs the sandbox's PID-namespace init, which takes every process inside with it.
  void kill();
  // Blocks until bwrap is reaped and nothing of the sandbox is left (kills it first if needed).
  void finish();

 private:
  void read_setup_pipes();
  void reap(int options);

  CappedStream out_, err_;
  Fd ready_, info_, pidfd_, init_pidfd_;
  std::string info_text_, ready_text_;
  pid_t pid_ = -1;
  bool exited_ = false, started_ = false;
  int wait_status_ = 0;
  int64_t cpu_ms_ = 0;
};

}  // namespace grpo::reward
