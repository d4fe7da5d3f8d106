// How the serving commands (`grpo reward-server`, `grpo rollout-server`) stop: on SIGINT or
// SIGTERM they shut down gracefully; a second signal during the shutdown exits at once.
//
//   grpo::StopSignals stop;               // first thing, before any thread starts
//   ... start the server, print its address ...
//   int sig = stop.wait("rollout-server");  // blocks until SIGINT/SIGTERM
//   server.shutdown();
#pragma once
#include <signal.h>

#include <string>

namespace grpo {

// Thread-safety: construct on the main thread before any other thread starts; wait() once. Owns its signal set.
class StopSignals {
 public:
  // Blocks SIGINT and SIGTERM in the calling thread; threads started later inherit the mask, so
  // the signals are only ever received by wait().
  StopSignals();
  // Waits for SIGINT or SIGTERM and returns it. From then on a second one prints
  // "<who>: <signal> again, exiting now" and ends the process with status 1.
  int wait(const std::string& who);

 private:
  sigset_t set_;
};

}  // namespace grpo
