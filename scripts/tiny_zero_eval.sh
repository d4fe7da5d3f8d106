#!/usr/bin/env bash
# Held-out accuracy of a tiny-zero model (configs/tiny-zero.yaml), sampled at temperature 1 and
# scored with the `r1` reward composite (math accuracy on <answer>, format, overlong), two ways:
#   free   the prompt as the policy sees it ("User: 7 5 3\nAssistant: <think>")
#   steps  the step-by-step style forced: the prompt ends with the first step ("7" for 7 5 3)
# Prints one JSON line per way: accuracy, mean response length (tokens), the share of step-style
# responses (not opening with </think>) and of well-formed ones.
#   usage: scripts/tiny_zero_eval.sh MODEL_DIR OUT_DIR [PROMPTS=200] [SAMPLES=8]
set -euo pipefail
MODEL=$1
OUT=$2
N=${3:-200}
G=${4:-8}
GRPO=${BUILD:-build}/apps/grpo
PY=/usr/bin/python3
THREADS=${THREADS:-2}
mkdir -p "$OUT"

# TASK_ARGS: the task options of the config, e.g. "--min-term 10 --max-term 99 --min-terms 3 --max-terms 4"
$GRPO synth-task --task digit_chains --split heldout --n "$N" --seed 2 ${TASK_ARGS:-} --out "$OUT/heldout.jsonl" 2>/dev/null
$GRPO chat-template --template configs/chat_templates/tiny-zero.yaml < "$OUT/heldout.jsonl" > "$OUT/prompts_free.jsonl"
# The forced prefix of each problem: its first step ("7 5 3" -> "7", as first_step_prefix).
$PY - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
problems = [json.loads(l) for l in open(f"{out}/heldout.jsonl")]
prompts = [json.loads(l)["text"] for l in open(f"{out}/prompts_free.jsonl")]
with open(f"{out}/prefix_free.jsonl", "w") as free, open(f"{out}/prefix_steps.jsonl", "w") as steps, \
     open(f"{out}/prompts_steps.jsonl", "w") as forced:
    for p, text in zip(problems, prompts):
        prefix = p["prompt"].split(" ")[0]
        free.write(json.dumps({"prefix": "", "answer": p["answer"]}) + "\n")
        steps.write(json.dumps({"prefix": prefix, "answer": p["answer"]}) + "\n")
        forced.write(json.dumps({"text": text + prefix}) + "\n")
PYEOF

for mode in free steps; do
  $GRPO generate --model "$MODEL" --tokenizer "$MODEL" --prompts "$OUT/prompts_$mode.jsonl" --n "$G" \
    --temperature 1 --max-new-tokens 64 --seed 1 --threads "$THREADS" > "$OUT/generated_$mode.jsonl"
  # Completion = forced prefix + sampled text; its length counts the sampled tokens only.
  $PY - "$OUT" "$mode" <<'PYEOF' > "$OUT/verify_in_$mode.jsonl"
import json, sys
out, mode = sys.argv[1], sys.argv[2]
meta = [json.loads(l) for l in open(f"{out}/prefix_{mode}.jsonl")]
for line in open(f"{out}/generated_{mode}.jsonl"):
    g = json.loads(line)
    m = meta[g["prompt_index"]]
    print(json.dumps({"id": [g["prompt_index"], g["sample"]], "completion": m["prefix"] + g["text"],
                      "reference": m["answer"], "completion_tokens": len(g["output_ids"])}))
PYEOF
  $GRPO verify --verifier r1 --config configs/reward.yaml --options '{"format": {"prompt_opens_think": true}}' \
    < "$OUT/verify_in_$mode.jsonl" > "$OUT/scored_$mode.jsonl"
  $PY - "$OUT" "$mode" <<'PYEOF'
import json, sys
out, mode = sys.argv[1], sys.argv[2]
ins = [json.loads(l) for l in open(f"{out}/verify_in_{mode}.jsonl")]
scored = [json.loads(l) for l in open(f"{out}/scored_{mode}.jsonl")]
n = len(scored)
steps = [not i["completion"].startswith("</think>") for i in ins]
correct = [bool(s.get("correct")) for s in scored]
acc_of = lambda mask: (sum(c for c, k in zip(correct, mask) if k) / max(1, sum(mask)))
print(json.dumps({
    "mode": mode, "completions": n,
    "accuracy": round(sum(correct) / n, 4),
    "mean_length_tokens": round(sum(i["completion_tokens"] for i in ins) / n, 2),
    "step_style_share": round(sum(steps) / n, 4),
    "accuracy_step_style": round(acc_of(steps), 4),
    "accuracy_direct_style": round(acc_of([not s for s in steps]), 4),
    "format_ok_share": round(sum(s.get("components", {}).get("format", 0) > 0 for s in scored) / n, 4),
    "mean_reward": round(sum(s.get("reward", 0) for s in scored) / n, 4)}))
PYEOF
done
