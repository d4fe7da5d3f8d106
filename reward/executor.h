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

class BoundedExecutor {
 public:
  using Task = std::function<void()>;
  BoundedExecutor(int workers, int max_queue);
  ~BoundedExecutor();  // stop()
  BoundedExecutor(const BoundedExecutor&) = delete;
  BoundedExecutor& operator=(const BoundedExecutor&) = delete;

  // False (and the task is dropped) when the queue is full or the executor is stopping.
  bool try_submit(Task task);
  // All or nothing: false when fewer than tasks.size() queue slots are free.
  bool try_submit_all(std::vector<Task>& tasks);
  // Refuses new tasks, runs those already queued, joins the workers. Idempotent.
  void stop();

  int workers() const { return workers_; }
  int max_queue() const { return max_queue_; }
  int64_t queued() const;
  int64_t running() const;

 private:
  void work();

  const int workers_, max_queue_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Task> queue_;
  int64_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace grpo::reward
