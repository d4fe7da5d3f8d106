// Runs one untrusted program in a throw-away Linux sandbox (bubblewrap) and reports what happened.
//
//   SandboxSpec spec;
//   spec.argv = {"/usr/bin/python3", "main.py"};
//   spec.files = {{"main.py", "print(input())"}};
//   spec.stdin_data = "hi\n";
//   SandboxResult r = run_sandboxed(spec);   // r.verdict == Verdict::ok, r.stdout_data == "hi\n"
//
// Every run gets, and loses at the end:
//   * its own user, PID, mount, network, IPC, UTS and cgroup namespaces; nested user namespaces
//     are disabled; no capabilities; a new session; the program's PID-namespace init is killed when
//     the run ends, so every process it started (daemons included) dies with it;
//   * a read-only view of /usr (plus the /bin, /lib… links and the few /etc files the dynamic
//     loader, python3 and g++ read; never /etc wholesale, /root, /home or the host's /tmp);
//   * a fresh, size-limited tmpfs as working dir (/work, also $HOME) and another as /tmp;
//   * a network namespace of its own: only a loopback device, no route anywhere;
//   * a clean environment (PATH, HOME, LANG, TMPDIR, PYTHONDONTWRITEBYTECODE + spec.env);
//   * rlimits: CPU seconds, address space, file size, process count (counted in its own user
//     namespace, so concurrent runs do not share the budget), open files, no core dumps;
//   * a wall-clock deadline enforced here: the whole sandbox is SIGKILLed when it passes;
//   * stdout/stderr through pipes capped at limits.output_bytes each (overflow kills the run).
// When the server runs as root, bubblewrap itself is started as host uid `host_uid` (nobody), so the
// sandbox maps to an unprivileged host user: files visible to it are checked against that user and
// RLIMIT_NPROC applies (the kernel ignores it for uid 0).
//
// Thread-safe: runs from many threads at once are independent.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "reward/verifier.h"

namespace grpo::reward {

enum class Verdict {
  ok,             // exited with status 0
  runtime_error,  // non-zero exit status or killed by a signal of its own making
  timeout,        // wall deadline passed or CPU-time limit hit
  memory_limit,   // died out of memory under the address-space limit
  output_limit,   // wrote more than limits.output_bytes to stdout or stderr
  disk_limit,     // hit the file-size limit or filled its tmpfs
  killed,         // SIGKILLed by something other than this sandbox's limits
  sandbox_error,  // the sandbox could not be set up (the program never started)
};
const char* verdict_name(Verdict v);

struct SandboxLimits {
  int64_t wall_ms = 10'000;        // deadline from start to kill
  int64_t cpu_ms = 10'000;         // RLIMIT_CPU, rounded up to whole seconds
  int64_t memory_mb = 1024;        // RLIMIT_AS
  int64_t output_bytes = 1 << 20;  // per stream (stdout, stderr)
  int64_t disk_mb = 64;            // size of the /work and /tmp tmpfs each; also RLIMIT_FSIZE
  int64_t processes = 64;          // RLIMIT_NPROC inside the sandbox's user namespace
  int64_t open_files = 256;        // RLIMIT_NOFILE

  // The verifier limits carried over (wall, CPU, memory); the rest keep their defaults.
  static SandboxLimits from(const Limits& limits);
};

struct SandboxFile {
  std::string path;  // relative to the working dir, e.g. "main.py" or "src/a.h"
  std::string content;
  bool executable = false;  // mode 0755 instead of 0644
};

struct SandboxSpec {
  std::vector<std::string> argv;  // argv[0]: an absolute path inside the sandbox, e.g. /usr/bin/python3
  std::string stdin_data;
  std::vector<SandboxFile> files;                        // placed in the working dir before the program starts
  std::vector<std::pair<std::string, std::string>> env;  // added to the clean environment
  // Optional host directory bound writable at /out. Only for trusted tools whose output must
  // outlive the run (the compiler writing a binary); untrusted programs never get one. Its
  // contents are bounded by RLIMIT_FSIZE per file. When run as root it is chowned to host_uid.
  std::string export_dir;
  SandboxLimits limits;
  uint32_t host_uid = 65534;  // host user bubblewrap runs as when the caller is root
  std::string bwrap = "/usr/bin/bwrap";
};

struct SandboxResult {
  Verdict verdict = Verdict::sandbox_error;
  int exit_code = -1;                    // the program's exit status when it exited, else -1
  int signal = 0;                        // the signal that ended it, else 0
  std::string stdout_data, stderr_data;  // at most limits.output_bytes each
  bool stdout_truncated = false, stderr_truncated = false;
  int64_t wall_ms = 0;
  int64_t cpu_ms = 0;  // user + system time of everything the sandbox ran
  std::string detail;  // one line on why, for every verdict but ok (e.g. "wall time 2000 ms")
};

// Blocks until the program and everything it started are gone. Never throws for anything the
// program does; throws grpo::InputError for a malformed spec (empty argv, relative argv[0],
// file paths that leave the working dir, limits outside 1..2^40).
SandboxResult run_sandboxed(const SandboxSpec& spec);

}  // namespace grpo::reward
