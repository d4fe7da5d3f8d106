#include "reward/executor.h"

#include <stdexcept>
#include <string>

namespace grpo::reward {

BoundedExecutor::BoundedExecutor(int workers, int max_queue) : max_queue_(max_queue) {
  if (workers < 1 || max_queue < 0)
    throw std::invalid_argument("BoundedExecutor: need workers >= 1 and max_queue >= 0, got " +
                                std::to_string(workers) + " and " + std::to_string(max_queue));
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
}

BoundedExecutor::~BoundedExecutor() { stop(); }

bool BoundedExecutor::try_submit_all(std::vector<Task>& tasks) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || static_cast<int64_t>(queue_.size() + tasks.size()) > max_queue_) return false;
    for (auto& t : tasks) queue_.push_back(std::move(t));
  }
  ready_.notify_all();
  return true;
}

void BoundedExecutor::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

int64_t BoundedExecutor::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(queue_.size());
}

int64_t BoundedExecutor::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

void BoundedExecutor::work() {
  for (;;) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    task();
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
  }
}

}  // namespace grpo::reward
