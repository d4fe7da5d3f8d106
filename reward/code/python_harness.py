# The trusted side of the code verifier's Python harness (reward/code/harness.h): the module
# grpo_code_harness (warm in the pool's zygotes); main() runs in the working dir, beside
# solution.py (the answer's code) and tests.json ({"token", "setup", "tests"}), as two processes:
#
#   T (this one)  first makes itself non-dumpable (no ptrace, no /proc/T/mem or /proc/T/fd for
#                 anyone else), opens tests.json and unlinks it, keeps a private copy of stdout for
#                 its verdict lines and points fd 1 at stderr, then forks C and only after that
#                 reads the tests. It runs `setup` and each test in its own interpreter, where the
#                 solution's names are proxies (Remote): calling one is a request to C.
#   C (solution)  closes all of T's descriptors, runs solution.py as __main__, reports its globals,
#                 then answers T's requests on a pipe pair until T closes it.
#
# Requests and replies are JSON lines of builtin data (int, float, complex, str, bytes, bool, None,
# list, tuple, dict, set, frozenset, Counter, OrderedDict, defaultdict, deque) and handles to C's
# other objects; a call's reply also carries what it left in its list, dict, set and bytearray
# arguments, which T copies into its own (as an in-place change would). T decodes replies strictly
# into fresh builtin values or Remote handles; a handle equals only itself or another handle C
# calls equal, so a custom __eq__, patched builtins or stdout, gc scans or reading files in C
# cannot make a comparison in T true: the tests, the token and the comparisons never exist in C's
# process. A global of C named like a builtin or a standard module does not stand in for it in
# the tests (a solution's own `abs` or `math`) unless it is all the tests use of the solution
# (see bind()).
#
# Verdict lines (T's stdout only): "<token> solution <line> <what>" (the solution did not load),
# "<token> setup <line> <what>", "<token> <k> ok", "<token> <k> fail <line> <what>",
# "<token> done".
import ast
import builtins
import collections
import ctypes
import importlib
import json
import os
import signal
import sys
import traceback
import types

KINDS = {"Counter": collections.Counter, "OrderedDict": collections.OrderedDict,
         "defaultdict": collections.defaultdict, "deque": collections.deque}
TYPES = {t.__name__: t for t in (int, float, complex, str, bytes, bytearray, bool, list, tuple, dict, set,
                                 frozenset, type(None))}


def encode(v, handle_of):
    """v as JSON: builtin data by value, anything else as {"h": handle_of(v)}."""
    t = type(v)
    if v is None or t is bool or t is int or t is float or t is str:
        return v
    if t is list:
        return [encode(x, handle_of) for x in v]
    if t is tuple or (isinstance(v, tuple) and hasattr(t, "_fields")):  # namedtuples as tuples
        return {"t": [encode(x, handle_of) for x in v]}
    if t is dict:
        return {"d": [[encode(k, handle_of), encode(x, handle_of)] for k, x in v.items()]}
    if t is set or t is frozenset:
        return {"s" if t is set else "f": [encode(x, handle_of) for x in v]}
    if t is bytes or t is bytearray:
        return {"b" if t is bytes else "y": v.hex()}
    if t is complex:
        return {"c": [v.real, v.imag]}
    if t is type and v.__name__ in TYPES and TYPES[v.__name__] is v:
        return {"T": v.__name__}
    for name, kind in KINDS.items():
        if t is kind:
            inner = list(v) if kind is collections.deque else dict(v)
            return {"k": [name, encode(inner, handle_of)]}
    return {"h": handle_of(v)}


def decode(j, handle):
    """Strict inverse of encode(): fresh builtin values, handles through handle(id)."""
    t = type(j)
    if j is None or t is bool or t is int or t is float or t is str:
        return j
    if t is list:
        return [decode(x, handle) for x in j]
    if t is not dict or len(j) != 1:
        raise ValueError("malformed value from the solution")
    (tag, v), = j.items()
    if tag in ("t", "s", "f", "d") and type(v) is not list:
        raise ValueError("malformed value from the solution")
    if tag == "t":
        return tuple(decode(x, handle) for x in v)
    if tag == "s":
        return set(decode(x, handle) for x in v)
    if tag == "f":
        return frozenset(decode(x, handle) for x in v)
    if tag == "d":
        return {decode(p[0], handle): decode(p[1], handle) for p in v if type(p) is list and len(p) == 2}
    if tag in ("b", "y") and type(v) is str:
        return (bytes if tag == "b" else bytearray).fromhex(v)
    if tag == "c" and type(v) is list and len(v) == 2 and all(type(x) in (int, float) for x in v):
        return complex(v[0], v[1])
    if tag == "k" and type(v) is list and len(v) == 2 and v[0] in KINDS:
        inner = decode(v[1], handle)
        return collections.defaultdict(None, inner) if v[0] == "defaultdict" else KINDS[v[0]](inner)
    if tag == "T" and type(v) is str and v in TYPES:
        return TYPES[v]
    if tag == "h" and type(v) is int:
        return handle(v)
    raise ValueError("malformed value from the solution")


MUTABLE = (list, dict, set, bytearray)


def update(mine, theirs):
    """Makes the argument `mine` hold `theirs`, in place."""
    if type(mine) is not type(theirs):
        raise ValueError("malformed argument from the solution")
    if type(mine) in (list, bytearray):
        mine[:] = theirs
    else:
        mine.clear()
        mine.update(theirs)


def describe(e):
    return traceback.format_exception_only(type(e), e)[-1].strip()


def line_in(e, filename):
    """The line of the innermost frame of e's traceback in `filename` (0 if none)."""
    if isinstance(e, SyntaxError) and e.filename == filename:
        return e.lineno or 0
    line, tb = 0, e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# ---- C: the solution's process ----

def serve_solution(path, requests, replies):
    objects = {}

    def handle_of(v):
        objects.setdefault(id(v), v)
        return id(v)

    def send(message):
        replies.write(json.dumps(message).encode() + b"\n")
        replies.flush()

    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    sys.argv = [path]
    try:
        with open(path, "rb") as f:
            exec(compile(f.read(), path, "exec"), main.__dict__)
    except BaseException as e:
        traceback.print_exc()
        send({"load_error": [line_in(e, path), describe(e)]})
        return
    names = {}
    for name, v in list(vars(main).items()):
        if name.startswith("__"):
            continue
        module, qualname = getattr(v, "__module__", None), getattr(v, "__qualname__", None)
        if isinstance(v, types.ModuleType):
            names[name] = {"m": v.__name__}
        elif type(module) is str and module != "__main__" and type(qualname) is str:
            names[name] = {"g": [module, qualname]}
        else:
            names[name] = encode(v, handle_of)
    send({"names": names})

    def arg(j):
        return decode(j, lambda i: objects[i])

    for line in requests:
        try:
            r = json.loads(line)
            op, target = r["op"], objects[r["id"]]
            if op == "call":
                args = arg(r["args"])
                out = target(*args, **arg(r["kwargs"]))
                after = [encode(a, handle_of) if type(a) in MUTABLE else None for a in args]
            elif op == "getattr":
                out = getattr(target, r["name"])
            elif op == "setattr":
                out = setattr(target, r["name"], arg(r["value"]))
            elif op == "getitem":
                out = target[arg(r["key"])]
            elif op == "list":
                out = list(target)
            elif op == "len":
                out = len(target)
            elif op == "str":
                out = str(target)
            elif op == "eq":
                out = bool(target == objects[r["other"]])
            else:
                raise ValueError("unknown request " + repr(op))
            reply = {"ok": encode(out, handle_of)}
            if op == "call":
                reply["args"] = after  # what the call left in its mutable arguments
        except BaseException as e:
            reply = {"error": [type(e).__name__, str(e)[:1000]]}
        send(reply)


# ---- T: the trusted side ----

class SolutionGone(RuntimeError):
    pass


class Channel:
    def __init__(self, child, requests, replies):
        self.child, self.requests, self.replies = child, requests, replies

    def gone(self):
        pid, status = os.waitpid(self.child, os.WNOHANG)
        if pid == 0:
            return SolutionGone("the solution's process stopped answering")
        what = ("exit status %d" % os.waitstatus_to_exitcode(status) if os.WIFEXITED(status)
                else "killed by signal %d" % os.WTERMSIG(status))
        return SolutionGone("the solution's process ended (%s)" % what)

    def receive(self):
        line = self.replies.readline()
        if not line:
            raise self.gone()
        return json.loads(line)

    def request(self, op, id, passed=(), **fields):
        try:
            self.requests.write(json.dumps(dict(fields, op=op, id=id)).encode() + b"\n")
            self.requests.flush()
        except (BrokenPipeError, ValueError):
            raise self.gone() from None
        reply = self.receive()
        if type(reply) is dict and "ok" in reply:
            after = reply.get("args")
            if type(after) is list and len(after) == len(passed):
                for mine, theirs in zip(passed, after):  # the call changed its arguments in place
                    if type(mine) in MUTABLE and theirs is not None:
                        update(mine, decode(theirs, Remote))
            return decode(reply["ok"], Remote)
        error = reply.get("error") if type(reply) is dict else None
        if type(error) is list and len(error) == 2 and all(type(x) is str for x in error):
            raise remote_exception(*error)
        raise ValueError("malformed reply from the solution")


CHANNEL = None


def remote_exception(name, message):
    """The builtin exception C named (a generic RuntimeError for any other)."""
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except Exception:
            pass
    return RuntimeError("%s: %s" % (name, message) if message else name)


def outgoing(v):
    def handle_of(x):
        raise TypeError("cannot pass a %s to the solution" % type(x).__name__)
    return encode(v, lambda x: x._id if type(x) is Remote else handle_of(x))


class Remote:
    """An object of the solution's process. Equal only to itself, or to another Remote C calls equal."""
    __slots__ = ("_id",)

    def __init__(self, id):
        object.__setattr__(self, "_id", id)

    def __call__(self, *args, **kwargs):
        return CHANNEL.request("call", self._id, args=outgoing(list(args)), kwargs=outgoing(kwargs), passed=args)

    def __getattr__(self, name):
        return CHANNEL.request("getattr", self._id, name=name)

    def __setattr__(self, name, value):
        CHANNEL.request("setattr", self._id, name=name, value=outgoing(value))

    def __getitem__(self, key):
        return CHANNEL.request("getitem", self._id, key=outgoing(key))

    def __iter__(self):
        return iter(CHANNEL.request("list", self._id))

    def __len__(self):
        n = CHANNEL.request("len", self._id)
        if type(n) is not int:
            raise TypeError("len() of a solution object is not an int")
        return n

    def __str__(self):
        s = CHANNEL.request("str", self._id)
        return s if type(s) is str else "<solution object>"

    def __repr__(self):
        return "<solution object>"

    def __eq__(self, other):
        if type(other) is not Remote:
            return NotImplemented
        return other._id == self._id or CHANNEL.request("eq", self._id, other=other._id) is True

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash(("Remote", self._id))


def shadows(name):
    return hasattr(builtins, name) or name.split(".")[0] in sys.stdlib_module_names


def stdlib(module, attr=None):
    """The standard library's `module` (and its `attr`), or None."""
    if type(module) is not str or module.split(".")[0] not in sys.stdlib_module_names:
        return None
    if module.split(".")[0] in ("this", "antigravity"):  # they act on import
        return None
    try:
        v = importlib.import_module(module)
        for part in (attr.split(".") if type(attr) is str else []):
            v = getattr(v, part)
        return v
    except Exception:
        return None


def bind(names, ns, used):
    """The solution's globals as T sees them. A name that shadows a builtin or a standard module
    is the solution's only when the tests use no other name of the solution (the tested function
    itself is called `sum`); otherwise the builtin stays and a module name is the real module."""
    if type(names) is not dict:
        raise ValueError("malformed names from the solution")
    own = {n for n in names if type(n) is str and not n.startswith("__")}
    may_shadow = not any(n in used and not shadows(n) for n in own)
    for name in own:
        j = names[name]
        ref = type(j) is dict and len(j) == 1 and type(j.get("m", j.get("g"))) in (str, list)
        if shadows(name) and not may_shadow:
            v = ns.get(name) if hasattr(builtins, name) else stdlib(name)
        elif ref and "m" in j:
            v = stdlib(j["m"])
        elif ref:
            v = stdlib(*(j["g"] + [None, None])[:2])
        else:
            ns[name] = decode(j, Remote)
            continue
        if v is not None:
            ns[name] = v


def names_in(sources):
    used = set()
    for source in sources:
        try:
            used.update(n.id for n in ast.walk(ast.parse(source)) if type(n) is ast.Name)
        except SyntaxError:
            pass
    return used


def main():
    global CHANNEL
    here = os.getcwd()
    tests = os.path.join(here, "tests.json")
    if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE 0
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE)")
    tests_fd = os.open(tests, os.O_RDONLY | os.O_CLOEXEC)
    os.unlink(tests)
    sys.stdout.flush()
    verdict_fd = os.dup(1)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    c_reads, t_writes = os.pipe()
    t_reads, c_writes = os.pipe()
    child = os.fork()
    if child == 0:
        for fd in (tests_fd, verdict_fd, t_writes, t_reads):
            os.close(fd)
        try:
            serve_solution(os.path.join(here, "solution.py"), os.fdopen(c_reads, "rb"), os.fdopen(c_writes, "wb"))
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(0)
    os.close(c_reads)
    os.close(c_writes)
    # T only from here: nothing of what follows is in C's memory.
    # No module from a directory C can write to: the sandbox's writable mounts are its working dir,
    # /tmp and /dev/shm (reward/code/sandbox.h); everything else there is read-only.
    writable = tuple(os.path.join(d, "") for d in (here, "/tmp", "/dev/shm"))
    sys.path[:] = [p for p in sys.path if p and not os.path.join(os.path.abspath(p), "").startswith(writable)]
    sys.set_int_max_str_digits(0)
    with os.fdopen(tests_fd, "rb") as f:
        spec = json.loads(f.read())
    token = spec["token"]

    def verdict(*fields):
        text = " ".join(str(x) for x in (token,) + fields)
        os.write(verdict_fd, (text.replace("\r", " ").replace("\n", " ")[:400] + "\n").encode())

    CHANNEL = Channel(child, os.fdopen(t_writes, "wb"), os.fdopen(t_reads, "rb"))
    ns = {"__name__": "__main__", "__builtins__": builtins}
    try:
        first = CHANNEL.receive()
        if type(first) is dict and "load_error" in first:
            line, what = (first["load_error"] + [0, ""])[:2]
            verdict("solution", line if type(line) is int else 0, str(what))
            raise SystemExit
        bind(first.get("names") if type(first) is dict else None, ns,
             names_in([spec["setup"]] + spec["tests"]))
    except SystemExit:
        pass
    except BaseException as e:
        verdict("solution", 0, describe(e))
    else:
        try:
            exec(compile(spec["setup"], "<setup>", "exec"), ns)
        except BaseException as e:
            traceback.print_exc()
            verdict("setup", line_in(e, "<setup>"), describe(e))
        else:
            for k, source in enumerate(spec["tests"], 1):
                name = "<test %d>" % k
                try:
                    exec(compile(source, name, "exec"), ns)
                except BaseException as e:
                    traceback.print_exc()
                    verdict(k, "fail", line_in(e, name), describe(e))
                else:
                    verdict(k, "ok")
    verdict("done")
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)



if __name__ == "__main__":
    main()
