#!/usr/bin/env bash
# The on-policy experiment (README, "On-policy exactness, measured"): GRPO on the demo model
# (configs/tiny-zero.yaml, its pretrained base) with the rollout workers and the trainer at
# different precisions, with and without rollout routing replay (R3). Every run records the
# rollouts' routes, so the trainer reports the expert disagreement beside the log-prob mismatch:
#   fp32            fp32 workers,  fp32 trainer  (the demo: the same arithmetic on both sides)
#   bf16            bf16 workers,  bf16 trainer
#   fp8             FP8 workers (e4m3, 128x128 block scales), bf16 trainer
#   fp8-r3          the same with trainer.routing_replay: rollout
# then `grpo compare` draws them side by side (OUT/compare.html) and prints the table.
#   usage: scripts/onpolicy_experiment.sh [BUILD=build] [OUT=runs/onpolicy] [STEPS=30] [RUNS="fp32 bf16 fp8 fp8-r3"]
# Run from the repository root after the demo's base exists (`make demo`, or
# `grpo pretrain --config configs/tiny-zero.yaml`). A stopped run resumes when started again.
set -euo pipefail
BUILD=${1:-build}
OUT=${2:-runs/onpolicy}
STEPS=${3:-30}
RUNS=${4:-fp32 bf16 fp8 fp8-r3}
GRPO=$BUILD/apps/grpo
CONFIG=configs/tiny-zero.yaml
if [ ! -f runs/tiny-zero/base/model.safetensors ]; then
  echo "no base model in runs/tiny-zero/base: run 'make demo' or '$GRPO pretrain --config $CONFIG' first" >&2
  exit 2
fi

dirs=()
for run in $RUNS; do
  case $run in
    fp32) settings="rollout.dtype=fp32 trainer.dtype=fp32 rollout.record_routes=true" ;;
    bf16) settings="rollout.dtype=bf16 trainer.dtype=bf16 rollout.record_routes=true" ;;
    fp8) settings="rollout.dtype=fp8 trainer.dtype=bf16 rollout.record_routes=true" ;;
    fp8-r3) settings="rollout.dtype=fp8 trainer.dtype=bf16 trainer.routing_replay=rollout" ;;
    *) echo "unknown run '$run' (expected fp32, bf16, fp8 or fp8-r3)" >&2; exit 2 ;;
  esac
  echo "== $run: $settings"
  # shellcheck disable=SC2086
  $GRPO train $CONFIG run.out_dir="$OUT/$run" train.steps="$STEPS" train.checkpoint_every="$STEPS" $settings
  dirs+=("$OUT/$run")
done
$GRPO compare "${dirs[@]}" --out "$OUT/compare.html"
