#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, nvcc and a CUDA build of PyTorch (python3's own),
# from a clean checkout: builds the binary and the test suites that hold GPU tests against that
# torch (-DGRPO_SYSTEM_TORCH=ON; -DGRPO_SERVICES=OFF when gRPC or RocksDB is absent), runs every
# GPU test (each compares a CUDA path with its CPU twin; without a GPU they skip, saying why), the
# live HF transformers oracle with grpo on the GPU (tests/oracles/hf_models.py --device cuda), then
# the rollout engine's benchmark on the GPU and on the CPU (bench_rollout --device) with its tables,
# and bench/gpu/decode_vs_hf.py (dsv3-4b beside HF generate on the GPU, the HBM roofline).
# Raw figures go to OUT (default gpu-check.json). Meant to finish within 8 minutes on one H100.
#
#   scripts/gpu_check.sh [BUILD_DIR] [OUT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-gpu}
out=${2:-gpu-check.json}
jobs=$(nproc)
started=$(date +%s)

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || {
  echo "gpu_check: nvidia-smi found no GPU" >&2
  exit 1
}
# Debian packages put in .gpu-debs beforehand (`apt-get download` of gRPC, RocksDB, ICU, ... on a
# machine with package access), unpacked when present and we may write to /.
if [ -d "$root/.gpu-debs" ] && [ "$(id -u)" = 0 ]; then
  for f in "$root"/.gpu-debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
services=ON
for h in grpcpp/grpcpp.h rocksdb/db.h; do
  [ -e "/usr/include/$h" ] || services=OFF
done
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGRPO_SYSTEM_TORCH=ON -DGRPO_CUDA=ON \
  -DGRPO_SERVICES=$services -DCMAKE_CUDA_ARCHITECTURES=90a-real >"$build.configure.log" 2>&1 ||
  { tail -30 "$build.configure.log"; exit 1; }
grep -E "LibTorch|CUDA parts" "$build.configure.log" || true
targets="grpo bench_rollout test_kernels test_model test_rollout test_learner"
[ "$services" = ON ] && targets="$targets test_cli"
cmake --build "$build" -j "$jobs" --target $targets >"$build.build.log" 2>&1 || { tail -40 "$build.build.log"; exit 1; }
echo "gpu_check: built in $(($(date +%s) - started)) s (services $services)"

# 1. Every GPU test (the names say CUDA or Device), with the CPU twins they compare against.
failed=0
tests_json="["
for suite in $targets; do
  case $suite in grpo | bench_rollout) continue ;; esac
  log="$build/$suite.gpu.log"
  if "$build/tests/$suite" --gtest_filter='*Cuda*:*Device*' --gtest_brief=0 >"$log" 2>&1; then rc=0; else rc=$?; failed=1; fi
  passed=$(grep -c '^\[       OK \]' "$log" || true)
  skipped=$(grep -c '^\[  SKIPPED \]' "$log" || true)
  bad=$(grep -c '^\[  FAILED  \] [A-Za-z]*\.[A-Za-z]* (' "$log" || true)
  printf '%-14s passed %3d  skipped %3d  failed %3d\n' "$suite" "$passed" "$skipped" "$bad"
  [ "$rc" = 0 ] || grep -B5 -A20 'Failure' "$log" | head -60
  tests_json="$tests_json{\"suite\":\"$suite\",\"passed\":$passed,\"skipped\":$skipped,\"failed\":$bad},"
done
tests_json="${tests_json%,}]"

# 2. The binary on the GPU against HF transformers on the CPU (fp32 log-probs within 1e-4, greedy
#    tokens identical) for DeepSeek V2/V3, Qwen2 and Llama checkpoints.
if python3 "$root/tests/oracles/hf_models.py" --grpo "$build/apps/grpo" --device cuda; then hf=pass; else hf=fail; failed=1; fi

# 3. The rollout engine's decode and prefill on the GPU (bench_rollout: dsv3-small, random weights,
#    64-token prompts, 32 new tokens, fp32 and bf16), then the same rows on the CPU as the baseline.
outdir=$(dirname "$out")
"$build/bench/bench_rollout" --device cuda --seqs 1,32,128 --threads "$jobs" --out "$outdir/gpu-check-rollout-cuda.json"
"$build/bench/bench_rollout" --seqs 1,32 --threads "$jobs" --out "$outdir/gpu-check-rollout-cpu.json" | tail -4

# 4. bench/gpu: decode on dsv3-4b (4.29 B, bf16) beside HF transformers' generate, and the roofline.
python3 "$root/bench/gpu/decode_vs_hf.py" --grpo "$build/apps/grpo" --device cuda --out "$outdir/gpu-check-decode-hf.json" ||
  failed=1
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
python3 - "$out" "$gpu" "$tests_json" "$outdir/gpu-check-rollout-cuda.json" "$outdir/gpu-check-rollout-cpu.json" \
  "$(($(date +%s) - started))" "$hf" "$outdir/gpu-check-decode-hf.json" <<'PY'
import json, sys
import os
out, gpu, tests, cuda, cpu, seconds, hf, decode = sys.argv[1:]
json.dump({"gpu": gpu, "tests": json.loads(tests), "hf_oracle_on_cuda": hf, "rollout_cuda": json.load(open(cuda)),
           "rollout_cpu": json.load(open(cpu)), "decode_vs_hf": json.load(open(decode)) if os.path.exists(decode) else None,
           "seconds": int(seconds)}, open(out, "w"), indent=2)
PY
echo "gpu_check: $(($(date +%s) - started)) s in all; figures in $out"
exit $failed
