# The warm Python interpreter behind reward/code/python_pool.h. It runs inside a bubblewrap sandbox
# (its own user/PID/mount/network namespaces, read-only system, no capabilities there) and never
# runs untrusted code itself. For each job it forks:
#
#   C  (child)        new user, mount, PID, IPC, UTS and network namespaces; fresh size-limited
#                     tmpfs on /work, /tmp and /dev/shm; the job's files; stdio from the job
#   G  (pid 1 there)  mounts a /proc of the new PID namespace, forbids further user namespaces,
#                     reaps, and reports the job's wait status and CPU time; when it exits the
#                     kernel kills whatever the job left behind
#   J  (the job)      drops every capability, takes the rlimits, runs the script like `python3 main.py`
#
# so every job runs in a process of its own that no other job has touched. Protocol on fd 4 (a
# SOCK_SEQPACKET socket): the zygote sends {"ready": true} once warm; each request is one JSON
# message with file descriptors [stdin, stdout, stderr, file...] and gets one JSON reply
# {"status": wait_status, "cpu_ms": n} (the job's) or {"error": "..."} (its setup failed).
import ctypes
import gc
import json
import os
import socket
import sys

CONTROL_FD = 4
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 0x4000, 0x40000
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 4, 24, 47, 4
SANDBOX_UID = 65534

libc = ctypes.CDLL(None, use_errno=True)


def check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)


def mount_tmpfs(path, size, mode):
    options = ("size=%d,mode=%s" % (size, mode)).encode()
    check(libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options), "mount " + path)


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities():
    cap = 0
    while libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
    header = CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    check(libc.capset(ctypes.byref(header), (CapData * 2)()), "capset")


def set_limits(limits):
    import resource
    cpu_s = (limits["cpu_ms"] + 999) // 1000
    mb = 1 << 20
    for which, soft, hard in [
            (resource.RLIMIT_CPU, cpu_s, cpu_s + 1),
            (resource.RLIMIT_AS, limits["memory_mb"] * mb, limits["memory_mb"] * mb),
            (resource.RLIMIT_FSIZE, limits["disk_mb"] * mb, limits["disk_mb"] * mb),
            (resource.RLIMIT_NOFILE, limits["open_files"], limits["open_files"]),
            (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_NPROC, limits["processes"], limits["processes"])]:
        resource.setrlimit(which, (soft, hard))


def run_script(request):
    """In J: behave like `python3 main.py args` started afresh, then exit."""
    import atexit
    import importlib.machinery
    import io
    import random
    import threading
    import traceback
    import types
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                                                 encoding="utf-8")
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
                                                   encoding="utf-8")
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
                                                   encoding="utf-8", errors="backslashreplace",
                                                   line_buffering=True)
    os.environ.clear()
    os.environ.update(request["env"])
    script = os.path.join("/work", request["argv"][1])
    sys.argv = request["argv"][1:]
    sys.path[0] = os.path.dirname(script)
    random.seed()
    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__cached__ = None
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", script)
    sys.modules["__main__"] = main
    code = 0
    try:
        with open(script, "rb") as f:
            source = f.read()
        exec(compile(source, script, "exec"), main.__dict__)
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code & 0xFF
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException as e:
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next  # the frames of this file are not the program's
        traceback.print_exception(type(e), e, tb)
        code = 1
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        code = 120
    os._exit(code)


def report(fd, message):
    """One JSON line on the report pipe (an error line from any process wins over the status)."""
    os.write(fd, (json.dumps(message) + "\n").encode())


def job_init(request, report_fd):
    """G: pid 1 of the job's PID namespace."""
    check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount /proc")
    write_file("/proc/sys/user/max_user_namespaces", "0")
    job = os.fork()
    if job == 0:
        try:
            os.setsid()
            drop_capabilities()
            set_limits(request["limits"])
            check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")
        except BaseException as e:
            report(report_fd, {"error": "job setup: %s" % e})
            os._exit(1)
        os.close(report_fd)
        run_script(request)
    cpu = 0.0
    while True:
        pid, status, usage = os.wait4(-1, 0)
        cpu += usage.ru_utime + usage.ru_stime
        if pid == job:
            break
    report(report_fd, {"status": status, "cpu_ms": int(cpu * 1000)})
    os._exit(0)


def job_setup(request, fds, report_fd):
    """C: the job's namespaces, file system and stdio; then G."""
    limits = request["limits"]
    check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                       CLONE_NEWNET), "unshare")
    # The zygote is not dumpable (so no job can inspect it); its own /proc files need it for a moment.
    check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")
    write_file("/proc/self/setgroups", "deny")
    write_file("/proc/self/uid_map", "%d %d 1" % (SANDBOX_UID, SANDBOX_UID))
    write_file("/proc/self/gid_map", "%d %d 1" % (SANDBOX_UID, SANDBOX_UID))
    check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")
    check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    disk = limits["disk_mb"] << 20
    mount_tmpfs("/work", disk, "0755")
    mount_tmpfs("/tmp", disk, "1777")
    mount_tmpfs("/dev/shm", disk, "1777")
    check(libc.sethostname(b"sandbox", 7), "sethostname")
    stdin_fd, stdout_fd, stderr_fd = fds[:3]
    for spec, fd in zip(request["files"], fds[3:]):
        path = os.path.join("/work", spec["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with os.fdopen(fd, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
        os.chmod(path, spec["mode"])
    os.chdir("/work")
    for target, fd in ((0, stdin_fd), (1, stdout_fd), (2, stderr_fd)):
        os.dup2(fd, target)
    os.closerange(3, report_fd)
    os.closerange(report_fd + 1, 1 << 16)
    init = os.fork()
    if init == 0:
        job_init(request, report_fd)
    os.waitpid(init, 0)
    os._exit(0)


def serve(control):
    while True:
        message, fds, _, _ = socket.recv_fds(control, 1 << 16, 64)
        if not message:
            return
        request = json.loads(message)
        report_r, report_w = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                control.close()
                os.close(report_r)
                job_setup(request, fds, report_w)
            except BaseException as e:
                report(report_w, {"error": "job setup: %s" % e})
                os._exit(1)
        os.close(report_w)
        for fd in fds:
            os.close(fd)
        os.waitpid(child, 0)
        with os.fdopen(report_r, "rb") as r:
            lines = [json.loads(line) for line in r.read().splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line]
        reply = (errors or lines or [{"error": "the job reported nothing"}])[0]
        control.send(json.dumps(reply).encode())


def main():
    control = socket.socket(fileno=CONTROL_FD)
    check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")
    for name in json.loads(sys.argv[1]):  # warm the modules jobs are likely to import
        try:
            __import__(name)
        except ImportError:
            pass
    for name in ("atexit", "importlib.machinery", "io", "random", "resource", "threading", "traceback",
                 "types"):
        __import__(name)
    # Everything imported so far is shared copy-on-write with the jobs: keep the collector from
    # walking (and so copying) it in every job.
    gc.collect()
    gc.freeze()
    control.send(json.dumps({"ready": True}).encode())
    serve(control)


main()
