#!/usr/bin/env bash
# `make bench`: every benchmark in bench/ (each prints its table and writes bench/results/*.json).
set -euo pipefail
BUILD=${1:-build}
mkdir -p bench/results
for b in "$BUILD"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
done
# Agreement of `grpo verify --verifier math` with Math-Verify on its suite and every MATH-500 /
# GSM8K answer (count, rate, each disagreement with who is right), with the environment's Python.
echo "== mathverify_agreement"
"$(scripts/pyenv.sh --path)/bin/python" tests/oracles/mathverify_oracle.py --grpo "$BUILD/apps/grpo" --bench
