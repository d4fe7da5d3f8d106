#!/usr/bin/env bash
# `make demo`: the pipeline end to end on the built-in default, on CPU.
# Until the RL loop (`grpo train`) lands, the demo makes a small random DeepSeek-V3-architecture
# model, renders GSM8K questions with the R1-Zero template, samples answers with the latent-cache
# generator, and scores them through a real reward server over gRPC. (A random model earns
# reward 0: the point is the plumbing; learning comes with `grpo train`.)
set -euo pipefail
BUILD=${1:-build}
GRPO=$BUILD/apps/grpo
PY=/usr/bin/python3
RUN=runs/demo
mkdir -p $RUN
PORT=${DEMO_PORT:-50917}

echo "== 1. a random DeepSeek-V3-architecture checkpoint (bench/configs/dsv3-small.json)"
$GRPO init-model --config bench/configs/dsv3-small.json --out $RUN/model --seed 0 --dtype bf16
cp tests/data/bpe-tokenizer/tokenizer.json $RUN/model/

echo "== 2. reward server on 127.0.0.1:$PORT"
$GRPO reward-server --config configs/reward.yaml server.address=127.0.0.1:$PORT > $RUN/reward-server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening $RUN/reward-server.log 2>/dev/null && break; sleep 0.2; done

echo "== 3. R1-Zero prompts for 3 GSM8K questions"
head -n 3 tests/data/math/gsm8k_test.jsonl | $PY -c '
import json, sys
for line in sys.stdin:
    print(json.dumps({"prompt": json.loads(line)["question"]}))' \
  | $GRPO chat-template --template r1-zero > $RUN/prompts.jsonl

echo "== 4. sample and score"
: > $RUN/scored.jsonl
i=0
while IFS= read -r line; do
  i=$((i + 1))
  text=$(printf '%s' "$line" | $PY -c 'import json,sys; print(json.load(sys.stdin)["text"], end="")')
  answer=$(sed -n "${i}p" tests/data/math/gsm8k_test.jsonl | $PY -c 'import json,sys; print(json.load(sys.stdin)["answer"], end="")')
  out=$($GRPO generate --model $RUN/model --tokenizer $RUN/model/tokenizer.json --prompt "$text" \
          --max-new-tokens 48 --temperature 0.8 --seed $i)
  completion=$(printf '%s' "$out" | $PY -c 'import json,sys; print(json.load(sys.stdin)["text"], end="")')
  printf '%s\n' "$(COMPLETION="$completion" ANSWER="$answer" $PY -c 'import json,os; print(json.dumps({"completion": os.environ["COMPLETION"], "reference": os.environ["ANSWER"]}))')" \
    | $GRPO verify --verifier r1 --server 127.0.0.1:$PORT | tee -a $RUN/scored.jsonl
done < $RUN/prompts.jsonl
echo "== done: $RUN (model, prompts.jsonl, scored.jsonl, reward-server.log)"
