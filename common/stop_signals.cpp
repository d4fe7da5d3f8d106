#include "common/stop_signals.h"

#include <pthread.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

namespace grpo {
namespace {

// Waits for the next signal of `set` and exits the process with status 1.
void exit_on_next(const sigset_t& set, const std::string& who) {
  int again = 0;
  sigwait(&set, &again);
  std::cerr << who << ": " << strsignal(again) << " again, exiting now" << std::endl;
  std::_Exit(1);
}

}  // namespace

StopSignals::StopSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

int StopSignals::wait(const std::string& who) {
  int sig = 0;
  sigwait(&set_, &sig);
  std::thread([set = set_, who] { exit_on_next(set, who); }).detach();
  return sig;
}

void StopSignals::watch(const std::string& who, const std::string& unit) {
  std::thread([set = set_, who, unit, received = received_] {
    int sig = 0;
    sigwait(&set, &sig);
    // On a terminal the progress line has no newline yet.
    std::cerr << (isatty(STDERR_FILENO) == 1 ? "\n" : "") << who << ": " << strsignal(sig)
              << ": stopping after the current " << unit << " (again: exit at once)" << std::endl;
    received->store(sig);
    exit_on_next(set, who);
  }).detach();
}

}  // namespace grpo
