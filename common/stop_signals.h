// How long-running commands stop on SIGINT or SIGTERM.
//
// The serving commands (`grpo reward-server`, `grpo rollout-server`) block in wait() and then
// shut down gracefully:
//   grpo::StopSignals stop;               // first thing, before any thread starts
//   ... start the server, print its address ...
//   int sig = stop.wait("rollout-server");  // blocks until SIGINT/SIGTERM
//   server.shutdown();
// A training loop (`grpo train`) calls watch() and checks received() between its steps, then
// saves what it has and says how to resume.
// Either way a second signal prints "<who>: <signal> again, exiting now" and exits with status 1.
#pragma once
#include <signal.h>

#include <atomic>
#include <memory>
#include <string>

namespace grpo {

// Thread-safety: construct on the main thread before any other thread starts; then either wait()
// or watch() once. received() may be called from any thread. Owns its signal set.
class StopSignals {
 public:
  // Blocks SIGINT and SIGTERM in the calling thread; threads started later inherit the mask, so
  // the signals are only ever received by wait() or watch()'s thread.
  StopSignals();
  // Waits for SIGINT or SIGTERM and returns it. From then on a second one exits at once.
  int wait(const std::string& who);
  // Returns at once. A thread waits for the first SIGINT/SIGTERM: it records it for received() and
  // prints "<who>: <signal>: stopping after the current <unit> (again: exit at once)"; a second
  // one exits at once.
  void watch(const std::string& who, const std::string& unit = "step");
  // The signal watch() received, 0 while none has come.
  int received() const { return received_->load(); }

 private:
  sigset_t set_;
  std::shared_ptr<std::atomic<int>> received_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace grpo
