#include "reward/code/python_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>

#include "reward/code/python_zygote_source.h"
#include "reward/code/sandbox_process.h"

namespace grpo::reward {

namespace {

// The zygote's own limits are ceilings: a job can only lower the limits it inherits.
SandboxLimits zygote_limits() {
  SandboxLimits l;
  l.cpu_ms = int64_t{1} << 40;
  l.memory_mb = int64_t{1} << 20;
  l.disk_mb = int64_t{1} << 20;
  l.processes = 1 << 14;
  l.open_files = 4096;
  l.output_bytes = 64 << 10;
  return l;
}

bool send_with_fds(int sock, const std::string& message, const std::vector<int>& fds) {
  iovec iov{const_cast<char*>(message.data()), message.size()};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(message.size());
}

// One message from a SOCK_SEQPACKET socket; empty on EOF or error.
std::string receive(int sock) {
  std::string buf(1 << 16, '\0');
  ssize_t n;
  do {
    n = ::recv(sock, buf.data(), buf.size(), MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return buf;
}

}  // namespace

struct PythonPool::Zygote {
  Fd control;
  std::unique_ptr<SandboxProcess> process;
  bool alive() {
    process->out().read_available();  // the zygote is quiet; keep its pipes from filling anyway
    process->err().read_available();
    return !process->poll_exit();
  }
};

PythonPool::PythonPool(Options options) : options_(std::move(options)) {
  if (options_.size <= 0) throw InputError("python pool: size must be positive");
  spawner_ = std::thread([this] { spawner_loop(); });
  std::vector<std::unique_ptr<Zygote>> started;
  try {
    for (int i = 0; i < options_.size; ++i) started.push_back(spawn());
  } catch (...) {
    started.clear();
    {
      std::lock_guard<std::mutex> lock(spawn_mu_);
      stopping_ = true;
    }
    spawn_cv_.notify_one();
    spawner_.join();
    throw;
  }
  std::lock_guard<std::mutex> lock(mu_);
  live_ = options_.size;
  idle_ = std::move(started);
}

PythonPool::~PythonPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.clear();  // closes the control sockets and kills the zygotes
  }
  {
    std::lock_guard<std::mutex> lock(spawn_mu_);
    stopping_ = true;
  }
  spawn_cv_.notify_one();
  spawner_.join();
}

void PythonPool::spawner_loop() {
  while (true) {
    std::packaged_task<std::unique_ptr<Zygote>()> task;
    {
      std::unique_lock<std::mutex> lock(spawn_mu_);
      spawn_cv_.wait(lock, [&] { return stopping_ || !spawn_queue_.empty(); });
      if (spawn_queue_.empty()) return;
      task = std::move(spawn_queue_.front());
      spawn_queue_.pop_front();
    }
    task();
  }
}

std::unique_ptr<PythonPool::Zygote> PythonPool::spawn() {
  std::packaged_task<std::unique_ptr<Zygote>()> task([this] { return start_zygote(); });
  std::future<std::unique_ptr<Zygote>> done = task.get_future();
  {
    std::lock_guard<std::mutex> lock(spawn_mu_);
    spawn_queue_.push_back(std::move(task));
  }
  spawn_cv_.notify_one();
  return done.get();
}

std::unique_ptr<PythonPool::Zygote> PythonPool::start_zygote() const {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  auto z = std::make_unique<Zygote>();
  z->control.reset(sv[0]);
  Fd theirs(sv[1]);
  SandboxSpec spec;
  std::vector<std::string> preload = options_.preload;
  spec.files = {{"zygote.py", kPythonZygoteSource}};
  for (const auto& m : options_.modules) {
    spec.files.push_back(m);
    preload.push_back(m.path.substr(0, m.path.rfind(".py")));
  }
  spec.argv = {options_.python, "/work/zygote.py", nlohmann::json(preload).dump()};
  spec.limits = zygote_limits();
  z->process = std::make_unique<SandboxProcess>(spec, SandboxProcess::Options{true, theirs.get()});
  theirs.reset();

  const int64_t deadline = monotonic_ms() + options_.start_timeout_ms;
  while (true) {
    pollfd fds[2] = {{z->control.get(), POLLIN, 0}, {z->process->exit_fd(), POLLIN, 0}};
    int64_t left = deadline - monotonic_ms();
    if (left <= 0) break;
    ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left, 50)));
    if (fds[0].revents & POLLIN) {
      std::string hello = receive(z->control.get());
      auto j = nlohmann::json::parse(hello, nullptr, false);
      if (j.is_object() && j.value("ready", false)) return z;
      break;
    }
    if (!z->alive()) break;
  }
  z->process->finish();
  z->process->err().read_available();
  throw std::runtime_error("python pool: the zygote did not start: " + z->process->err().data.substr(0, 1000));
}

std::unique_ptr<PythonPool::Zygote> PythonPool::acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    while (!idle_.empty()) {
      std::unique_ptr<Zygote> z = std::move(idle_.back());
      idle_.pop_back();
      if (z->alive()) return z;
      --live_;  // died while idle: replaced below
    }
    if (live_ < options_.size) {
      ++live_;
      lock.unlock();
      try {
        return spawn();
      } catch (...) {
        release(nullptr);
        throw;
      }
    }
    cv_.wait(lock);
  }
}

void PythonPool::release(std::unique_ptr<Zygote> zygote) {
  std::lock_guard<std::mutex> lock(mu_);
  if (zygote)
    idle_.push_back(std::move(zygote));
  else
    --live_;
  cv_.notify_one();
}

namespace {

// The job message for the zygote and the descriptors that go with it: stdin, stdout and stderr
// (write ends), then one memfd per file.
std::string job_request(const SandboxSpec& spec, std::vector<Fd>& fds, CappedStream& out, CappedStream& err) {
  const SandboxLimits& l = spec.limits;
  nlohmann::json request = {{"argv", spec.argv},
                            {"limits",
                             {{"cpu_ms", l.cpu_ms},
                              {"memory_mb", l.memory_mb},
                              {"disk_mb", l.disk_mb},
                              {"processes", l.processes},
                              {"open_files", l.open_files}}},
                            {"env", nlohmann::json::object()},
                            {"files", nlohmann::json::array()}};
  for (const auto& [k, v] : sandbox_environment(spec)) request["env"][k] = v;
  fds.push_back(stdin_source(spec.stdin_data));
  for (CappedStream* s : {&out, &err}) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    s->fd.reset(p[0]);
    s->cap = l.output_bytes;
    ::fcntl(p[0], F_SETFL, O_NONBLOCK);
    fds.emplace_back(p[1]);
  }
  for (const auto& f : spec.files) {
    request["files"].push_back({{"path", f.path}, {"mode", f.executable ? 0755 : 0644}});
    fds.push_back(memfd_with("file", f.content));
  }
  return request.dump();
}

}  // namespace

// A zygote lent to one job. It goes back to the pool only when the job ended with a reply;
// otherwise (timeout, flood, lost zygote, an exception here) it is killed and replaced.
struct PythonPool::Lease {
  PythonPool& pool;
  std::unique_ptr<Zygote> zygote;
  bool clean = false;
  ~Lease() {
    if (zygote && !clean) {
      zygote->process->finish();
      zygote.reset();
    }
    pool.release(std::move(zygote));
  }
};

SandboxResult PythonPool::run(const SandboxSpec& spec) {
  validate_spec(spec);
  if (spec.argv.size() < 2 || spec.argv[1].empty() || spec.argv[1][0] == '/')
    throw InputError("python pool: argv must be {python, script relative to the working dir, ...}");
  if (!spec.export_dir.empty()) throw InputError("python pool: export_dir is not supported");
  const SandboxLimits& limits = spec.limits;
  SandboxResult r;
  std::unique_ptr<Zygote> taken;
  try {
    taken = acquire();
  } catch (const std::exception& e) {
    r.verdict = Verdict::sandbox_error;
    r.detail = e.what();
    return r;
  }
  Lease lease{*this, std::move(taken)};
  Zygote& z = *lease.zygote;
  const int64_t start = monotonic_ms();
  const int64_t deadline = start + limits.wall_ms;

  CappedStream out, err;
  ExitFacts facts;
  nlohmann::json reply;
  {
    std::vector<Fd> fds;  // ours are closed once the zygote holds its copies
    std::string request = job_request(spec, fds, out, err);
    std::vector<int> raw;
    raw.reserve(fds.size());
    for (auto& fd : fds) raw.push_back(fd.get());
    if (!send_with_fds(z.control.get(), request, raw)) reply = {{"error", "the python zygote died"}};
  }
  while (reply.is_null()) {
    int64_t now = monotonic_ms();
    if (now >= deadline) {
      facts.wall_timeout = true;
      break;
    }
    pollfd fds[4] = {{out.fd.get(), POLLIN, 0},
                     {err.fd.get(), POLLIN, 0},
                     {z.control.get(), POLLIN, 0},
                     {z.process->exit_fd(), POLLIN, 0}};
    ::poll(fds, 4, static_cast<int>(std::min<int64_t>(deadline - now, 1000)));
    out.read_available();
    err.read_available();
    if (out.truncated || err.truncated) {
      facts.output_overflow = true;
      break;
    }
    if (fds[2].revents & (POLLIN | POLLHUP)) {
      reply = nlohmann::json::parse(receive(z.control.get()), nullptr, false);
      if (!reply.is_object() || !(reply.contains("status") || reply.contains("error")))
        reply = {{"error", "the python zygote died"}};
    } else if ((fds[3].revents & POLLIN) || !z.alive()) {
      reply = {{"error", "the python zygote died"}};
    }
  }
  lease.clean = reply.is_object() && reply.contains("status");
  if (!lease.clean) {
    z.process->finish();  // the job (and whatever it started) dies with its zygote
    z.process->err().read_available();
    if (reply.is_object() && !z.process->err().data.empty())
      reply["error"] = reply["error"].get<std::string>() + ": " + z.process->err().data.substr(0, 1000);
  }
  // The job and everything it started are gone: what is still in the pipes is the rest.
  for (CappedStream* s : {&out, &err}) {
    while (!s->eof && !s->truncated) {
      pollfd p{s->fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) break;
      s->read_available();
    }
  }
  if (out.truncated || err.truncated) facts.output_overflow = true;

  r.stdout_data = std::move(out.data);
  r.stderr_data = std::move(err.data);
  r.stdout_truncated = out.truncated;
  r.stderr_truncated = err.truncated;
  r.wall_ms = monotonic_ms() - start;
  if (!facts.wall_timeout && !facts.output_overflow) {
    if (!lease.clean) {
      r.verdict = Verdict::sandbox_error;
      r.detail = reply.value("error", "the python zygote died");
      return r;
    }
    int status = reply["status"].get<int>();
    facts.cpu_ms = reply.value("cpu_ms", int64_t{0});
    if (WIFEXITED(status))
      facts.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
      facts.signal = WTERMSIG(status);
  }
  classify(facts, limits, r);
  return r;
}

}  // namespace grpo::reward
