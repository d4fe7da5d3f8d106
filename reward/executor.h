// A fixed pool of worker threads with a bounded queue: when `max_queue` tasks are already
// waiting, submissions are refused at once (the server answers RESOURCE_EXHAUSTED) instead of
// letting memory grow without bound. Tasks must not throw.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace grpo::reward {

// Thread-safe: submits and queries from any thread (one mutex); stop() from one thread, never a task. Owns its workers.
class BoundedExecutor {
 public:
  using Task = std::function<void()>;
  BoundedExecutor(int workers, int max_queue);
  ~BoundedExecutor();  // stop()
  BoundedExecutor(const BoundedExecutor&) = delete;
  BoundedExecutor& operator=(const BoundedExecutor&) = delete;

  // All or nothing: false (tasks left as they are) when fewer than tasks.size() queue slots are
  // free or the executor is stopping.
  bool try_submit_all(std::vector<Task>& tasks);
  // Refuses new tasks, runs those already queued, joins the workers. Idempotent.
  void stop();

  int64_t queued() const;
  int64_t running() const;
  int max_queue() const { return max_queue_; }

 private:
  void work();

  const int max_queue_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Task> queue_;
  int64_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace grpo::reward
