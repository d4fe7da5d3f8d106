#include "common/stop_signals.h"

#include <pthread.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

namespace grpo {

StopSignals::StopSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

int StopSignals::wait(const std::string& who) {
  int sig = 0;
  sigwait(&set_, &sig);
  std::thread([set = set_, who] {
    int again = 0;
    sigwait(&set, &again);
    std::cerr << who << ": " << strsignal(again) << " again, exiting now" << std::endl;
    std::_Exit(1);
  }).detach();
  return sig;
}

}  // namespace grpo
