// Test helper: run a child process (the grpo binary, a Python plugin) with stdout on a pipe,
// read its lines with a timeout, signal it and reap it. POSIX only; header-only so both
// test_reward and test_cli can use it.
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace grpo::testing {

class Subprocess {
 public:
  // Starts argv[0] (searched in PATH) with stdin from `stdin_path` (or /dev/null), stdout on a
  // pipe, stderr on a pipe merged into stdout when merge_stderr, else inherited.
  explicit Subprocess(const std::vector<std::string>& argv, const std::string& stdin_path = "/dev/null",
                      bool merge_stderr = false) {
    // Everything the child needs is prepared before fork: after it, only async-signal-safe calls
    // (the test process has gRPC threads that may hold the allocator's locks).
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      int in = open(stdin_path.c_str(), O_RDONLY);
      if (in >= 0) dup2(in, 0);
      dup2(fds[1], 1);
      if (merge_stderr) dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fds[0];
  }
  ~Subprocess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) close(out_);
  }
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }

  // The next line of stdout (without '\n'); throws on EOF or after timeout_ms.
  std::string read_line(int timeout_ms = 20'000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      auto nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
      if (left <= 0) throw std::runtime_error("timed out waiting for a line; got so far: " + buffer_);
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, left) <= 0) continue;
      char chunk[4096];
      ssize_t n = read(out_, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error("child closed stdout; got so far: " + buffer_);
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  // All remaining stdout until EOF.
  std::string read_all() {
    std::string out = buffer_;
    buffer_.clear();
    char chunk[4096];
    for (ssize_t n; (n = read(out_, chunk, sizeof chunk)) > 0;) out.append(chunk, static_cast<size_t>(n));
    return out;
  }

  void signal(int sig) { kill(pid_, sig); }

  // Exit status (or 128 + signal); -1 if it has not exited within timeout_ms.
  int wait(int timeout_ms = 20'000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool reaped_ = false;
  std::string buffer_;
};

// The address in a server's first line "... listening on ADDRESS[ ...]" (`grpo reward-server`,
// `grpo rollout-server`); throws std::runtime_error with the line when it has none.
inline std::string listening_address(Subprocess& server, int timeout_ms = 60'000) {
  const std::string line = server.read_line(timeout_ms);
  const std::string marker = "listening on ";
  const auto at = line.find(marker);
  if (at == std::string::npos) throw std::runtime_error("no address in the server's first line: " + line);
  const auto from = at + marker.size();
  return line.substr(from, line.find(' ', from) - from);
}

}  // namespace grpo::testing
