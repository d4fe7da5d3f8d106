"""Shared helpers of the live oracles in tests/oracles/ (standard library only at import time).

  require(...)     imports the oracle's Python packages, or exits 1 naming the missing one
  run_grpo(...)    runs the grpo binary, returns its stdout; exits 1 with its stderr on failure
  json_lines(...)  parses JSONL output
  Report           collects per-check verdicts, prints a summary and gives the exit code
"""
import importlib
import json
import subprocess
import sys

DEPS_HINT = "run 'make deps' (scripts/pyenv.sh builds the project's environment from python/requirements.txt)"


def require(*modules):
    """Imports each module by name; a missing one ends the oracle with exit code 1 (never a skip)."""
    loaded = []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError as e:
            missing = getattr(e, "name", None) or name
            print(f"missing Python package '{missing.split('.')[0]}': {DEPS_HINT}", file=sys.stderr)
            sys.exit(1)
    return loaded[0] if len(loaded) == 1 else loaded


def run_grpo(grpo, args, stdin_text="", timeout=300, check=True):
    """`grpo ARGS` with stdin_text on stdin; its stdout. A non-zero exit ends the oracle (exit 1)
    unless check is False: then the CompletedProcess is returned, whatever the exit code."""
    cmd = [grpo] + [str(a) for a in args]
    try:
        p = subprocess.run(cmd, input=stdin_text, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        print(f"cannot run '{grpo}': no such file (build it first, or pass --grpo)", file=sys.stderr)
        sys.exit(1)
    if not check:
        return p
    if p.returncode != 0:
        print(f"'{' '.join(cmd)}' exited with {p.returncode}:\n{p.stderr}{p.stdout}", file=sys.stderr)
        sys.exit(1)
    return p.stdout


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Report:
    """Named checks with a pass/fail verdict and a one-line detail each."""

    def __init__(self):
        self.rows = []

    def check(self, name, ok, detail):
        self.rows.append((name, ok, detail))
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)

    def exit_code(self):
        failed = [name for name, ok, _ in self.rows if not ok]
        if failed:
            print(f"{len(failed)} of {len(self.rows)} checks failed: {', '.join(failed)}")
            return 1
        print(f"all {len(self.rows)} checks passed")
        return 0
