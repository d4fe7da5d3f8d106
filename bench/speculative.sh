#!/usr/bin/env bash
# Speculative decoding with a checkpoint's MTP module (rollout/engine.h) beside the same engine
# without drafts, in one run: `grpo generate --timing` both ways, alternating, best of REPS, and
# the ratio, with the share of drafts kept; the two runs' completions must be byte-identical (the
# engine's drafts never change a completion).
#
#   bench/speculative.sh [BUILD] [MODEL_DIR] [OUT_JSON]
#       BUILD default build; OUT_JSON default bench/results/speculative.json
#
# MODEL_DIR: a DeepSeek checkpoint with MTP weights and its tokenizer. Without one, the script
# pretrains it first (and reuses it on later runs): bench/configs/dsv3-small.json's architecture
# (8 layers, hidden 512, 16 routed experts) with the demo's 262-token vocabulary and one MTP
# module, on the demo's digit-chains corpus (configs/tiny-zero.yaml's pretrain section), 600 steps
# of 8 sequences with pretrain.mtp_weight 0.3 (about 11 minutes on 2 cores), into
# BUILD/speculative/model.
#
# Prompts: the first 16 questions of configs/tiny-zero/heldout.jsonl in the demo's chat template
# ("User: Q\nAssistant: <think>"), up to 32 new tokens. Rows: temperature 0 and 1, and G = 1, 8,
# 32 samples per prompt with --max-seqs G (G sequences decode together); with drafts,
# --speculative-max-seqs G (drafts in every step, whatever the engine's default). One thread.
# Environment: GRPO_SPEC_REPS (default 3), GRPO_SPEC_SEQS (default "1 8 32").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${1:-build}
model=${2:-}
out=${3:-bench/results/speculative.json}
reps=${GRPO_SPEC_REPS:-3}
seqs=${GRPO_SPEC_SEQS:-1 8 32}
grpo="$build/apps/grpo"
work="$build/speculative"
mkdir -p "$work"
cmake --build "$build" --target grpo >/dev/null

if [ -z "$model" ]; then
  model="$work/model"
  if [ ! -f "$model/model.safetensors" ]; then
    python3 - bench/configs/dsv3-small.json "$work/model.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m.update(vocab_size=262, num_nextn_predict_layers=1)
json.dump(m, open(sys.argv[2], "w"), indent=2)
PY
    echo "speculative: pretraining $model (dsv3-small + 1 MTP module, digit chains, 600 steps)" >&2
    "$grpo" pretrain --config configs/tiny-zero.yaml --quiet pretrain.steps=600 pretrain.batch_size=8 \
      pretrain.mtp_weight=0.3 pretrain.model="$work/model.json" pretrain.out_dir="$model" \
      pretrain.log_dir="$work/pretrain-logs" >"$work/pretrain.json"
  fi
fi
python3 - configs/tiny-zero/heldout.jsonl "$work/prompts.jsonl" <<'PY'
import json, sys
with open(sys.argv[2], "w") as out:
    for i, line in enumerate(open(sys.argv[1])):
        if i == 16:
            break
        out.write(json.dumps({"prompt": "User: %s\nAssistant: <think>" % json.loads(line)["prompt"]}) + "\n")
PY

rows="$work/rows.jsonl"
: >"$rows"
for temperature in 0 1; do
  for g in $seqs; do
    for rep in $(seq "$reps"); do
      for mode in drafts plain; do
        flags="--speculative --speculative-max-seqs $g"
        [ "$mode" = plain ] && flags=""
        err=$("$grpo" generate --model "$model" --prompts "$work/prompts.jsonl" --n "$g" --max-seqs "$g" \
          --temperature "$temperature" --seed 1 --max-new-tokens 32 --threads 1 --timing $flags 2>&1 \
          >"$work/out.$mode")
        echo "$err" | python3 -c '
import json, re, sys
err = sys.stdin.read()
tps = re.search(r"([0-9.]+) tokens/s", err)
kept = re.search(r"MTP drafts kept ([0-9]+) of ([0-9]+)", err)
if not tps:
    sys.exit("speculative: no timing line in: " + err)
print(json.dumps({"temperature": float(sys.argv[1]), "sequences": int(sys.argv[2]), "mode": sys.argv[3],
                  "tokens_per_s": float(tps.group(1)),
                  "drafts": int(kept.group(2)) if kept else 0, "kept": int(kept.group(1)) if kept else 0}))
' "$temperature" "$g" "$mode" >>"$rows"
      done
      cmp -s "$work/out.drafts" "$work/out.plain" || {
        echo "speculative: completions differ with and without drafts (T=$temperature, G=$g)" >&2
        exit 1
      }
    done
  done
done
python3 - "$rows" "$out" "$model" "$(cat /proc/loadavg | cut -d' ' -f1)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
table = []
print("grpo generate, tokens/s, best of each (completions identical with and without drafts); load %s" % sys.argv[4])
print("%-4s %-4s %10s %12s %7s %12s" % ("T", "G", "plain", "with drafts", "ratio", "drafts kept"))
for key in sorted({(r["temperature"], r["sequences"]) for r in rows}):
    plain = max(r["tokens_per_s"] for r in rows if (r["temperature"], r["sequences"]) == key and r["mode"] == "plain")
    mine = [r for r in rows if (r["temperature"], r["sequences"]) == key and r["mode"] == "drafts"]
    best = max(r["tokens_per_s"] for r in mine)
    kept = sum(r["kept"] for r in mine) / max(1, sum(r["drafts"] for r in mine))
    print("%-4g %-4d %10.1f %12.1f %6.2fx %11.0f %%" % (key[0], key[1], plain, best, best / plain, 100 * kept))
    table.append({"temperature": key[0], "sequences": key[1], "plain_tokens_per_s": plain,
                  "speculative_tokens_per_s": best, "ratio": best / plain, "drafts_kept": kept})
import os
os.makedirs(os.path.dirname(sys.argv[2]) or ".", exist_ok=True)
json.dump({"model": sys.argv[3], "rows": table, "runs": rows}, open(sys.argv[2], "w"), indent=2)
print("wrote", sys.argv[2])
PY
