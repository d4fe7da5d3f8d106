#!/usr/bin/env python3
"""`make lint`: the C++ tree against .clang-format (clang-format --dry-run) and .clang-tidy (the
fixed check list) for every translation unit of a lint configuration of the build (configured
without precompiled headers, which clang cannot read from GCC). Exit 1 on any finding.

clang-tidy parses LibTorch's headers for most files (~10 s a file on one core), so a clean verdict
is cached per file in ~/.cache/grpo/lint, keyed by the clang-tidy version, .clang-tidy, the compile
command and the file's preprocessed text: a file whose text, headers or flags changed is checked
again, the rest are not.

  scripts/lint.py [--build DIR] [--jobs N] [--no-cache] [--format-only] [--budget-minutes M] [FILE.cpp ...]

With files, clang-tidy checks only those translation units. With a budget (what CI uses), units are
checked newest-changed first (by the git history) until the budget is spent; the ones left are
listed as not checked, which is not a failure (`make lint` has no budget).
"""
import argparse
import time
import concurrent.futures
import hashlib
import json
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARY_DIRS = ["apps", "bench", "common", "dataset", "distill", "eval", "kernels", "learner", "metrics", "model", "proto",
                "reward", "reward/code", "reward/math", "rollout", "rollout/service", "store", "tests", "tokenizer",
                "train"]


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=kw.pop("cwd", ROOT), capture_output=True, text=True, **kw)


def tool(name):
    return os.environ.get(name.upper().replace("-", "_"), name)


def tracked_sources():
    out = run(["git", "ls-files", "*.h", "*.cpp", "*.cu"]).stdout.split()
    return [f for f in out if not f.startswith("tests/data/")]


def check_format(files):
    r = run([tool("clang-format"), "--dry-run", "--Werror"] + files)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        sys.stderr.write("lint: formatting differs from .clang-format (run `make format`)\n")
        return False
    return True


def configure(build):
    r = run(["cmake", "-S", ".", "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON",
             "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"] + shlex.split(os.environ.get("CMAKE_FLAGS", "")))
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        sys.exit("lint: cmake could not configure " + build)
    # The generated headers (protobuf stubs) the sources include.
    targets = run(["cmake", "--build", build, "--target", "help"]).stdout
    if "grpo_proto_sources" in targets:
        r = run(["cmake", "--build", build, "--target", "grpo_proto_sources"])
        if r.returncode != 0:
            sys.stderr.write(r.stdout + r.stderr)
            sys.exit("lint: could not generate the protobuf sources")


def unit_key(entry, base):
    """sha256 of base + the compile command + the preprocessed translation unit."""
    args = shlex.split(entry["command"])
    if "-o" in args:
        i = args.index("-o")
        del args[i:i + 2]
    pre = subprocess.run(args + ["-E", "-P", "-o", "-"], cwd=entry["directory"], capture_output=True)
    # Keyed without the clone's path, so every clone on the machine shares the verdicts.
    h = hashlib.sha256(base.encode())
    h.update(entry["command"].replace(ROOT, "<root>").encode())
    h.update(pre.stdout.replace(ROOT.encode(), b"<root>"))
    if pre.returncode != 0:
        h.update(b"preprocessing failed")
    return h.hexdigest()[:32]


def check_unit(entry, build, base, cache):
    key = unit_key(entry, base) if cache else None
    if key and os.path.exists(os.path.join(cache, key)):
        return entry["file"], True, ""
    # Findings in the project's own headers too, not in LibTorch's or the generated stubs.
    headers = "^" + ROOT + "/(" + "|".join(LIBRARY_DIRS) + r")/[^/]+\.h$"
    r = run([tool("clang-tidy"), "-p", build, "--quiet", "--header-filter=" + headers, entry["file"]])
    text = r.stdout + r.stderr
    findings = [l for l in text.splitlines() if " warning: " in l or " error: " in l]
    ok = r.returncode == 0 and not findings
    if ok and key:
        open(os.path.join(cache, key), "w").close()
    return entry["file"], ok, r.stdout if r.stdout.strip() else text


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build-lint"))
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--format-only", action="store_true", help="clang-format only (seconds)")
    p.add_argument("--budget-minutes", type=float, default=0, help="stop starting new units after this long")
    p.add_argument("files", nargs="*", help="check only these .cpp files with clang-tidy")
    a = p.parse_args()

    files = tracked_sources()
    tracked = set(files)
    print(f"lint: clang-format on {len(files)} files", flush=True)
    ok = check_format(files)
    if a.format_only:
        print("lint: formatting clean" if ok else "lint: FAILED")
        return 0 if ok else 1

    configure(a.build)
    entries = [e for e in json.load(open(os.path.join(a.build, "compile_commands.json")))
               if e["file"].startswith(ROOT + "/") and e["file"].endswith(".cpp")
               and os.path.relpath(e["file"], ROOT) in tracked]
    if a.files:
        wanted = {os.path.abspath(f) for f in a.files}
        entries = [e for e in entries if e["file"] in wanted]
    version = run([tool("clang-tidy"), "--version"]).stdout
    base = version + open(os.path.join(ROOT, ".clang-tidy")).read()
    cache = None if a.no_cache else os.environ.get("GRPO_LINT_CACHE", os.path.expanduser("~/.cache/grpo/lint"))
    if cache:
        os.makedirs(cache, exist_ok=True)
    if a.budget_minutes > 0:  # the most recently changed files first
        recent = run(["git", "log", "--format=", "--name-only", "-n", "200"]).stdout.split()
        rank = {}
        for i, f in enumerate(recent):
            rank.setdefault(os.path.join(ROOT, f), i)
        entries.sort(key=lambda e: rank.get(e["file"], len(recent)))
    deadline = time.monotonic() + a.budget_minutes * 60 if a.budget_minutes > 0 else None
    print(f"lint: clang-tidy on {len(entries)} files, {a.jobs} at a time", flush=True)
    bad, skipped = 0, []

    def unit(e):
        if deadline and time.monotonic() > deadline:
            skipped.append(os.path.relpath(e["file"], ROOT))
            return e["file"], True, ""
        return check_unit(e, a.build, base, cache)

    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        for f, good, out in pool.map(unit, entries):
            if not good:
                bad += 1
                print(out, flush=True)
    if skipped:
        print(f"lint: budget spent; {len(skipped)} files not checked this time: " + " ".join(sorted(skipped)))
    if bad:
        print(f"lint: clang-tidy found problems in {bad} files (above)", file=sys.stderr)
    ok = ok and bad == 0
    print("lint: clean" if ok else "lint: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
