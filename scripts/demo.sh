#!/usr/bin/env bash
# `make demo`: R1-Zero on a CPU, end to end, on the built-in default (configs/tiny-zero.yaml).
#   1. `grpo pretrain` makes a small DeepSeek-V3-architecture base model (MLA + DeepSeekMoE) from a
#      synthetic corpus of digit-chain problems (learner/digit_chains.h) — skipped when
#      runs/tiny-zero/base already holds one;
#   2. `grpo train` runs GRPO: the reward service and a rollout worker start in-process on
#      loopback, every scored group goes to the RocksDB store, held-out accuracy is measured every
#      few steps, and runs/tiny-zero/grpo/report.html plots the run.
# Stop it at any time: the same command resumes from the last checkpoint.
set -euo pipefail
BUILD=${1:-build}
GRPO=$BUILD/apps/grpo
CONFIG=configs/tiny-zero.yaml
start=$(date +%s)

if [ -f runs/tiny-zero/base/model.safetensors ]; then
  echo "== 1. base model: runs/tiny-zero/base (exists; delete it to pretrain again)"
else
  echo "== 1. pretraining the base model (grpo pretrain --config $CONFIG)"
  $GRPO pretrain --config $CONFIG
fi
pretrained=$(date +%s)

echo "== 2. GRPO (grpo train $CONFIG)"
$GRPO train $CONFIG
end=$(date +%s)
echo "== done in $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s (pretraining $(( pretrained - start )) s):"
echo "   runs/tiny-zero/grpo/report.html, metrics.jsonl, tb/ (TensorBoard), checkpoints/, store/"
