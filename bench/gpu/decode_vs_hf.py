"""Decode tokens/s of grpo's rollout engine beside HF transformers' generate, on one checkpoint, in one run.

The checkpoint is `grpo init-model` of --config (default bench/configs/dsv3-4b.json: the DeepSeek-V3
architecture at 4.29 B parameters, 0.775 B active) with random weights in bf16. For each batch size,
the same random prompts (--prompt-len tokens) are continued greedily by --new-tokens tokens:

  grpo   `grpo generate --timing --device D`: tokens generated / generation time (prefill included,
         model load excluded), read from its stderr line;
  hf     AutoModelForCausalLM.generate(min_new_tokens = max_new_tokens, do_sample False) on the
         same device and dtype, timed around the call (after one warm-up generate).

and the share of sequences whose greedy tokens agree with HF's (fp32: all, unless a near-tie;
bf16 rounds differently and drifts).

On a GPU it also reports batch-1 decode as a fraction of the HBM roofline: active parameter bytes
per token × grpo's batch-1 tokens/s ÷ the device-to-device copy bandwidth measured here.
Prints one table and writes --out (JSON).

  python3 bench/gpu/decode_vs_hf.py --grpo build/apps/grpo [--device cuda] [--batches 1,32,128]
      [--config FILE] [--dtype bf16] [--prompt-len 128] [--new-tokens 128] [--model-dir DIR] [--out FILE]
"""
import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import time

import torch
import transformers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grpo", required=True)
    p.add_argument("--config", default=os.path.join(ROOT, "bench/configs/dsv3-4b.json"))
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--batches", default="1,32,128")
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--model-dir", default="", help="checkpoint directory, made with init-model when missing "
                   "(default ~/.cache/grpo/bench-models/CONFIG-DTYPE)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default=os.path.join(ROOT, "bench/results/gpu_decode.json"))
    a = p.parse_args()
    a.batches = [int(b) for b in a.batches.split(",") if b]
    if not a.batches or min(a.batches) < 1 or a.prompt_len < 1 or a.new_tokens < 2:
        p.error("--batches needs sizes >= 1, --prompt-len >= 1, --new-tokens >= 2")
    return a


def grpo_rate(a, model, prompts):
    """grpo's generated tokens/s for these prompts (one `grpo generate` run)."""
    b = len(prompts)
    tokens = b * (a.prompt_len + a.new_tokens)
    cmd = [a.grpo, "generate", "--model", model, "--prompts", "-", "--max-new-tokens", str(a.new_tokens),
           "--temperature", "0", "--dtype", a.dtype, "--device", a.device, "--timing", "--threads", str(a.threads),
           "--max-seqs", str(b), "--max-batched-tokens", str(max(2048, b * a.prompt_len)),
           "--page-size", "64", "--num-pages", str(math.ceil(tokens / 64) + b + 16)]
    stdin = "".join(json.dumps({"prompt_ids": p}) + "\n" for p in prompts)
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"decode_vs_hf: {' '.join(cmd)} exited with {r.returncode}:\n{r.stderr}")
    m = re.search(r"(\d+) tokens generated in ([0-9.e+-]+) s", r.stderr)
    if not m:
        sys.exit(f"decode_vs_hf: no timing line in grpo's stderr:\n{r.stderr}")
    outputs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    outputs.sort(key=lambda o: o["prompt_index"])
    return int(m.group(1)) / float(m.group(2)), [o["output_ids"] for o in outputs]


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def hf_rate(model, prompts, a):
    ids = torch.tensor(prompts, dtype=torch.long, device=a.device)
    kw = dict(max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, do_sample=False, pad_token_id=0)
    sync(a.device)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), **kw)
    sync(a.device)
    dt = time.perf_counter() - t0
    generated = (out.shape[1] - ids.shape[1]) * ids.shape[0]
    return generated / dt, out[:, ids.shape[1]:].tolist()


def copy_bandwidth(device):
    """Device-to-device copy bandwidth in bytes/s (read + write), best of 5 copies of 1 GiB."""
    n = 1 << 30
    src = torch.empty(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        sync(device)
        t0 = time.perf_counter()
        dst.copy_(src)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n / best


def active_parameters(c):
    h, v, layers, heads = c["hidden_size"], c["vocab_size"], c["num_hidden_layers"], c["num_attention_heads"]
    qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    q = h * c["q_lora_rank"] + c["q_lora_rank"] * heads * qk if c.get("q_lora_rank") else h * heads * qk
    kv = h * (c["kv_lora_rank"] + c["qk_rope_head_dim"]) + c["kv_lora_rank"] * heads * (
        c["qk_nope_head_dim"] + c["v_head_dim"])
    attn = q + kv + heads * c["v_head_dim"] * h
    expert = 3 * h * c["moe_intermediate_size"]
    dense = c["first_k_dense_replace"]
    moe = (c["num_experts_per_tok"] + c["n_shared_experts"]) * expert + c["n_routed_experts"] * h
    return 2 * v * h + layers * attn + dense * 3 * h * c["intermediate_size"] + (layers - dense) * moe


def main():
    a = parse_args()
    config = json.load(open(a.config))
    name = os.path.basename(a.config).replace(".json", "")  # the checkpoint is kept out of the tree (GBs)
    model_dir = a.model_dir or os.path.expanduser(f"~/.cache/grpo/bench-models/{name}-{a.dtype}")
    if not os.path.exists(os.path.join(model_dir, "config.json")):
        r = subprocess.run([a.grpo, "init-model", "--config", a.config, "--out", model_dir, "--dtype", a.dtype],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"decode_vs_hf: init-model failed:\n{r.stderr}")
    rng = random.Random(1)
    prompts = [[rng.randrange(3, config["vocab_size"]) for _ in range(a.prompt_len)] for _ in range(max(a.batches))]

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    hf = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(a.device).eval()
    hf_rate(hf, prompts[:1], argparse.Namespace(**{**vars(a), "new_tokens": 2}))  # warm-up

    rows = []
    for b in a.batches:
        ours, ours_ids = grpo_rate(a, model_dir, prompts[:b])
        theirs, hf_ids = hf_rate(hf, prompts[:b], a)
        # Greedy continuations that agree with HF's token for token (up to grpo's stop at EOS).
        same = sum(o == h[:len(o)] for o, h in zip(ours_ids, hf_ids)) / b
        rows.append({"batch": b, "grpo_tokens_per_s": ours, "hf_tokens_per_s": theirs, "ratio": ours / theirs,
                     "same_greedy_tokens": same})
    name = torch.cuda.get_device_name(a.device) if a.device.startswith("cuda") else "cpu"
    result = {"device": name, "config": os.path.relpath(a.config, ROOT), "dtype": a.dtype,
              "prompt_len": a.prompt_len, "new_tokens": a.new_tokens, "torch": torch.__version__,
              "transformers": transformers.__version__, "rows": rows}
    print(f"decode, {os.path.basename(a.config)} ({a.dtype}, {a.prompt_len}-token prompts, {a.new_tokens} new tokens) "
          f"on {name}")
    print(f"{'batch':>6} {'grpo tok/s':>12} {'HF tok/s':>12} {'grpo / HF':>10} {'same tokens':>12}")
    for r in rows:
        print(f"{r['batch']:>6} {r['grpo_tokens_per_s']:>12.1f} {r['hf_tokens_per_s']:>12.1f} {r['ratio']:>9.2f}x "
              f"{100 * r['same_greedy_tokens']:>11.0f}%")
    if a.device.startswith("cuda") and 1 in a.batches:
        bw = copy_bandwidth(a.device)
        active_bytes = active_parameters(config) * (2 if a.dtype == "bf16" else 4)
        batch1 = next(r for r in rows if r["batch"] == 1)["grpo_tokens_per_s"]
        result["roofline"] = {"copy_bandwidth_gb_s": bw / 1e9, "active_bytes_per_token": active_bytes,
                              "batch1_fraction": batch1 * active_bytes / bw}
        print(f"batch-1 decode: {batch1 * active_bytes / 1e9:.1f} GB/s of weights read, "
              f"{100 * batch1 * active_bytes / bw:.1f} % of the measured copy bandwidth ({bw / 1e9:.0f} GB/s)")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    json.dump(result, open(a.out, "w"), indent=2)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
