// The sandbox for untrusted code: what a normal program gets, and the attack suite. Every attack
// asserts a clear verdict and that a normal run in the same process still works afterwards.
// Python attacks run twice: in a fresh sandbox per run and in the warm zygote pool.
#include "reward/code/sandbox.h"

#include "reward/code/python_pool.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

using namespace grpo::reward;

namespace {

// Small enough that the attacks end fast; the wall limit is generous because CI machines are
// shared (tests of the wall limit set their own).
SandboxLimits small_limits() {
  SandboxLimits l;
  l.wall_ms = 20'000;
  l.cpu_ms = 3000;
  l.memory_mb = 512;
  l.output_bytes = 64 << 10;
  l.disk_mb = 16;
  l.processes = 32;
  return l;
}

enum class Mode { fresh, pool };

PythonPool& shared_pool() {
  static PythonPool pool({});
  return pool;
}

SandboxResult run_python(Mode mode, const std::string& code, SandboxLimits limits = small_limits(),
                         const std::string& stdin_data = "", const std::string& export_dir = "") {
  SandboxSpec spec;
  spec.argv = {"/usr/bin/python3", "main.py"};
  spec.files = {{"main.py", code}};
  spec.stdin_data = stdin_data;
  spec.limits = limits;
  spec.export_dir = export_dir;
  return mode == Mode::pool ? shared_pool().run(spec) : run_sandboxed(spec);
}

SandboxResult run_python(const std::string& code, SandboxLimits limits = small_limits(),
                         const std::string& stdin_data = "", const std::string& export_dir = "") {
  return run_python(Mode::fresh, code, limits, stdin_data, export_dir);
}

SandboxResult run_shell(const std::string& script, SandboxLimits limits = small_limits()) {
  SandboxSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.limits = limits;
  return run_sandboxed(spec);
}

std::string describe(const SandboxResult& r) {
  return std::string("verdict=") + verdict_name(r.verdict) + " exit=" + std::to_string(r.exit_code) +
         " signal=" + std::to_string(r.signal) + " detail=" + r.detail + "\nstdout=" + r.stdout_data.substr(0, 2000) +
         "\nstderr=" + r.stderr_data.substr(0, 2000);
}

// A normal program still runs correctly (called after every attack).
void expect_healthy(Mode mode = Mode::fresh) {
  SandboxResult r =
      run_python(mode, "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n", small_limits(), "40 2\n");
  EXPECT_EQ(r.verdict, Verdict::ok) << describe(r);
  EXPECT_EQ(r.stdout_data, "42\n");
}

std::string unique_token(const char* what) {
  std::random_device rd;
  return std::string("grpo_") + what + "_" + std::to_string(::getpid()) + "_" + std::to_string(rd());
}

// Host processes whose command line contains `token` (the attack's leftovers, if any).
int processes_with(const std::string& token) {
  int found = 0;
  DIR* d = ::opendir("/proc");
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmd.find(token) != std::string::npos) ++found;
  }
  ::closedir(d);
  return found;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string make_temp_dir() {
  char tmpl[] = "/tmp/grpo_sandbox_test_XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d ? d : "";
}

}  // namespace

// ---- what a normal program gets ----

TEST(Sandbox, RunsPythonWithStdinFilesAndCleanEnvironment) {
  SandboxSpec spec;
  spec.argv = {"/usr/bin/python3", "pkg/main.py", "arg1"};
  spec.files = {{"pkg/main.py",
                 "import os, sys\nfrom helper import twice\n"
                 "print(twice(int(input())), sys.argv[1], os.getcwd(), os.getuid())\n"
                 "print(sorted(os.environ))\nprint(os.environ['EXTRA'])\n"},
                {"pkg/helper.py", "def twice(x):\n    return 2 * x\n"}};
  spec.stdin_data = "21\n";
  spec.env = {{"EXTRA", "yes"}};
  spec.limits = small_limits();
  SandboxResult r = run_sandboxed(spec);
  ASSERT_EQ(r.verdict, Verdict::ok) << describe(r);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_data,
            "42 arg1 /work 65534\n"
            "['EXTRA', 'HOME', 'LANG', 'PATH', 'PWD', 'PYTHONDONTWRITEBYTECODE', 'TMPDIR']\nyes\n");
  EXPECT_FALSE(r.stdout_truncated);
  EXPECT_GE(r.wall_ms, 0);
}

TEST(Sandbox, ReportsExitCodesSignalsAndExceptions) {
  SandboxResult r = run_python("import sys\nsys.exit(3)\n");
  EXPECT_EQ(r.verdict, Verdict::runtime_error) << describe(r);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.detail, "exit status 3");

  r = run_python("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n");
  EXPECT_EQ(r.verdict, Verdict::runtime_error) << describe(r);
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_EQ(r.detail, "killed by signal 11 (SEGV)");

  r = run_python("def f(x):\n    return 1 / x\nf(0)\n");
  EXPECT_EQ(r.verdict, Verdict::runtime_error) << describe(r);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.stderr_data.find("ZeroDivisionError"), std::string::npos);
  expect_healthy();
}

TEST(Sandbox, CountsCpuTime) {
  SandboxResult r = run_python("x = 0\nfor i in range(10**7):\n    x += i\nprint(x)\n");
  ASSERT_EQ(r.verdict, Verdict::ok) << describe(r);
  EXPECT_GT(r.cpu_ms, 50);
  EXPECT_GE(r.wall_ms, r.cpu_ms / 2);
}

TEST(Sandbox, ExportDirKeepsFilesOfTrustedTools) {
  std::string dir = make_temp_dir();
  SandboxSpec spec;
  spec.argv = {"/bin/sh", "-c", "echo built > /out/result.txt"};
  spec.export_dir = dir;
  SandboxResult r = run_sandboxed(spec);
  ASSERT_EQ(r.verdict, Verdict::ok) << describe(r);
  std::ifstream f(dir + "/result.txt");
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "built");
  std::remove((dir + "/result.txt").c_str());
  ::rmdir(dir.c_str());
}

TEST(Sandbox, RejectsMalformedSpecs) {
  SandboxSpec spec;
  EXPECT_THROW(run_sandboxed(spec), grpo::InputError);
  spec.argv = {"python3"};
  EXPECT_THROW(run_sandboxed(spec), grpo::InputError);
  spec.argv = {"/usr/bin/python3"};
  spec.files = {{"../escape.py", ""}};
  EXPECT_THROW(run_sandboxed(spec), grpo::InputError);
  spec.files = {{"/abs.py", ""}};
  EXPECT_THROW(run_sandboxed(spec), grpo::InputError);
  spec.files = {};
  spec.limits.wall_ms = 0;
  try {
    run_sandboxed(spec);
    FAIL() << "no error for wall_ms = 0";
  } catch (const grpo::InputError& e) {
    EXPECT_STREQ(e.what(), "sandbox spec: limits.wall_ms must be in 1..2^40, got 0");
  }
}

TEST(Sandbox, MissingBubblewrapIsASandboxError) {
  SandboxSpec spec;
  spec.argv = {"/bin/true"};
  spec.bwrap = "/nonexistent/bwrap";
  SandboxResult r = run_sandboxed(spec);
  EXPECT_EQ(r.verdict, Verdict::sandbox_error) << describe(r);
  EXPECT_NE(r.detail.find("execve of bwrap"), std::string::npos) << r.detail;
  expect_healthy();
}

TEST(Sandbox, ConcurrentRunsAreIndependent) {
  std::vector<std::thread> threads;
  std::vector<SandboxResult> results(6);
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&, i] {
      results[i] = run_python("import os\nprint(len(os.listdir('.')), input())\n", small_limits(), std::to_string(i));
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(results[i].verdict, Verdict::ok) << describe(results[i]);
    EXPECT_EQ(results[i].stdout_data, "1 " + std::to_string(i) + "\n");
  }
}

// ---- attacks ----

class PythonAttack : public ::testing::TestWithParam<Mode> {};
INSTANTIATE_TEST_SUITE_P(FreshAndPool, PythonAttack, ::testing::Values(Mode::fresh, Mode::pool),
                         [](const auto& info) { return info.param == Mode::pool ? "pool" : "fresh"; });

TEST_P(PythonAttack, ForkBombIsContainedByTheProcessLimit) {
  const Mode mode = GetParam();
  // Counts how many processes it can make before fork fails; the children sleep meanwhile.
  const std::string token = unique_token("forkcount");
  SandboxResult r = run_python(mode,
                               "import os, sys, time\nn = 0\ntry:\n    for i in range(10000):\n"
                               "        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n"
                               "        n += 1\nexcept OSError as e:\n    print('fork failed after', n, e.errno)\n"
                               "sys.stdout.flush()\n# " +
                                   token + "\n");
  EXPECT_EQ(r.verdict, Verdict::ok) << describe(r);
  EXPECT_NE(r.stdout_data.find("fork failed after"), std::string::npos) << describe(r);
  int forked = std::atoi(r.stdout_data.c_str() + std::string("fork failed after ").size());
  EXPECT_GT(forked, 0);
  EXPECT_LT(forked, small_limits().processes);
  EXPECT_LT(r.wall_ms, 25'000) << "the run waited for the sleeping children";
  EXPECT_EQ(processes_with(token), 0);
  expect_healthy(mode);
}

TEST(SandboxAttack, ClassicShellForkBombEndsAtTheDeadline) {
  const std::string token = unique_token("bomb");
  SandboxLimits l = small_limits();
  l.wall_ms = 2000;
  SandboxResult r = run_shell("b() { b | b & }; b; sleep 100 # " + token, l);
  EXPECT_TRUE(r.verdict == Verdict::timeout || r.verdict == Verdict::ok) << describe(r);
  EXPECT_LT(r.wall_ms, 60'000) << "the run waited for the bomb's sleep";
  EXPECT_EQ(processes_with(token), 0);
  expect_healthy();
}

TEST_P(PythonAttack, MemoryBombHitsTheMemoryLimit) {
  const Mode mode = GetParam();
  SandboxResult r = run_python(mode, "x = bytearray(10 * 2**30)\nprint(len(x))\n");
  EXPECT_EQ(r.verdict, Verdict::memory_limit) << describe(r);
  EXPECT_EQ(r.detail, "memory limit of 512 MB");
  r = run_python(mode, "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 2**20))\n");
  EXPECT_EQ(r.verdict, Verdict::memory_limit) << describe(r);
  expect_healthy(mode);
}

TEST_P(PythonAttack, InfiniteLoopHitsTheCpuLimit) {
  const Mode mode = GetParam();
  SandboxLimits l = small_limits();
  l.cpu_ms = 1000;
  l.wall_ms = 60'000;
  SandboxResult r = run_python(mode, "while True:\n    pass\n", l);
  EXPECT_EQ(r.verdict, Verdict::timeout) << describe(r);
  EXPECT_EQ(r.detail, "CPU time limit of 1000 ms");
  // Reported CPU time comes from rusage, which the kernel splits by tick samples: close to, not
  // exactly, the 1 s at which RLIMIT_CPU fired.
  EXPECT_GE(r.cpu_ms, 500) << describe(r);
  expect_healthy(mode);
}

TEST_P(PythonAttack, SleepingForeverHitsTheWallLimit) {
  const Mode mode = GetParam();
  SandboxLimits l = small_limits();
  l.wall_ms = 1000;
  SandboxResult r = run_python(mode, "import time\ntime.sleep(10**6)\n", l);
  EXPECT_EQ(r.verdict, Verdict::timeout) << describe(r);
  EXPECT_EQ(r.detail, "wall time limit of 1000 ms");
  EXPECT_GE(r.wall_ms, 1000);
  EXPECT_LT(r.wall_ms, 60'000) << "the sleeper was not stopped at the deadline";
  expect_healthy(mode);
}

TEST_P(PythonAttack, CannotWriteOutsideItsDirectory) {
  const Mode mode = GetParam();
  const std::string token = unique_token("written");
  const char* home = std::getenv("HOME");
  std::vector<std::string> targets = {"/etc/" + token,    "/usr/" + token,
                                      "/" + token,        "/tmp/" + token,
                                      "/dev/" + token,    std::string(home ? home : "/root") + "/" + token,
                                      "/work/../" + token};
  std::string code = "import os\nfor p in ";
  code += "[";
  for (auto& t : targets) code += "'" + t + "',";
  code +=
      "]:\n    try:\n        open(p, 'w').write('x')\n        print('wrote', p)\n"
      "    except OSError as e:\n        print('denied', p, e.errno)\n";
  SandboxResult r = run_python(mode, code);
  ASSERT_EQ(r.verdict, Verdict::ok) << describe(r);
  for (auto& t : targets) EXPECT_FALSE(exists(t)) << t << " was created on the host\n" << describe(r);
  // Only its own tmpfs /tmp took the write; everything else was refused.
  EXPECT_NE(r.stdout_data.find("wrote /tmp/" + token), std::string::npos) << describe(r);
  EXPECT_NE(r.stdout_data.find("denied /etc/" + token), std::string::npos) << describe(r);
  EXPECT_NE(r.stdout_data.find("denied /usr/" + token), std::string::npos) << describe(r);
  expect_healthy(mode);
}

TEST_P(PythonAttack, CannotReadSecretsOrTheServersEnvironment) {
  const Mode mode = GetParam();
  const std::string secret = unique_token("secret");
  ::setenv("GRPO_TEST_SECRET", secret.c_str(), 1);
  SandboxResult r = run_python(mode,
                               "import os\nprint(dict(os.environ))\n"
                               "for p in ['/etc/shadow', '/etc/passwd', '/root/.bash_history', '/proc/1/environ',\n"
                               "          '/proc/self/environ', '/proc/%d/environ' % os.getppid()]:\n"
                               "    try:\n        print(p, open(p, 'rb').read())\n"
                               "    except OSError as e:\n        print('denied', p, e.errno)\n"
                               "print(sorted(int(d) for d in os.listdir('/proc') if d.isdigit()))\n");
  ::unsetenv("GRPO_TEST_SECRET");
  ASSERT_EQ(r.verdict, Verdict::ok) << describe(r);
  EXPECT_EQ(r.stdout_data.find(secret), std::string::npos) << describe(r);
  EXPECT_NE(r.stdout_data.find("denied /etc/shadow 2"), std::string::npos) << describe(r);
  EXPECT_NE(r.stdout_data.find("denied /root/.bash_history 2"), std::string::npos) << describe(r);
  // Its own PID namespace: only the namespace init, (fresh: the sandbox's shell) and itself.
  EXPECT_NE(r.stdout_data.find(mode == Mode::pool ? "[1, 2]" : "[1, 2, 3]"), std::string::npos) << describe(r);
  expect_healthy(mode);
}

TEST_P(PythonAttack, HasNoNetwork) {
  const Mode mode = GetParam();
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 8), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);

  SandboxResult r = run_python(mode, "import socket\nfor host, port in [('127.0.0.1', " + std::to_string(port) +
                                         "), ('1.1.1.1', 53), ('8.8.8.8', 443)]:\n"
                                         "    try:\n        socket.create_connection((host, port), timeout=2)\n"
                                         "        print('connected', host)\n"
                                         "    except OSError as e:\n        print('refused', host, e.errno)\n"
                                         "try:\n    print('resolved', socket.getaddrinfo('example.com', 80))\n"
                                         "except OSError as e:\n    print('no dns', e.errno)\n");
  ASSERT_EQ(r.verdict, Verdict::ok) << describe(r);
  EXPECT_EQ(r.stdout_data.find("connected"), std::string::npos) << describe(r);
  EXPECT_NE(r.stdout_data.find("refused 127.0.0.1"), std::string::npos) << describe(r);
  EXPECT_NE(r.stdout_data.find("no dns"), std::string::npos) << describe(r);
  // Nothing arrived at the host's listener.
  int conn = ::accept(listener, nullptr, nullptr);
  EXPECT_LT(conn, 0);
  EXPECT_EQ(errno, EAGAIN);
  ::close(listener);
  expect_healthy(mode);
}

TEST_P(PythonAttack, CannotKillItsParentOrHostProcesses) {
  const Mode mode = GetParam();
  // A host process running as the sandbox's host user: kill(-1) inside must not reach it.
  pid_t bystander = ::fork();
  if (bystander == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(1);
    ::execl("/bin/sleep", "sleep", "30", nullptr);
    ::_exit(1);
  }
  ::usleep(100 * 1000);
  // Fresh: its parent is the sandbox's shell, whose death ends the run (verdict killed). Pool: its
  // parent is the namespace init, which ignores the signal. Either way only the sandbox is hit.
  SandboxResult r =
      run_python(mode,
                 "import os, signal\nfor pid in [os.getppid(), 1, -1]:\n"
                 "    try:\n        os.kill(pid, signal.SIGKILL)\n        print('sent', pid, flush=True)\n"
                 "    except OSError as e:\n        print('failed', pid, e.errno)\n"
                 "print('still here')\n");
  if (mode == Mode::pool) {
    EXPECT_EQ(r.verdict, Verdict::ok) << describe(r);
    EXPECT_NE(r.stdout_data.find("still here"), std::string::npos) << describe(r);
  } else {
    EXPECT_EQ(r.verdict, Verdict::killed) << describe(r);
  }
  int status = 0;
  EXPECT_EQ(::waitpid(bystander, &status, WNOHANG), 0) << "the host process was killed";
  ::kill(bystander, SIGKILL);
  ::waitpid(bystander, &status, 0);
  expect_healthy(mode);
}

TEST(SandboxAttack, DaemonsDieWithTheRun) {
  // The daemon would write a marker to a host-visible dir 4 s after the program returned.
  std::string dir = make_temp_dir();
  const std::string token = unique_token("daemon");
  SandboxResult r = run_python(
      "import os, sys, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
      "        time.sleep(4)\n        open('/out/marker', 'w').write('alive')\n"
      "        time.sleep(60)\n    os._exit(0)\nprint('parent done')\n# " +
          token + "\n",
      small_limits(), "", dir);
  EXPECT_EQ(r.verdict, Verdict::ok) << describe(r);
  EXPECT_LT(r.wall_ms, 30'000) << "the run waited for the daemon";
  EXPECT_EQ(processes_with(token), 0) << "a daemon survived the run";
  std::this_thread::sleep_for(std::chrono::milliseconds(5000));
  EXPECT_FALSE(exists(dir + "/marker")) << "the daemon ran on after the run";
  EXPECT_EQ(processes_with(token), 0);
  std::remove((dir + "/marker").c_str());
  ::rmdir(dir.c_str());
  expect_healthy();
}

TEST_P(PythonAttack, OutputFloodHitsTheOutputLimit) {
  const Mode mode = GetParam();
  SandboxResult r = run_python(mode, "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n");
  EXPECT_EQ(r.verdict, Verdict::output_limit) << describe(r);
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(r.stdout_data.size(), static_cast<size_t>(small_limits().output_bytes));
  EXPECT_EQ(r.detail, "stdout exceeded 65536 bytes");
  r = run_python(mode, "import sys\nwhile True:\n    sys.stderr.write('e' * 1000)\n");
  EXPECT_EQ(r.verdict, Verdict::output_limit) << describe(r);
  EXPECT_TRUE(r.stderr_truncated);
  EXPECT_EQ(r.stderr_data.size(), static_cast<size_t>(small_limits().output_bytes));
  expect_healthy(mode);
}

TEST_P(PythonAttack, FillingTheDiskHitsTheDiskLimit) {
  const Mode mode = GetParam();
  // One 10 GB file: stopped by the file-size limit.
  SandboxResult r = run_python(mode,
                               "with open('big', 'wb') as f:\n    for i in range(10 * 1024):\n"
                               "        f.write(b'x' * 2**20)\n");
  EXPECT_EQ(r.verdict, Verdict::disk_limit) << describe(r);
  EXPECT_EQ(r.detail, "disk limit of 16 MB");
  // Many smaller files: stopped by the size of the tmpfs.
  r = run_python(mode,
                 "for i in range(10000):\n    with open('/tmp/f%d' % i, 'wb') as f:\n"
                 "        f.write(b'x' * 2**20)\n");
  EXPECT_EQ(r.verdict, Verdict::disk_limit) << describe(r);
  EXPECT_NE(r.stderr_data.find("No space left on device"), std::string::npos) << describe(r);
  expect_healthy(mode);
}

TEST_P(PythonAttack, CannotCreateNamespacesOrGainCapabilities) {
  const Mode mode = GetParam();
  SandboxResult r = run_python(mode,
                               "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                               "for name, flag in [('user', 0x10000000), ('mount', 0x20000), ('net', 0x40000000)]:\n"
                               "    ok = libc.unshare(flag) == 0\n"
                               "    print(name, 'created' if ok else 'denied')\n"
                               "print([l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1])\n"
                               "ok = libc.mount(b'tmpfs', b'/work', b'tmpfs', 0, b'size=100g') == 0\n"
                               "print('mount', 'created' if ok else 'denied')\n");
  ASSERT_EQ(r.verdict, Verdict::ok) << describe(r);
  EXPECT_EQ(r.stdout_data, "user denied\nmount denied\nnet denied\n0000000000000000\nmount denied\n");
  expect_healthy(mode);
}

TEST(SandboxAttack, DaemonsDieWithTheJobInThePool) {
  const std::string token = unique_token("pooldaemon");
  PythonPool pool({1});  // one zygote: the next job is served by the same zygote
  auto run = [&](const std::string& code) {
    SandboxSpec spec;
    spec.argv = {"/usr/bin/python3", "main.py"};
    spec.files = {{"main.py", code}};
    spec.limits = small_limits();
    return pool.run(spec);
  };
  SandboxResult r =
      run("import os, time\nopen('/tmp/left', 'w').write('x')\nopen('/work/left', 'w').write('x')\n"
          "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n"
          "    os._exit(0)\nprint('parent done')\n# " +
          token + "\n");
  EXPECT_EQ(r.verdict, Verdict::ok) << describe(r);
  EXPECT_LT(r.wall_ms, 30'000) << "the job waited for its daemon";
  EXPECT_EQ(processes_with(token), 0) << "a daemon survived its job";
  // The next job sees nothing of the last one: no files, no processes.
  r =
      run("import os\nprint(os.path.exists('/tmp/left'), os.listdir('.'),\n"
          "      sorted(int(d) for d in os.listdir('/proc') if d.isdigit()))\n");
  EXPECT_EQ(r.verdict, Verdict::ok) << describe(r);
  EXPECT_EQ(r.stdout_data, "False ['main.py'] [1, 2]\n");
}

TEST(PythonPool, RunsLikeAFreshInterpreter) {
  const std::string code =
      "import sys, os\nprint(__name__, sys.argv, os.getcwd(), sorted(os.environ))\n"
      "print(input())\nimport atexit\natexit.register(lambda: print('atexit ran'))\n"
      "def f():\n    raise ValueError('boom')\nf()\n";
  SandboxResult fresh = run_python(Mode::fresh, code, small_limits(), "line\n");
  SandboxResult pooled = run_python(Mode::pool, code, small_limits(), "line\n");
  EXPECT_EQ(fresh.verdict, Verdict::runtime_error);
  EXPECT_EQ(pooled.verdict, Verdict::runtime_error);
  EXPECT_EQ(fresh.exit_code, 1);
  EXPECT_EQ(pooled.exit_code, 1);
  EXPECT_EQ(pooled.stdout_data, fresh.stdout_data);
  EXPECT_EQ(pooled.stderr_data, fresh.stderr_data);
  // sys.exit codes and syntax errors too.
  for (const std::string& c : {std::string("import sys\nsys.exit(7)\n"), std::string("def f(:\n")}) {
    fresh = run_python(Mode::fresh, c);
    pooled = run_python(Mode::pool, c);
    EXPECT_EQ(pooled.exit_code, fresh.exit_code) << c;
    EXPECT_EQ(pooled.stderr_data, fresh.stderr_data) << c;
  }
}

TEST(PythonPool, ServesMoreThreadsThanZygotes) {
  PythonPool pool({2});
  std::vector<std::thread> threads;
  std::vector<SandboxResult> results(6);
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&, i] {
      SandboxSpec spec;
      spec.argv = {"/usr/bin/python3", "main.py"};
      spec.files = {{"main.py", "print(int(input()) * 2)\n"}};
      spec.stdin_data = std::to_string(i);
      results[i] = pool.run(spec);
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(results[i].verdict, Verdict::ok) << describe(results[i]);
    EXPECT_EQ(results[i].stdout_data, std::to_string(2 * i) + "\n");
  }
}
