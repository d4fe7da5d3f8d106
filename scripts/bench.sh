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
