#include "reward/code/sandbox.h"

#include <poll.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>

#include "reward/code/sandbox_process.h"

namespace grpo::reward {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::ok: return "ok";
    case Verdict::runtime_error: return "runtime_error";
    case Verdict::timeout: return "timeout";
    case Verdict::memory_limit: return "memory_limit";
    case Verdict::output_limit: return "output_limit";
    case Verdict::disk_limit: return "disk_limit";
    case Verdict::killed: return "killed";
    case Verdict::sandbox_error: return "sandbox_error";
  }
  return "unknown";
}

SandboxLimits SandboxLimits::from(const Limits& limits) {
  SandboxLimits s;
  s.wall_ms = limits.timeout_ms;
  s.cpu_ms = limits.cpu_ms;
  s.memory_mb = limits.memory_mb;
  return s;
}

SandboxResult run_sandboxed(const SandboxSpec& spec) {
  const int64_t start = monotonic_ms();
  const int64_t deadline = start + spec.limits.wall_ms;
  SandboxProcess box(spec, {});
  ExitFacts facts;
  while (!box.poll_exit()) {
    int64_t now = monotonic_ms();
    if (now >= deadline) {
      facts.wall_timeout = true;
      break;
    }
    pollfd fds[3] = {{box.out().fd.get(), POLLIN, 0}, {box.err().fd.get(), POLLIN, 0}, {box.exit_fd(), POLLIN, 0}};
    int wait = static_cast<int>(deadline - now);
    if (box.exit_fd() < 0) wait = std::min(wait, 10);  // no pidfd: look for the exit every 10 ms
    if (::poll(fds, 3, wait) < 0 && errno != EINTR) break;
    box.out().read_available();
    box.err().read_available();
    if (box.out().truncated || box.err().truncated) {
      facts.output_overflow = true;
      break;
    }
  }
  box.finish();  // kills whatever is left in the sandbox, reaps bwrap
  // Every writer is gone now: what is still in the pipes is the rest of the output.
  for (CappedStream* s : {&box.out(), &box.err()}) {
    while (!s->eof && !s->truncated) {
      pollfd p{s->fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) break;
      s->read_available();
    }
  }
  if (box.out().truncated || box.err().truncated) facts.output_overflow = true;

  SandboxResult r;
  r.stdout_data = std::move(box.out().data);
  r.stderr_data = std::move(box.err().data);
  r.stdout_truncated = box.out().truncated;
  r.stderr_truncated = box.err().truncated;
  r.wall_ms = monotonic_ms() - start;
  facts.cpu_ms = box.cpu_ms();
  int status = box.wait_status();
  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    // bwrap reports a program ended by signal N as exit status 128 + N.
    if (code > 128 && code <= 128 + 64)
      facts.signal = code - 128;
    else
      facts.exit_code = code;
  } else if (WIFSIGNALED(status)) {
    facts.signal = WTERMSIG(status);
  }
  if (!box.started() && !facts.wall_timeout && !facts.output_overflow) {
    r.verdict = Verdict::sandbox_error;
    r.exit_code = facts.exit_code;
    r.signal = facts.signal;
    r.detail = "sandbox setup failed: " + r.stderr_data.substr(0, 500);
    return r;
  }
  classify(facts, spec.limits, r);
  return r;
}

}  // namespace grpo::reward
