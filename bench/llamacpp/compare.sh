#!/usr/bin/env bash
# grpo's rollout engine beside llama.cpp on the same model, in one run (issue 21): decode (and
# prefill) tokens/s of bench/configs/dsv3-small.json (DeepSeek-V3 architecture, random weights,
# seed 1) at 1 and 32 concurrent sequences and 1 and 2 threads, and grpo / llama.cpp per dtype
# class: grpo fp32 vs llama.cpp F32, bf16 vs BF16, FP8 weights vs Q8_0.
#
#   bench/llamacpp/compare.sh [BUILD] [OUT_JSON]     (from anywhere; BUILD default build,
#                                                      OUT_JSON default bench/results/llamacpp.json)
#
# Steps:
#  1. bench/llamacpp/env.sh: the pinned Python environment with PyPI's gguf and llama-cpp-python
#     (llama.cpp compiled from source for this CPU, once, cached under ~/.cache/grpo).
#  2. Builds BUILD's grpo and bench_rollout (configuring BUILD with -DGRPO_SERVICES=OFF when it
#     has no CMakeCache.txt).
#  3. `grpo init-model --seed 1 --dtype fp32` writes the model as an HF checkpoint (the config and
#     seed bench_rollout initialises in memory: init_weights seed 1), and to_gguf.py converts it
#     to GGUF (llama.cpp's deepseek2) as F32, BF16 and Q8_0. Work files: BUILD/llamacpp/.
#  4. Conversion check (report.py check): log-probs of 5 sequences (4 x 64 random tokens, and a
#     64-token prompt + grpo's 16 greedy tokens) from `grpo logprobs --dtype fp32` and from
#     llama.cpp, and whether llama.cpp's argmax follows grpo's greedy continuation. Stops unless
#     llama.cpp on the F32 file with every op in fp32 (f32 KV cache, flash attention off) is
#     within 1e-4 of grpo and follows all 16 greedy tokens: a wrong conversion makes the timing
#     meaningless. The files as benchmarked (flash attention on; BF16; Q8_0) are reported too.
#  5. For threads 1 then 2, three repetitions alternating the sides: bench_rollout --threads T
#     --seqs 1,32, then llama_run.py bench (the same workload through llama.cpp's C API, with
#     llama.cpp's default flash attention "auto" -- on for CPU, the faster setting here -- an f32
#     KV cache for F32 and the default f16 cache for BF16 and Q8_0).
#  6. report.py table: best of the three per cell on each side, the table, and OUT_JSON.
#
# The machine's load average is sampled between runs and printed with the table: on a shared
# machine, read the ratios with it. Environment: GRPO_LLAMACPP_REPS (default 3),
# GRPO_LLAMACPP_THREADS (default "1 2"), GRPO_LLAMACPP_SEQS (default 1,32),
# CMAKE_BUILD_PARALLEL_LEVEL (default 2, for steps 1 and 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${1:-build}
out=${2:-bench/results/llamacpp.json}
reps=${GRPO_LLAMACPP_REPS:-3}
threads_list=${GRPO_LLAMACPP_THREADS:-1 2}
seqs=${GRPO_LLAMACPP_SEQS:-1,32}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
here=bench/llamacpp
say() { echo "compare.sh: $*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }
loads=()

# 1. Python environment with gguf + llama-cpp-python.
env=$("$here/env.sh")
py=$env/bin/python

# 2. grpo and bench_rollout.
if [ ! -f "$build/CMakeCache.txt" ]; then
  say "configuring $build"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DGRPO_SERVICES=OFF >&2
fi
cmake --build "$build" -j"$CMAKE_BUILD_PARALLEL_LEVEL" --target grpo bench_rollout >&2
grpo=$build/apps/grpo
bench_rollout=$build/bench/bench_rollout

# 3. Checkpoint and GGUF files.
work=$build/llamacpp
ckpt=$work/dsv3-small-seed1
mkdir -p "$work"
rm -rf "$ckpt"
"$grpo" init-model --config bench/configs/dsv3-small.json --seed 1 --dtype fp32 --out "$ckpt" --threads 2 >&2
for t in f32 bf16 q8_0; do
  "$py" "$here/to_gguf.py" --model "$ckpt" --out "$work/dsv3-small-$t.gguf" --type "$t"
done

# 4. Conversion check. The ids: 4 random 64-token sequences, then a 64-token prompt followed by
# grpo's 16 greedy tokens.
ids=$work/check_ids.jsonl
prompt=$("$py" -c "
import sys; sys.path.insert(0, '$here'); from llama_run import prompt_of
print(','.join(map(str, prompt_of(64, 3000, 1))))")
"$grpo" generate --model "$ckpt" --prompt-ids "$prompt" --max-new-tokens 16 --temperature 0 --dtype fp32 \
  --threads 2 > "$work/check_greedy_grpo.jsonl"
"$py" - "$prompt" "$work/check_greedy_grpo.jsonl" > "$ids" <<'EOF'
import json, sys
sys.path.insert(0, "bench/llamacpp")
from llama_run import prompt_of
for seed in (101, 102, 103, 104):
    print(json.dumps({"ids": prompt_of(64, 3000, seed)}))
gen = json.loads(open(sys.argv[2]).readline())["output_ids"]
print(json.dumps({"ids": [int(x) for x in sys.argv[1].split(",")] + gen}))
EOF
"$grpo" logprobs --model "$ckpt" --dtype fp32 --threads 2 < "$ids" > "$work/check_grpo_fp32.jsonl"
"$grpo" logprobs --model "$ckpt" --dtype bf16 --threads 2 < "$ids" > "$work/check_grpo_bf16.jsonl"
# llama.cpp runs: the gate (F32 weights, f32 cache, flash attention off: all fp32, as grpo's fp32
# reference), then each file as the benchmark runs it (flash attention auto, llama.cpp's default,
# whose CPU kernel rounds to f16 inside; f32 cache for F32, the default f16 for the others).
check_args=()
run_check() {  # NAME GGUF CACHE FLASH_ATTN
  local file=$work/check_llama_$(echo "$1" | tr -c 'A-Za-z0-9_\n' '_').jsonl
  "$py" "$here/llama_run.py" logprobs --gguf "$2" --ids-jsonl "$ids" --threads 2 --cache "$3" --flash-attn "$4" > "$file"
  check_args+=(--llama "$1=$file")
}
run_check "F32 f32-cache fa-off" "$work/dsv3-small-f32.gguf" f32 off
run_check "F32 f32-cache fa-auto" "$work/dsv3-small-f32.gguf" f32 auto
run_check "BF16 f16-cache fa-auto" "$work/dsv3-small-bf16.gguf" f16 auto
run_check "Q8_0 f16-cache fa-auto" "$work/dsv3-small-q8_0.gguf" f16 auto
"$py" "$here/report.py" check --ids "$ids" --grpo "$work/check_grpo_fp32.jsonl" \
  --grpo-bf16 "$work/check_grpo_bf16.jsonl" --greedy-grpo "$work/check_greedy_grpo.jsonl" "${check_args[@]}" \
  --gate "F32 f32-cache fa-off" --max-gap 1e-4 --out "$work/check.json"

# 5. The benchmark, alternating sides.
table_args=()
for t in $threads_list; do
  for r in $(seq 1 "$reps"); do
    loads+=("$(load1)")
    say "threads $t, repetition $r/$reps: grpo (load average $(load1))"
    "$bench_rollout" --threads "$t" --seqs "$seqs" --out "$work/grpo_t${t}_r$r.json" >&2
    loads+=("$(load1)")
    say "threads $t, repetition $r/$reps: llama.cpp (load average $(load1))"
    "$py" "$here/llama_run.py" bench --threads "$t" --seqs "$seqs" --reps 1 --flash-attn auto --out "$work/llama_t${t}_r$r.json" \
      --gguf "F32=$work/dsv3-small-f32.gguf:f32" --gguf "BF16=$work/dsv3-small-bf16.gguf:f16" \
      --gguf "Q8_0=$work/dsv3-small-q8_0.gguf:f16" >&2
    table_args+=(--grpo "$t=$work/grpo_t${t}_r$r.json" --llama "$t=$work/llama_t${t}_r$r.json")
  done
done
loads+=("$(load1)")

# 6. The table and the JSON.
load_args=()
for l in "${loads[@]}"; do load_args+=(--load "$l"); done
"$py" "$here/report.py" table "${table_args[@]}" "${load_args[@]}" --check "$work/check.json" --out "$out"
