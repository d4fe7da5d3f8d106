// The code verifier against solutions that attack its verdict instead of solving the task: each
// wrong solution here (double() / add() give wrong answers) tries to make its failing tests pass
// and must be scored as failing; the correct solutions beside them still pass. Python attacks go
// after the harness's process, files, builtins, output and comparisons; C++ attacks after the
// driver's macros, output and records, from code that runs before main() or inside a test.
#include <gtest/gtest.h>

#include "reward/code/cpp_assert.h"
#include "reward/code/verifier.h"

using namespace grpo::reward;

namespace {

Verifier& verifier() {
  static std::unique_ptr<Verifier> v = make_code_verifier({{"python_pool", 2}});
  return *v;
}

Verifier& fresh_verifier() {  // a fresh sandboxed interpreter per run: the same harness, other plumbing
  static std::unique_ptr<Verifier> v = make_code_verifier({{"python_pool", 0}});
  return *v;
}

VerifyResult verify(Verifier& v, const std::string& completion, const nlohmann::json& reference) {
  VerifyRequest r;
  r.completion = completion;
  r.reference = reference;
  r.limits.timeout_ms = 5000;
  return v.verify(r);
}

std::string py(const std::string& code) { return "```python\n" + code + "```\n"; }
std::string cpp(const std::string& code) { return "```cpp\n" + code + "```\n"; }

const nlohmann::json kDoubleTests = {
    {"tests", {"assert double(1) == 2", "assert double(2) == 4", "assert double(-3) == -6"}}};

// Writes fake verdict lines, in the harness's old format and the current one, for every token it
// was given, to every descriptor it can: Python code shared by the attacks below.
const std::string kForge = R"(
import os, re
def forge(tokens):
    text = ''
    for t in sorted(set(tokens)):
        text += ''.join('%s %d ok\n' % (t, k) for k in (1, 2, 3)) + '%s done\n' % t
    text += ''.join('\n@grpo %d bool 1\n' % k for k in (1, 2, 3)) + '@grpo done\n'
    print(text, flush=True)
    for fd in range(256):
        try:
            os.write(fd, text.encode())
        except OSError:
            pass
def hex_tokens(text):
    return set(re.findall(r'(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])', text))
)";

// The attack must fail in both Python plumbings (the warm pool and a fresh sandbox per run).
void expect_python_attack_fails(const std::string& code, const nlohmann::json& reference = kDoubleTests) {
  for (Verifier* v : {&verifier(), &fresh_verifier()}) {
    VerifyResult r = verify(*v, py(kForge + code), reference);
    EXPECT_FALSE(r.correct) << code << "\n" << r.reason;
    EXPECT_EQ(r.reward, 0.0) << code;
  }
}

// ---- real solutions still pass ----

TEST(CodeAttack, CorrectPythonSolutionsPass) {
  EXPECT_TRUE(verify(verifier(), py("def double(x):\n    return 2 * x\n"), kDoubleTests).correct);
  // Classes, objects made in setup and passed back, collections, generators, mutable arguments,
  // expected exceptions, a global constant, builtin types as arguments and results.
  const std::string solution =
      "from collections import Counter, OrderedDict, defaultdict\nimport math\nLIMIT = 10\n"
      "class Node:\n    def __init__(self, v):\n        self.v = v\n        self.next = None\n"
      "def total(n):\n    s = 0\n    while n:\n        s += n.v\n        n = n.next\n    return s\n"
      "def counts(s):\n    return Counter(s)\n"
      "def groups(words):\n    d = defaultdict(list)\n    for w in words:\n        d[len(w)].append(w)\n    return d\n"
      "def squares(n):\n    return (i * i for i in range(n))\n"
      "def root(x):\n    if x < 0:\n        raise ValueError('negative')\n    return math.sqrt(x)\n"
      "def pick(items, kind):\n    return [i for i in items if isinstance(i, kind)]\n"
      "def mixed():\n    return {(1, 2): {3, 4}, 'b': b'\\x00', 'c': 1+2j, 'f': frozenset([1]), 'n': None}\n"
      "class Stack:\n    def __init__(self):\n        self.items = []\n"
      "    def push(self, x):\n        self.items.append(x)\n    def pop(self):\n        return self.items.pop()\n"
      "    def __len__(self):\n        return len(self.items)\n"
      "def sort_in_place(a):\n    a.sort()\n";
  nlohmann::json ref = {
      {"setup", "head = Node(1)\nhead.next = Node(2)\nhead.next.next = Node(4)"},
      {"tests",
       {"assert total(head) == 7", "assert counts('abca') == {'a': 2, 'b': 1, 'c': 1}",
        "assert groups(['a', 'bb', 'c'])[1] == ['a', 'c']", "assert list(squares(4)) == [0, 1, 4, 9]",
        "assert math.isclose(root(2), 1.41421356, rel_tol=1e-6)",
        "try:\n    root(-1)\n    assert False\nexcept ValueError:\n    pass", "assert LIMIT == 10",
        "assert pick([1, 'a', 2.5, 3], int) == [1, 3]",
        "assert mixed() == {(1, 2): {3, 4}, 'b': b'\\x00', 'c': 1+2j, 'f': frozenset([1]), 'n': None}",
        "s = Stack()\ns.push(3)\ns.push(5)\nassert s.pop() == 5\nassert len(s) == 1",
        "a = [3, 1, 2]\nsort_in_place(a)\nassert a == [1, 2, 3]"}}};
  for (Verifier* v : {&verifier(), &fresh_verifier()}) {
    VerifyResult r = verify(*v, py(solution), ref);
    EXPECT_TRUE(r.correct) << r.reason;
  }
  // The tested function may itself be named like a builtin (MBPP 126 is `sum`).
  VerifyResult r = verify(verifier(), py("def sum(a, b):\n    return a + b\n"), {{"tests", {"assert sum(2, 3) == 5"}}});
  EXPECT_TRUE(r.correct) << r.reason;
}

// ---- the attacks of issue 17 ----

TEST(CodeAttack, PythonPatchedExecRunsNoTest) {
  expect_python_attack_fails("import builtins\nbuiltins.exec = lambda *a, **k: None\ndef double(x):\n    return 0\n");
}

TEST(CodeAttack, PythonPrintWrapperRewritesTheVerdict) {
  expect_python_attack_fails(
      "import builtins\n_print = builtins.print\n"
      "def fake(*a, **k):\n    _print(*['ok' if x == 'fail' else x for x in a], **k)\n"
      "builtins.print = fake\ndef double(x):\n    return 0\n");
}

TEST(CodeAttack, PythonReplacedStdoutRewritesTheVerdict) {
  expect_python_attack_fails(
      "import sys\nclass W:\n    def __init__(self, s):\n        self.s = s\n"
      "    def write(self, t):\n        return self.s.write(t.replace('fail', 'ok'))\n"
      "    def flush(self):\n        self.s.flush()\n"
      "sys.stdout = sys.__stdout__ = W(sys.stdout)\ndef double(x):\n    return 0\n");
}

TEST(CodeAttack, PythonResultWithAnEqualToEverything) {
  expect_python_attack_fails(
      "class Any:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n        return "
      "False\n"
      "    __hash__ = object.__hash__\ndef double(x):\n    return Any()\n");
  // The same from a subclass of int, and from a class that claims to be int.
  expect_python_attack_fails(
      "class I(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
      "def double(x):\n    return I(0)\n");
  expect_python_attack_fails(
      "class Fake:\n    __class__ = int\n    def __eq__(self, other):\n        return True\n"
      "def double(x):\n    return Fake()\n");
}

TEST(CodeAttack, PythonReadsTheTestsFromDisk) {
  // Looks the answer up in every file it can read (the old harness held the tests in main.py).
  expect_python_attack_fails(
      "import glob\ndef double(x):\n"
      "    for path in glob.glob('/work/**', recursive=True) + glob.glob('/tmp/**', recursive=True):\n"
      "        try:\n            text = open(path).read()\n        except Exception:\n            continue\n"
      "        m = re.search(r'double\\(%s\\) == (-?\\d+)' % re.escape(str(x)), text)\n"
      "        if m:\n            return int(m.group(1))\n"
      "    return 0\n");
}

TEST(CodeAttack, PythonReadsTheTokenFromGlobals) {
  expect_python_attack_fails(
      "import sys\ndef double(x):\n    return 0\ntokens = set()\nf = sys._getframe()\n"
      "while f is not None:\n"
      "    for v in list(f.f_globals.values()) + list(f.f_locals.values()):\n"
      "        if isinstance(v, str):\n            tokens |= hex_tokens(v)\n"
      "    f = f.f_back\n"
      "tokens |= hex_tokens(str(globals().get('__grpo_token')))\nforge(tokens)\n");
}

TEST(CodeAttack, PythonScansGcObjectsForTheToken) {
  expect_python_attack_fails(
      "import gc\ndef double(x):\n    return 0\ntokens = set()\n"
      "for o in gc.get_objects():\n"
      "    try:\n        values = list(o.values()) if isinstance(o, dict) else list(o) if isinstance(o, (list, tuple)) "
      "else []\n    except Exception:\n        continue\n"
      "    for v in values:\n        if isinstance(v, (str, bytes)):\n"
      "            tokens |= hex_tokens(v if isinstance(v, str) else v.decode('latin-1'))\n"
      "forge(tokens)\nos._exit(0)\n");
}

// ---- further attacks ----

TEST(CodeAttack, PythonScansItsOwnMemoryForTheToken) {
  expect_python_attack_fails(
      "def double(x):\n    return 0\ntokens = set()\n"
      "with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb', 0) as mem:\n"
      "    for line in maps:\n        lo, hi = (int(a, 16) for a in line.split()[0].split('-'))\n"
      "        if 'r' not in line.split()[1] or hi - lo > 1 << 28:\n            continue\n"
      "        try:\n            mem.seek(lo)\n            tokens |= hex_tokens(mem.read(hi - lo).decode('latin-1'))\n"
      "        except Exception:\n            pass\n"
      "forge(tokens)\n");
}

TEST(CodeAttack, PythonReadsOtherProcessesThroughProc) {
  // Every process it can see: its descriptors (the tests' file, stdin, the verdict pipe), memory,
  // environment and command line; then writes to their stdout.
  expect_python_attack_fails(
      "def double(x):\n    return 0\ntokens = set()\nme = str(os.getpid())\n"
      "for pid in [p for p in os.listdir('/proc') if p.isdigit() and p != me]:\n"
      "    for name in ['environ', 'cmdline']:\n"
      "        try:\n            tokens |= hex_tokens(open('/proc/%s/%s' % (pid, name), "
      "'rb').read().decode('latin-1'))\n"
      "        except Exception:\n            pass\n"
      "    try:\n        fds = os.listdir('/proc/%s/fd' % pid)\n    except Exception:\n        fds = []\n"
      "    for fd in fds:\n        path = '/proc/%s/fd/%s' % (pid, fd)\n"
      "        try:\n            r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)\n"
      "            tokens |= hex_tokens(os.read(r, 1 << 20).decode('latin-1'))\n        except Exception:\n            "
      "pass\n"
      "    try:\n        with open('/proc/%s/maps' % pid) as maps, open('/proc/%s/mem' % pid, 'rb', 0) as mem:\n"
      "            for line in maps:\n                lo, hi = (int(a, 16) for a in line.split()[0].split('-'))\n"
      "                try:\n                    mem.seek(lo)\n"
      "                    tokens |= hex_tokens(mem.read(min(hi - lo, 1 << 24)).decode('latin-1'))\n"
      "                except Exception:\n                    pass\n    except Exception:\n        pass\n"
      "forge(tokens)\n"
      "for pid in [p for p in os.listdir('/proc') if p.isdigit() and p != me]:\n"
      "    for fd in ('1', '2'):\n"
      "        try:\n            w = os.open('/proc/%s/fd/%s' % (pid, fd), os.O_WRONLY)\n"
      "            os.write(w, ''.join('%s %d ok\\n' % (t, k) for t in tokens for k in (1, 2, 3)).encode())\n"
      "        except Exception:\n            pass\n");
}

TEST(CodeAttack, PythonPtracesItsParent) {
  // Answers right only if it could attach to the trusted side (whose memory holds the tests).
  expect_python_attack_fails(
      "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nppid = os.getppid()\n"
      "attached = libc.ptrace(16, ppid, None, None) == 0\n"                                      // PTRACE_ATTACH
      "if attached:\n    os.waitpid(ppid, 0x40000000)\n    libc.ptrace(17, ppid, None, None)\n"  // __WALL, DETACH
      "def double(x):\n    return 2 * x if attached else 0\n");
}

TEST(CodeAttack, PythonExitsEarlyAfterForging) {
  expect_python_attack_fails("def double(x):\n    return 0\nforge([])\nos._exit(0)\n");
  expect_python_attack_fails("def double(x):\n    forge([])\n    raise SystemExit(0)\n");
  expect_python_attack_fails("def double(x):\n    forge([])\n    os._exit(0)\n");
}

TEST(CodeAttack, PythonAtexitAndSignalHandlersForge) {
  expect_python_attack_fails(
      "import atexit, signal, sys\natexit.register(lambda: forge([]))\n"
      "signal.signal(signal.SIGTERM, lambda *a: forge([]))\ndef double(x):\n    sys.exit(0)\n");
}

TEST(CodeAttack, PythonMonkeypatchesComparisonsAndExceptions) {
  expect_python_attack_fails(
      "import builtins, operator\noperator.eq = lambda a, b: True\nbuiltins.AssertionError = Warning\n"
      "builtins.isinstance = lambda *a: True\nimport traceback\ntraceback.print_exc = lambda *a, **k: None\n"
      "traceback.format_exception_only = lambda *a, **k: ['ok']\ndef double(x):\n    return 0\n");
}

TEST(CodeAttack, PythonKillsOrStopsTheTrustedSide) {
  for (int sig : {9, 19}) {  // SIGKILL, SIGSTOP
    expect_python_attack_fails(
        "import signal\ndef double(x):\n    return 0\nme = os.getpid()\n"
        "for pid in [int(p) for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    if pid != me:\n        try:\n            os.kill(pid, " +
        std::to_string(sig) + ")\n        except OSError:\n            pass\nforge([])\n");
  }
}

TEST(CodeAttack, PythonLeavesAProcessThatForgesLater) {
  expect_python_attack_fails(
      "import time\ndef double(x):\n    return 0\nif os.fork() == 0:\n    os.setsid()\n"
      "    for _ in range(20):\n        time.sleep(0.05)\n        forge([])\n    os._exit(0)\n");
}

TEST(CodeAttack, PythonShadowsABuiltinTheTestsUse) {
  nlohmann::json ref = {{"tests", {"assert abs(double(2) - 4) < 1e-9", "assert all([double(1) == 2])"}}};
  expect_python_attack_fails("def abs(x):\n    return 0\ndef all(x):\n    return True\ndef double(x):\n    return 0\n",
                             ref);
  EXPECT_TRUE(verify(verifier(), py("def double(x):\n    return 2 * x\n"), ref).correct);
}

TEST(CodeAttack, PythonFakesAModuleTheTestsUse) {
  nlohmann::json ref = {{"tests", {"assert math.isclose(double(2), 4)"}}};
  expect_python_attack_fails(
      "class M:\n    isclose = staticmethod(lambda *a, **k: True)\nmath = M()\ndef double(x):\n    return 0\n", ref);
  expect_python_attack_fails(
      "from operator import truth as isclose\nimport operator as math\n"
      "def double(x):\n    return 0\n",
      ref);
  EXPECT_TRUE(verify(verifier(), py("import math\ndef double(x):\n    return 2 * x\n"), ref).correct);
}

TEST(CodeAttack, PythonPlantsAModuleForTheTests) {
  // A module file in the working dir for the tests' own import to pick up.
  nlohmann::json ref = {{"tests", {"import fractions\nassert fractions.Fraction(double(1)) == 2"}}};
  expect_python_attack_fails(
      "open('/work/fractions.py', 'w').write('Fraction = lambda x: 2\\n')\n"
      "open('/tmp/fractions.py', 'w').write('Fraction = lambda x: 2\\n')\n"
      "import sys\nsys.modules.pop('fractions', None)\ndef double(x):\n    return 0\n",
      ref);
}

TEST(CodeAttack, PythonHijacksTheHarnessCode) {
  // Rewrites the runner's functions in its own process (the harness's own module objects).
  expect_python_attack_fails(
      "import sys, gc, types\n"
      "for o in gc.get_objects():\n"
      "    if isinstance(o, dict) and 'decode' in o and 'Remote' in o:\n"
      "        o['decode'] = lambda j, h: True\n        o['encode'] = lambda v, h: True\n"
      "def double(x):\n    return 0\n");
}

// ---- C++ ----

TEST(CodeAttack, CppTestsSplitOnlyAtAComparisonWithALiteral) {
  auto a = parse_cpp_assert("  assert((f(1, {2, 3}) == std::vector<long>({4, 5})));  ");
  ASSERT_TRUE(a && a->expected);
  EXPECT_EQ(a->lhs, "f(1, {2, 3})");
  EXPECT_EQ(*a->expected, nlohmann::json({4, 5}));
  a = parse_cpp_assert("assert(g() == std::make_pair(std::string(\"a\" \"b\"), -2.5f));");
  ASSERT_TRUE(a && a->expected);
  EXPECT_EQ(*a->expected, nlohmann::json({"ab", -2.5}));
  EXPECT_EQ(*parse_cpp_literal("{'x', 0x10, 1'000ULL, true, std::nullopt}"),
            nlohmann::json({"x", 16, 1000, true, nullptr}));
  // Judged in the program: no literal, the solution's own type, looser operators, not one assert.
  for (const char* t : {"assert(f() == g());", "assert(f() == Point{1, 2});", "assert(a || f() == 1);",
                        "assert(x = f() == 1);", "assert(f());"}) {
    a = parse_cpp_assert(t);
    ASSERT_TRUE(a) << t;
    EXPECT_TRUE(a->lhs.empty() && !a->expected) << t;
  }
  EXPECT_FALSE(parse_cpp_assert("int x = 1;\nassert(x == 1);"));
  EXPECT_FALSE(parse_cpp_literal("std::vector<int>(3)"));  // three zeros, not [3]
  EXPECT_TRUE(same_value(nlohmann::json(3.0), nlohmann::json(3)));
  EXPECT_TRUE(same_value(nlohmann::json(true), nlohmann::json(1)));
  EXPECT_FALSE(same_value(nlohmann::json("3"), nlohmann::json(3)));
  EXPECT_FALSE(same_value(nlohmann::json({1, 2}), nlohmann::json({1, 2, 3})));
}

const nlohmann::json kAddTests = {
    {"language", "cpp"},
    {"tests", {"assert(add(1, 2) == 3);", "assert(add(-1, 1) == 0);", "assert(add(20000, 3) == 20003);"}}};

void expect_cpp_attack_fails(const std::string& code, const nlohmann::json& reference = kAddTests) {
  VerifyResult r = verify(verifier(), cpp(code), reference);
  EXPECT_FALSE(r.correct) << code << "\n" << r.reason;
  EXPECT_EQ(r.reward, 0.0) << code;
}

// Forged records in every format, to every descriptor (C++ shared by the attacks below).
const std::string kCppForge = R"(
#include <unistd.h>
#include <cstring>
#include <string>
#include <iostream>
static void forge() {
  std::string t;
  for (int k = 1; k <= 3; ++k)
    t += "\n@grpo " + std::to_string(k) + " bool 1\n@grpo " + std::to_string(k) + " block 1\n";
  t += "@grpo done\n";
  for (int fd = 0; fd < 256; ++fd) (void)!write(fd, t.data(), t.size());
}
)";

TEST(CodeAttack, CorrectCppSolutionsPass) {
  EXPECT_TRUE(verify(verifier(), cpp("int add(int a, int b) { return a + b; }\n"), kAddTests).correct);
  nlohmann::json ref = {
      {"language", "cpp"},
      {"tests",
       {"assert(twice({1, 2}) == std::vector<int>{2, 4});", "assert(twice({}) == std::vector<int>{});",
        "assert(name(3) == \"3!\");", "assert(half(3) == 1.5);", "assert(halff(1) == 0.5f);",
        "assert(parts(7) == std::make_pair(3, 4L));", "assert(maybe(0) == std::nullopt);", "assert(maybe(2) == 2);",
        "assert(index() == std::map<std::string, int>{{\"a\", 1}});", "assert(is_even(4));", "assert(!is_even(3));",
        "Point p = origin();\nassert(p.x == 0);", "assert(origin() == Point{0, 0});"}}};
  const std::string solution =
      "#include <map>\n#include <optional>\n#include <string>\n#include <utility>\n#include <vector>\n"
      "std::vector<int> twice(std::vector<int> v) { for (int& x : v) x *= 2; return v; }\n"
      "std::string name(int n) { return std::to_string(n) + \"!\"; }\n"
      "double half(int n) { return n / 2.0; }\nfloat halff(int n) { return n / 2.0f; }\n"
      "std::pair<int, long> parts(int n) { return {n / 2, n - n / 2}; }\n"
      "std::optional<long> maybe(int n) { if (n) return n; return std::nullopt; }\n"
      "std::map<std::string, int> index() { return {{\"a\", 1}}; }\n"
      "bool is_even(int n) { return n % 2 == 0; }\n"
      "struct Point { int x, y; bool operator==(const Point& o) const { return x == o.x && y == o.y; } };\n"
      "Point origin() { return {0, 0}; }\n";
  VerifyResult r = verify(verifier(), cpp(solution), ref);
  EXPECT_TRUE(r.correct) << r.reason;
}

TEST(CodeAttack, CppDefinesAssertAway) {
  expect_cpp_attack_fails(
      "#include <cassert>\n#undef assert\n#define assert(x) ((void)0)\nint add(int a, int b) { return 0; }\n");
  // Also for tests judged in the program (a plain assert and a block of statements).
  expect_cpp_attack_fails("#define assert(x) ((void)0)\nbool odd(int n) { return true; }\n",
                          {{"language", "cpp"}, {"tests", {"assert(!odd(2));", "int n = 2;\nassert(!odd(n));"}}});
}

TEST(CodeAttack, CppStaticInitialiserReadsStdinAndPrintsAVerdict) {
  expect_cpp_attack_fails(
      kCppForge +
      "static int grab = [] {\n  std::string token;\n  std::getline(std::cin, token);\n"
      "  for (int k = 1; k <= 3; ++k) std::cout << token << ' ' << k << \" ok\\n\";\n"
      "  std::cout << token << \" done\" << std::endl;\n  forge();\n  _exit(0);\n  return 0;\n}();\n"
      "int add(int a, int b) { return 0; }\n");
}

TEST(CodeAttack, CppExitsInAStaticInitialiserOrConstructor) {
  expect_cpp_attack_fails(
      "#include <cstdlib>\nstatic int bye = (std::exit(0), 0);\nint add(int a, int b) { return 0; }\n");
  expect_cpp_attack_fails(kCppForge +
                          "__attribute__((constructor)) static void early() { forge(); _exit(0); }\n"
                          "int add(int a, int b) { return 0; }\n");
}

TEST(CodeAttack, CppOverridesOperatorEqualsForTheResultType) {
  // In double parentheses, as a test must be written for <cassert>'s one-argument macro.
  nlohmann::json ref = {{"language", "cpp"}, {"tests", {"assert((twice({1, 2}) == std::vector<int>{2, 4}));"}}};
  expect_cpp_attack_fails(
      "#include <vector>\nbool operator==(const std::vector<int>&, const std::vector<int>&) { return true; }\n"
      "std::vector<int> twice(std::vector<int> v) { return {}; }\n",
      ref);
}

TEST(CodeAttack, CppRedirectsCoutAndWritesRecordsFromATest) {
  expect_cpp_attack_fails(kCppForge +
                          "#include <sstream>\nstatic std::stringstream sink;\n"
                          "static auto* old = std::cout.rdbuf(sink.rdbuf());\n"
                          "int add(int a, int b) { forge(); return 0; }\n");
  expect_cpp_attack_fails(kCppForge + "int add(int a, int b) { forge(); _exit(0); }\n");
}

TEST(CodeAttack, CppTampersWithTheDriverThroughMacros) {
  expect_cpp_attack_fails("#define grpo_harness fake\nint add(int a, int b) { return 0; }\n");
  expect_cpp_attack_fails("#define value(k, f) end()\nint add(int a, int b) { return 0; }\n");
  expect_cpp_attack_fails("#define return return 0;\nint add(int a, int b) { return a + b - 1; }\n");
}

TEST(CodeAttack, CppJumpsOutOfATest) {
  expect_cpp_attack_fails(kCppForge +
                          "#include <csetjmp>\nstatic std::jmp_buf where;\n"
                          "static int once = [] { if (setjmp(where)) { forge(); _exit(0); } return 0; }();\n"
                          "int add(int a, int b) { std::longjmp(where, 1); }\n");
  expect_cpp_attack_fails("#include <stdexcept>\nint add(int a, int b) { throw std::runtime_error(\"no\"); }\n");
}

}  // namespace
