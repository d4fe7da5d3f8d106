#include "reward/code/sandbox_process.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>

namespace grpo::reward {

int64_t monotonic_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

int Fd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

int sys_pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int sys_pidfd_kill(int pidfd) { return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0)); }

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Waits until fd is readable or timeout_ms passes; false on timeout.
bool wait_readable(int fd, int64_t timeout_ms) {
  int64_t end = monotonic_ms() + timeout_ms;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    int left = static_cast<int>(std::max<int64_t>(0, end - monotonic_ms()));
    int n = ::poll(&p, 1, left);
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

// The read-only system the sandbox sees: /usr, the top-level links into it (or the dirs themselves
// on a system without merged /usr), and the few /etc entries the loader, python3 and g++ read.
const std::vector<std::string>& system_view_args() {
  static const std::vector<std::string> args = [] {
    std::vector<std::string> a = {"--ro-bind", "/usr", "/usr"};
    for (const char* top : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
      struct stat st;
      if (::lstat(top, &st) != 0) continue;
      if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = ::readlink(top, target, sizeof target - 1);
        if (n <= 0) continue;
        a.insert(a.end(), {"--symlink", std::string(target, n), top});
      } else if (S_ISDIR(st.st_mode)) {
        a.insert(a.end(), {"--ro-bind", top, top});
      }
    }
    std::vector<std::string> etc = {"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime"};
    if (DIR* d = ::opendir("/etc")) {  // python3's sitecustomize lives in /etc/python3.X
      while (dirent* e = ::readdir(d)) {
        if (std::strncmp(e->d_name, "python3", 7) == 0) etc.push_back(e->d_name);
      }
      ::closedir(d);
    }
    for (const auto& e : etc) a.insert(a.end(), {"--ro-bind-try", "/etc/" + e, "/etc/" + e});
    return a;
  }();
  return args;
}

}  // namespace

void validate_spec(const SandboxSpec& spec) {
  if (spec.argv.empty()) throw InputError("sandbox spec: argv is empty");
  if (spec.argv[0].empty() || spec.argv[0][0] != '/')
    throw InputError("sandbox spec: argv[0] must be an absolute path inside the sandbox, got '" + spec.argv[0] + "'");
  for (const auto& f : spec.files) {
    bool bad = f.path.empty() || f.path[0] == '/' || f.path.back() == '/';
    size_t start = 0;
    while (!bad && start <= f.path.size()) {
      size_t end = f.path.find('/', start);
      if (end == std::string::npos) end = f.path.size();
      std::string part = f.path.substr(start, end - start);
      bad = part.empty() || part == "." || part == "..";
      start = end + 1;
    }
    if (bad)
      throw InputError("sandbox spec: file path '" + f.path +
                       "' must be relative to the working dir without '.', '..' or empty parts");
  }
  for (const auto& kv : spec.env)
    if (kv.first.empty() || kv.first.find('=') != std::string::npos)
      throw InputError("sandbox spec: bad environment variable name '" + kv.first + "'");
  const SandboxLimits& l = spec.limits;
  std::pair<const char*, int64_t> limits[] = {
      {"wall_ms", l.wall_ms}, {"cpu_ms", l.cpu_ms},       {"memory_mb", l.memory_mb},  {"output_bytes", l.output_bytes},
      {"disk_mb", l.disk_mb}, {"processes", l.processes}, {"open_files", l.open_files}};
  for (auto& [name, value] : limits)
    if (value <= 0 || value > (int64_t{1} << 40))
      throw InputError(std::string("sandbox spec: limits.") + name + " must be in 1..2^40, got " +
                       std::to_string(value));
}

std::vector<std::pair<std::string, std::string>> sandbox_environment(const SandboxSpec& spec) {
  std::vector<std::pair<std::string, std::string>> env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
                                                          {"HOME", "/work"},
                                                          {"PWD", "/work"},
                                                          {"LANG", "C.UTF-8"},
                                                          {"TMPDIR", "/tmp"},
                                                          {"PYTHONDONTWRITEBYTECODE", "1"}};
  env.insert(env.end(), spec.env.begin(), spec.env.end());
  return env;
}

namespace {

// Fixed fd numbers inside the sandbox (bwrap closes the info and file fds after use; the
// program's shell prologue closes the ready fd).
constexpr int kReadyFd = 3, kControlFd = 4, kInfoFd = 5, kFirstFileFd = 6;

// The shell the program runs under: says "started" on fd 3, runs the program without fd 3, then
// reports the program's CPU time (`times`: user and system time of the shell, then of its
// children) and passes its exit status on. The shell's own messages ("Aborted") go to /dev/null;
// the program (exec'd from a subshell) gets the real stderr back, kept on fd 9 meanwhile.
constexpr const char* kPrologue =
    "exec 9>&2 2>/dev/null; printf R >&3; (exec \"$@\" 2>&9 3>&- 9>&-); s=$?; times >&3; exit $s";

std::vector<std::string> bwrap_argv(const SandboxSpec& spec, bool nested_userns) {
  const SandboxLimits& l = spec.limits;
  const std::string disk = std::to_string(l.disk_mb << 20);
  std::vector<std::string> a = {spec.bwrap, "--unshare-all", "--unshare-user"};
  if (!nested_userns) a.push_back("--disable-userns");
  a.insert(a.end(), {"--uid", "65534", "--gid", "65534", "--hostname", "sandbox", "--die-with-parent", "--new-session",
                     "--cap-drop", "ALL", "--clearenv"});
  for (const auto& [k, v] : sandbox_environment(spec)) a.insert(a.end(), {"--setenv", k, v});
  const auto& sys = system_view_args();
  a.insert(a.end(), sys.begin(), sys.end());
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--size", disk, "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
                     "--size", disk, "--tmpfs", "/tmp", "--size", disk, "--tmpfs", "/work"});
  if (!spec.export_dir.empty()) a.insert(a.end(), {"--bind", spec.export_dir, "/out"});
  std::vector<std::string> dirs;
  for (size_t i = 0; i < spec.files.size(); ++i) {
    const auto& f = spec.files[i];
    for (size_t s = f.path.find('/'); s != std::string::npos; s = f.path.find('/', s + 1)) {
      std::string dir = "/work/" + f.path.substr(0, s);
      if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) {
        dirs.push_back(dir);
        a.insert(a.end(), {"--dir", dir});
      }
    }
    a.insert(a.end(), {"--perms", f.executable ? "0755" : "0644", "--file", std::to_string(kFirstFileFd + i),
                       "/work/" + f.path});
  }
  int64_t cpu_s = (l.cpu_ms + 999) / 1000;
  a.insert(a.end(), {"--info-fd", std::to_string(kInfoFd), "--remount-ro", "/", "--chdir", "/work", "/usr/bin/prlimit",
                     "--cpu=" + std::to_string(cpu_s) + ":" + std::to_string(cpu_s + 1),
                     "--as=" + std::to_string(l.memory_mb << 20), "--fsize=" + std::to_string(l.disk_mb << 20),
                     "--nproc=" + std::to_string(l.processes), "--nofile=" + std::to_string(l.open_files), "--core=0",
                     "--", "/bin/sh", "-c", kPrologue, "sh"});
  a.insert(a.end(), spec.argv.begin(), spec.argv.end());
  return a;
}

// The children's CPU time from the shell's `times` output ("0m0.01s 0m0.00s\n0m1.20s 0m0.04s\n":
// the shell's user and system time, then its children's); 0 when absent.
int64_t parse_times_children_ms(const std::string& text) {
  size_t nl = text.find('\n');
  if (nl == std::string::npos) return 0;
  double total_s = 0;
  int fields = 0;
  size_t pos = nl + 1;
  while (fields < 2 && pos < text.size()) {
    size_t m = text.find('m', pos), s = text.find('s', pos);
    if (m == std::string::npos || s == std::string::npos || s < m) break;
    try {
      total_s += std::stod(text.substr(pos, m - pos)) * 60 + std::stod(text.substr(m + 1, s - m - 1));
    } catch (const std::exception&) {
      return 0;
    }
    ++fields;
    pos = s + 2;
  }
  return fields == 2 ? static_cast<int64_t>(std::llround(total_s * 1000)) : 0;
}

// Async-signal-safe error exit for the forked child.
[[noreturn]] void child_fail(const char* what) {
  char msg[160] = "grpo sandbox: ";
  std::strncat(msg, what, 100);
  std::strncat(msg, " failed\n", 10);
  ssize_t ignored = ::write(2, msg, std::strlen(msg));
  (void)ignored;
  ::_exit(127);
}

}  // namespace

Fd memfd_with(const char* name, const std::string& content) {
  Fd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) throw std::runtime_error(std::string("memfd_create: ") + std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(std::string("memfd write: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  ::lseek(fd.get(), 0, SEEK_SET);
  ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  return fd;
}

Fd stdin_source(const std::string& data) {
  int p[2];
  if (data.size() <= (1u << 20) && ::pipe2(p, O_CLOEXEC) == 0) {
    Fd r(p[0]), w(p[1]);
    int capacity = ::fcntl(w.get(), F_GETPIPE_SZ);
    if (capacity < static_cast<int>(data.size()))
      capacity = ::fcntl(w.get(), F_SETPIPE_SZ, static_cast<int>(data.size()));
    if (capacity >= static_cast<int>(data.size())) {
      size_t done = 0;
      while (done < data.size()) {
        ssize_t n = ::write(w.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      if (done == data.size()) return r;
    }
  }
  return memfd_with("stdin", data);
}

void CappedStream::read_available() {
  if (!fd || eof) return;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0) {
      size_t room = static_cast<size_t>(std::max<int64_t>(0, cap - static_cast<int64_t>(data.size())));
      if (static_cast<size_t>(n) > room) truncated = true;
      data.append(buf, std::min(static_cast<size_t>(n), room));
      if (truncated) return;
    } else if (n == 0) {
      eof = true;
      fd.reset();
      return;
    } else if (errno != EINTR) {
      if (errno != EAGAIN) {
        eof = true;
        fd.reset();
      }
      return;
    }
  }
}

void classify(const ExitFacts& f, const SandboxLimits& limits, SandboxResult& r) {
  r.exit_code = f.exit_code;
  r.signal = f.signal;
  r.cpu_ms = f.cpu_ms;
  auto said = [&](const char* text) { return r.stderr_data.find(text) != std::string::npos; };
  int64_t cpu_limit_ms = (limits.cpu_ms + 999) / 1000 * 1000;
  if (f.output_overflow) {
    r.verdict = Verdict::output_limit;
    r.detail = std::string(r.stdout_truncated ? "stdout" : "stderr") + " exceeded " +
               std::to_string(limits.output_bytes) + " bytes";
  } else if (f.wall_timeout) {
    r.verdict = Verdict::timeout;
    r.detail = "wall time limit of " + std::to_string(limits.wall_ms) + " ms";
  } else if (f.signal == SIGXCPU || (f.signal == SIGKILL && f.cpu_ms >= cpu_limit_ms)) {
    r.verdict = Verdict::timeout;
    r.detail = "CPU time limit of " + std::to_string(limits.cpu_ms) + " ms";
  } else if (f.exit_code == 0) {
    r.verdict = Verdict::ok;
  } else if (f.signal == SIGXFSZ || said("File too large") || said("No space left on device")) {
    r.verdict = Verdict::disk_limit;
    r.detail = "disk limit of " + std::to_string(limits.disk_mb) + " MB";
  } else if (said("MemoryError") || said("std::bad_alloc") || said("Cannot allocate memory") || said("out of memory")) {
    r.verdict = Verdict::memory_limit;
    r.detail = "memory limit of " + std::to_string(limits.memory_mb) + " MB";
  } else if (f.signal == SIGKILL) {
    r.verdict = Verdict::killed;
    r.detail = "killed by SIGKILL";
  } else {
    r.verdict = Verdict::runtime_error;
    r.detail = f.signal
                   ? std::string("killed by signal ") + std::to_string(f.signal) + " (" + sigabbrev_np(f.signal) + ")"
                   : "exit status " + std::to_string(f.exit_code);
  }
}

SandboxProcess::SandboxProcess(const SandboxSpec& spec, const Options& options) {
  validate_spec(spec);
  out_.cap = spec.limits.output_bytes;
  err_.cap = spec.limits.output_bytes;

  // Everything the child needs is prepared before it starts.
  std::vector<std::string> args = bwrap_argv(spec, options.nested_userns);
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};

  int p[2];
  auto make_pipe = [&](Fd& parent_end, Fd& child_end, bool parent_reads) {
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    parent_end.reset(parent_reads ? p[0] : p[1]);
    child_end.reset(parent_reads ? p[1] : p[0]);
    set_nonblocking(parent_end.get());
  };
  Fd child_out, child_err, child_ready, child_info;
  make_pipe(out_.fd, child_out, true);
  make_pipe(err_.fd, child_err, true);
  make_pipe(ready_, child_ready, true);
  make_pipe(info_, child_info, true);
  Fd stdin_fd = stdin_source(spec.stdin_data);
  std::vector<Fd> file_fds;
  for (const auto& f : spec.files) file_fds.push_back(memfd_with("file", f.content));

  std::vector<std::pair<int, int>> moves = {{stdin_fd.get(), 0},
                                            {child_out.get(), 1},
                                            {child_err.get(), 2},
                                            {child_ready.get(), kReadyFd},
                                            {child_info.get(), kInfoFd}};
  if (options.control_fd >= 0) moves.push_back({options.control_fd, kControlFd});
  for (size_t i = 0; i < file_fds.size(); ++i) moves.push_back({file_fds[i].get(), kFirstFileFd + static_cast<int>(i)});
  int top = kFirstFileFd + static_cast<int>(file_fds.size());  // first fd the child closes

  const bool drop_root = ::geteuid() == 0;
  const uid_t uid = spec.host_uid;
  if (drop_root && !spec.export_dir.empty() && ::chown(spec.export_dir.c_str(), uid, uid) != 0)
    throw std::runtime_error("chown " + spec.export_dir + ": " + std::strerror(errno));

  // vfork: the child borrows this process's memory until it execs, so starting a sandbox costs the
  // same in a small test as in a large server. It may only make raw system calls on prepared data.
  // Signals stay blocked until the child has reset every handler: none of this process's handlers
  // may run on the borrowed memory.
  std::vector<int> tmp(moves.size());
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_ = ::vfork();
  if (pid_ == 0) {
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    ::setpgid(0, 0);
    for (size_t i = 0; i < moves.size(); ++i)
      if ((tmp[i] = ::fcntl(moves[i].first, F_DUPFD, top)) < 0) child_fail("fcntl");
    for (size_t i = 0; i < moves.size(); ++i)
      if (::dup2(tmp[i], moves[i].second) < 0) child_fail("dup2");
    for (int fd = 0; fd < top; ++fd) {
      bool used = std::any_of(moves.begin(), moves.end(), [&](auto& m) { return m.second == fd; });
      if (!used) ::close(fd);
    }
    if (::syscall(SYS_close_range, top, ~0U, 0) != 0)
      for (int fd = top; fd < 65536; ++fd) ::close(fd);
    if (drop_root) {
      if (::syscall(SYS_setgroups, 0, nullptr) != 0) child_fail("setgroups");
      if (::syscall(SYS_setresgid, uid, uid, uid) != 0) child_fail("setresgid");
      if (::syscall(SYS_setresuid, uid, uid, uid) != 0) child_fail("setresuid");
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::execve(argv[0], argv.data(), envp);
    child_fail("execve of bwrap");
  }
  int vfork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid_ < 0) throw std::runtime_error(std::string("vfork: ") + std::strerror(vfork_errno));
  pidfd_.reset(sys_pidfd_open(pid_));
}

SandboxProcess::~SandboxProcess() { finish(); }

void SandboxProcess::read_setup_pipes() {
  char buf[512];
  while (ready_) {
    ssize_t n = ::read(ready_.get(), buf, sizeof buf);
    if (n > 0) {
      if (ready_text_.size() < 1024) ready_text_.append(buf, static_cast<size_t>(n));
      started_ = !ready_text_.empty() && ready_text_[0] == 'R';
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      if (n == 0 || errno != EAGAIN) ready_.reset();
      break;
    }
  }
  while (info_ && !init_pidfd_) {
    ssize_t n = ::read(info_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0 || errno != EAGAIN) info_.reset();
      break;
    }
    if (info_text_.size() < 4096) info_text_.append(buf, static_cast<size_t>(n));
    // bwrap writes {"child-pid": N, ...} as soon as the namespace init exists.
    size_t k = info_text_.find("\"child-pid\":");
    if (k == std::string::npos) continue;
    size_t d = info_text_.find_first_of("0123456789", k);
    size_t e = d == std::string::npos ? d : info_text_.find_first_not_of("0123456789", d);
    if (e == std::string::npos || e - d > 9) continue;
    pid_t init = static_cast<pid_t>(std::stol(info_text_.substr(d, e - d)));
    init_pidfd_.reset(sys_pidfd_open(init));
    info_.reset();
  }
}

void SandboxProcess::reap(int options) {
  if (exited_) return;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, options);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return;
  exited_ = true;
  wait_status_ = status;
  read_setup_pipes();
  cpu_ms_ = parse_times_children_ms(ready_text_);
}

bool SandboxProcess::poll_exit() {
  read_setup_pipes();
  reap(WNOHANG);
  return exited_;
}

void SandboxProcess::kill() {
  read_setup_pipes();
  if (!init_pidfd_ && !exited_ && info_) {
    // Killed during setup: bwrap names the init right after creating it; wait briefly for that.
    if (wait_readable(info_.get(), 1000)) read_setup_pipes();
  }
  if (init_pidfd_) sys_pidfd_kill(init_pidfd_.get());
  if (!exited_) ::kill(-pid_, SIGKILL);  // bwrap itself; its init follows by parent-death signal
}

void SandboxProcess::finish() {
  if (pid_ <= 0) return;
  if (!exited_) {
    kill();
    if (pidfd_) wait_readable(pidfd_.get(), 5000);
    reap(0);
  }
  // Anything the program left behind (daemons) dies with the namespace init; wait until it has.
  read_setup_pipes();
  if (init_pidfd_) {
    sys_pidfd_kill(init_pidfd_.get());
    wait_readable(init_pidfd_.get(), 5000);
    init_pidfd_.reset();
  }
  pid_ = -1;
}

}  // namespace grpo::reward
