#!/usr/bin/env python3
"""llama.cpp's side of bench/llamacpp/compare.sh, through llama-cpp-python's low-level C API
(llama_cpp.llama_batch_init / llama_decode / llama_sampler_*), on GGUF files written by
to_gguf.py. Two commands:

  python llama_run.py bench --gguf F32=a.gguf --gguf BF16=b.gguf ... --threads 1 --seqs 1,32
                            [--reps 1] [--prompt-len 64] [--new-tokens 32] --out FILE.json
      bench_rollout's workload: S concurrent sequences (one sequence id each) with 64-token
      prompts of random ids in [2, 3000) -- the same ids bench_rollout feeds (bench_models.h's
      prompt_of xorshift, seeds 1..S) -- and 32 new tokens each, sampled at temperature 1 by
      llama.cpp's dist sampler. Prefill is one llama_decode of all prompts plus the sampling of
      each sequence's first token; decode is the following steps, one llama_decode of S tokens
      plus S samples each. Decode tokens/s = tokens sampled in decode steps / time of those steps
      (prefill timed separately). Best of --reps repetitions, each on a cleared cache. The JSON
      also gives the part of the decode time spent outside llama_decode (filling the batch from
      Python, and sampling).

  python llama_run.py logprobs --gguf FILE --ids-jsonl FILE [--threads 2] [--cache f32]
      For each {"ids": [...]} line: log p(t_i | t_<i) for i >= 1 under the GGUF (the output format
      of `grpo logprobs`), plus "argmax" (the most likely next token after each prefix).
      compare.sh diffs these against grpo's (report.py check) to check the conversion.

KV cache type: --cache f32|f16|bf16 per file as NAME=PATH:CACHE (default: f32 for F32 files,
f16 -- llama.cpp's default -- otherwise). Everything else is llama.cpp's default context
(flash attention auto, non-unified per-sequence KV streams), n_threads = n_threads_batch = T,
n_batch = n_ubatch = all prompt tokens (the whole prefill in one step, as bench_rollout's engine
does), CPU only. Runs in bench/llamacpp/env.sh's environment.
"""
import argparse
import ctypes
import json
import math
import os
import sys
import time

import numpy as np
import llama_cpp as L

GGML_TYPE = {"f32": 0, "f16": 1, "bf16": 30}  # ggml.h's enum ggml_type
FLASH_ATTN = {"auto": L.LLAMA_FLASH_ATTN_TYPE_AUTO, "on": L.LLAMA_FLASH_ATTN_TYPE_ENABLED,
              "off": L.LLAMA_FLASH_ATTN_TYPE_DISABLED}
LOG_LINES = []


@L.llama_log_callback
def _log(level, text, user_data):
    """Keep llama.cpp's log (printed only when something fails); warnings and errors to stderr."""
    s = text.decode("utf-8", "replace")
    LOG_LINES.append(s)
    if level in (3, 4):  # GGML_LOG_LEVEL_WARN, _ERROR
        sys.stderr.write("llama.cpp: " + s + ("" if s.endswith("\n") else "\n"))


def prompt_of(length, vocab, seed):
    """bench/bench_models.h's prompt_of: ids in [2, vocab) from an xorshift64 stream."""
    m = (1 << 64) - 1
    x = (seed * 0x9E3779B97F4A7C15 + 1) & m
    out = []
    for _ in range(length):
        x ^= (x << 13) & m
        x ^= x >> 7
        x ^= (x << 17) & m
        out.append(2 + x % (vocab - 2))
    return out


def load_model(path):
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = 0
    model = L.llama_model_load_from_file(path.encode(), mp)
    if not model:
        sys.exit(f"llama_run.py: llama.cpp could not load {path}:\n" + "".join(LOG_LINES[-30:]))
    return model


def new_context(model, n_seqs, n_ctx_per_seq, n_batch, threads, cache, flash_attn):
    cp = L.llama_context_default_params()
    cp.n_ctx = n_seqs * ((n_ctx_per_seq + 255) // 256 * 256)  # llama.cpp pads each sequence's share to 256
    cp.n_seq_max = n_seqs
    cp.n_batch = cp.n_ubatch = n_batch
    cp.n_threads = cp.n_threads_batch = threads
    cp.type_k = cp.type_v = GGML_TYPE[cache]
    cp.flash_attn_type = FLASH_ATTN[flash_attn]
    cp.no_perf = True
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        sys.exit("llama_run.py: llama_init_from_model failed:\n" + "".join(LOG_LINES[-30:]))
    return ctx


def fill(batch, entries):
    """entries: (token, pos, seq_id, want_logits) tuples."""
    for i, (tok, pos, seq, out) in enumerate(entries):
        batch.token[i] = tok
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq
        batch.logits[i] = 1 if out else 0
    batch.n_tokens = len(entries)


def decode(ctx, batch):
    rc = L.llama_decode(ctx, batch)
    if rc != 0:
        sys.exit(f"llama_run.py: llama_decode returned {rc}:\n" + "".join(LOG_LINES[-30:]))


def run_once(ctx, smpl, vocab, n_seqs, prompt_len, new_tokens):
    """One rollout of n_seqs sequences; returns prefill and decode seconds and token counts."""
    L.llama_memory_clear(L.llama_get_memory(ctx), True)
    prompts = [prompt_of(prompt_len, vocab, s + 1) for s in range(n_seqs)]
    batch = L.llama_batch_init(n_seqs * prompt_len, 0, 1)
    try:
        entries = [(t, p, s, p == prompt_len - 1) for s in range(n_seqs) for p, t in enumerate(prompts[s])]
        t0 = time.perf_counter()
        fill(batch, entries)
        decode(ctx, batch)
        # llama_sampler_sample takes the batch index of a token that asked for logits.
        last = [L.llama_sampler_sample(smpl, ctx, s * prompt_len + prompt_len - 1) for s in range(n_seqs)]
        prefill_s = time.perf_counter() - t0
        decode_s, host_s, decoded = 0.0, 0.0, 0
        for step in range(1, new_tokens):
            t0 = time.perf_counter()
            fill(batch, [(last[s], prompt_len + step - 1, s, True) for s in range(n_seqs)])
            t1 = time.perf_counter()
            decode(ctx, batch)
            t2 = time.perf_counter()
            last = [L.llama_sampler_sample(smpl, ctx, s) for s in range(n_seqs)]
            t3 = time.perf_counter()
            decode_s += t3 - t0
            host_s += (t1 - t0) + (t3 - t2)  # batch filling from Python + sampling
            decoded += n_seqs
    finally:
        L.llama_batch_free(batch)
    return {"prefill_s": prefill_s, "prefill_tokens": n_seqs * prompt_len, "decode_s": decode_s,
            "decode_tokens": decoded, "decode_fill_and_sample_s": host_s}


def parse_files(specs):
    files = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        path, _, cache = rest.partition(":")
        files.append((name, path, cache or ("f32" if name.upper() == "F32" else "f16")))
    return files


def cmd_bench(a):
    seqs = [int(s) for s in a.seqs.split(",")]
    results = []
    for name, path, cache in parse_files(a.gguf):
        model = load_model(path)
        vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
        for n in seqs:
            ctx = new_context(model, n, a.prompt_len + a.new_tokens, n * a.prompt_len, a.threads, cache,
                              a.flash_attn)
            chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(7))  # temperature 1: plain softmax draw
            reps = [run_once(ctx, chain, vocab, n, a.prompt_len, a.new_tokens) for _ in range(a.reps)]
            L.llama_sampler_free(chain)
            L.llama_free(ctx)
            dec = max(r["decode_tokens"] / r["decode_s"] for r in reps)
            pre = max(r["prefill_tokens"] / r["prefill_s"] for r in reps)
            results.append({"gguf": name, "file": os.path.basename(path), "kv_cache_type": cache,
                            "flash_attn": a.flash_attn,
                            "concurrent_sequences": n, "threads": a.threads,
                            "decode_tokens_per_s": dec, "prefill_tokens_per_s": pre, "repetitions": reps})
            print(f"llama.cpp {name:5s} cache {cache:4s} threads {a.threads} seqs {n:3d}: decode {dec:9.1f} tok/s, "
                  f"prefill {pre:9.1f} tok/s (best of {a.reps})", flush=True)
        L.llama_model_free(model)
    with open(a.out, "w") as f:
        json.dump({"llama_cpp_python": L.__version__, "prompt_tokens": a.prompt_len, "new_tokens": a.new_tokens,
                   "rows": results}, f, indent=2)


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max()
    return x - m - math.log(np.exp(x - m).sum())


def cmd_logprobs(a):
    (name, path, cache), = parse_files(["X=" + a.gguf])
    if a.cache:
        cache = a.cache
    model = load_model(path)
    vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
    with open(a.ids_jsonl) as f:
        lines = [json.loads(x)["ids"] for x in f if x.strip()]
    longest = max(len(x) for x in lines)
    ctx = new_context(model, 1, longest, longest, a.threads, cache, a.flash_attn)
    batch = L.llama_batch_init(longest, 0, 1)
    for ids in lines:
        L.llama_memory_clear(L.llama_get_memory(ctx), True)
        fill(batch, [(t, p, 0, True) for p, t in enumerate(ids)])
        decode(ctx, batch)
        lps, argmax = [], []
        for i in range(len(ids)):
            row = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(vocab,))
            ls = log_softmax(row)
            argmax.append(int(ls.argmax()))
            if i + 1 < len(ids):
                lps.append(float(ls[ids[i + 1]]))
        out = {"logprobs": lps, "argmax": argmax}
        print(json.dumps(out), flush=True)
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    L.llama_model_free(model)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--gguf", action="append", required=True, help="NAME=PATH[:CACHE], repeatable")
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--seqs", default="1,32")
    b.add_argument("--reps", type=int, default=1)
    b.add_argument("--prompt-len", type=int, default=64)
    b.add_argument("--new-tokens", type=int, default=32)
    b.add_argument("--out", required=True)
    b.add_argument("--flash-attn", choices=sorted(FLASH_ATTN), default="auto")
    p = sub.add_parser("logprobs")
    p.add_argument("--gguf", required=True)
    p.add_argument("--ids-jsonl", required=True)
    p.add_argument("--cache", choices=sorted(GGML_TYPE), help="KV cache type (default f32)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--flash-attn", choices=sorted(FLASH_ATTN), default="auto")
    a = ap.parse_args()
    L.llama_log_set(_log, ctypes.c_void_p(0))
    L.llama_backend_init()
    cmd_bench(a) if a.cmd == "bench" else cmd_logprobs(a)


if __name__ == "__main__":
    main()
