#!/usr/bin/env python3
"""The checking and reporting half of bench/llamacpp/compare.sh (plain Python 3, standard library
only). Two commands:

  python report.py check --ids IDS.jsonl --grpo GRPO.jsonl [--grpo-bf16 GRPO16.jsonl]
                         --greedy-grpo GEN.jsonl --llama NAME=LLAMA.jsonl ... --gate NAME
                         [--max-gap 1e-4] --out CHECK.json
      The conversion check: per llama.cpp run (llama_run.py logprobs), the mean and largest
      |log p| difference from `grpo logprobs --dtype fp32` on the same token sequences, and at how
      many of grpo's greedy steps (`grpo generate --temperature 0`, the last line of IDS being its
      prompt + continuation) llama.cpp's argmax is grpo's token. Exits 1 when the --gate run (F32
      weights, f32 cache, flash attention off: every op in fp32) differs by more than --max-gap or
      misses a greedy token: then the GGUF is not grpo's model and timing it means nothing.

  python report.py table --grpo T=FILE.json ... --llama T=FILE.json ... --check CHECK.json
                         --out OUT.json
      Best of the repetitions per (threads, sequences, dtype class) on each side; prints the table
      (grpo tok/s, llama.cpp tok/s, grpo / llama.cpp) with the CPU model name and the load averages
      seen during the runs, and writes everything (raw repetitions included) as JSON.

Pairs: grpo fp32 with llama.cpp F32, bf16 with BF16, fp8 (FP8 e4m3 weights, bf16 compute) with
Q8_0 (8-bit integer weights in blocks of 32 with an f16 scale).
"""
import argparse
import json
import os
import subprocess
import sys

PAIRS = [("fp32", "F32"), ("bf16", "BF16"), ("fp8", "Q8_0")]


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def gaps(ref, other):
    """|log p| differences, token by token, over all lines."""
    return [abs(x - y) for r, o in zip(ref, other) for x, y in zip(r["logprobs"], o["logprobs"])]


def cmd_check(a):
    grpo = read_jsonl(a.grpo)
    grpo_greedy = read_jsonl(a.greedy_grpo)[0]["output_ids"]
    n_prompt = len(read_ids(a.ids)[-1]) - len(grpo_greedy)
    out = {"sequences": len(grpo), "reference": "grpo logprobs --dtype fp32", "files": {}}
    if a.grpo_bf16:  # for scale: what bf16 compute alone does to grpo's own log-probs
        g = gaps(grpo, read_jsonl(a.grpo_bf16))
        out["grpo_bf16_vs_fp32"] = {"logprob_abs_diff_mean": sum(g) / len(g), "logprob_abs_diff_max": max(g)}
        print(f"conversion check: grpo bf16 vs grpo fp32 (for scale): log-prob |diff| mean {sum(g) / len(g):.3g}, "
              f"max {max(g):.3g}", flush=True)
    ok = True
    for spec in a.llama:
        name, path = spec.split("=", 1)
        ll = read_jsonl(path)
        g = gaps(grpo, ll)
        # The last line of the ids file is a prompt + grpo's greedy continuation of it: llama.cpp's
        # argmax after each prefix should be the token grpo picked next (teacher-forced greedy).
        picks = ll[-1]["argmax"][n_prompt - 1:-1]
        agree = sum(int(p == t) for p, t in zip(picks, grpo_greedy))
        first_diff = next((i for i, (p, t) in enumerate(zip(picks, grpo_greedy)) if p != t), None)
        rec = {"logprob_abs_diff_mean": sum(g) / len(g), "logprob_abs_diff_max": max(g), "logprobs_compared": len(g),
               "greedy_agree": agree, "greedy_tokens": len(grpo_greedy), "greedy_first_disagreement": first_diff}
        out["files"][name] = rec
        print(f"conversion check: llama.cpp {name:<22s} vs grpo fp32: log-prob |diff| mean "
              f"{rec['logprob_abs_diff_mean']:.3g}, max {rec['logprob_abs_diff_max']:.3g} over {len(g)} tokens; "
              f"argmax = grpo's greedy token at {agree}/{len(grpo_greedy)} steps", flush=True)
        if name == a.gate and (rec["logprob_abs_diff_max"] > a.max_gap or agree != len(grpo_greedy)):
            ok = False
    out["gate"] = {"file": a.gate, "max_gap": a.max_gap, "greedy_must_agree": True, "passed": ok}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=2)
    if not ok:
        print(f"conversion check FAILED: llama.cpp {a.gate} differs from grpo fp32 by more than {a.max_gap} in a "
              "log-prob, or does not follow grpo's greedy tokens: the GGUF is not grpo's model", file=sys.stderr)
        sys.exit(1)


def read_ids(path):
    return [x["ids"] for x in read_jsonl(path)]


def cpu_name():
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def cmd_table(a):
    # grpo: {threads: [bench_rollout json per repetition]}; llama: {threads: [llama_run json per rep]}
    grpo, llama = {}, {}
    for spec in a.grpo:
        t, path = spec.split("=", 1)
        with open(path) as f:
            grpo.setdefault(int(t), []).append(json.load(f))
    for spec in a.llama:
        t, path = spec.split("=", 1)
        with open(path) as f:
            llama.setdefault(int(t), []).append(json.load(f))
    with open(a.check) as f:
        check = json.load(f)
    loads = [float(x) for x in a.load]
    rows = []
    for t in sorted(grpo):
        seqs = sorted({r["concurrent_sequences"] for run in grpo[t] for r in run["concurrency"]})
        for n in seqs:
            for g, l in PAIRS:
                gs = [r[f"decode_{g}_tokens_per_s"] for run in grpo[t] for r in run["concurrency"]
                      if r["concurrent_sequences"] == n]
                gp = [r[f"prefill_{g}_tokens_per_s"] for run in grpo[t] for r in run["concurrency"]
                      if r["concurrent_sequences"] == n]
                lr = [r for run in llama[t] for r in run["rows"] if r["gguf"] == l and r["concurrent_sequences"] == n]
                ls = [r["decode_tokens_per_s"] for r in lr]
                # share of llama.cpp's decode time spent in Python (batch filling) and sampling
                host = [x["decode_fill_and_sample_s"] / x["decode_s"] for r in lr for x in r["repetitions"]]
                lp = [r["prefill_tokens_per_s"] for r in lr]
                rows.append({"threads": t, "concurrent_sequences": n, "grpo_dtype": g, "llama_cpp_type": l,
                             "llama_cpp_kv_cache": lr[0]["kv_cache_type"],
                             "grpo_decode_tokens_per_s": max(gs), "llama_cpp_decode_tokens_per_s": max(ls),
                             "decode_ratio_grpo_over_llama_cpp": max(gs) / max(ls),
                             "grpo_prefill_tokens_per_s": max(gp), "llama_cpp_prefill_tokens_per_s": max(lp),
                             "prefill_ratio_grpo_over_llama_cpp": max(gp) / max(lp),
                             "llama_cpp_decode_fill_and_sample_share_max": max(host),
                             "grpo_decode_all_reps": gs, "llama_cpp_decode_all_reps": ls,
                             "grpo_prefill_all_reps": gp, "llama_cpp_prefill_all_reps": lp})
    cpu = cpu_name()
    grpo_loads = [run.get(k) for runs in grpo.values() for run in runs for k in ("load_average_start", "load_average_end")]
    reps = len(next(iter(grpo.values())))
    print(f"\ngrpo rollout engine vs llama.cpp (llama-cpp-python {next(iter(llama.values()))[0]['llama_cpp_python']}), "
          f"dsv3-small random weights, 64-token prompts, 32 new tokens, temperature 1")
    print(f"CPU: {cpu}, {os.cpu_count()} cores; load average (1 min) over the run: "
          f"min {min(loads):.2f}, max {max(loads):.2f}; best of {reps} alternating repetitions per side")
    if loads and max(loads) > (os.cpu_count() or 1):
        print(f"WARNING: the load average (this benchmark included) rose above the {os.cpu_count()} cores: "
              "other work shared them, so the figures (above all those with more than one thread) measure "
              "the neighbours too")
    for name, r in check["files"].items():
        print(f"conversion check: llama.cpp {name} vs grpo fp32 log-probs |diff| max {r['logprob_abs_diff_max']:.3g}, "
              f"mean {r['logprob_abs_diff_mean']:.3g} ({r['logprobs_compared']} tokens); greedy "
              f"{r['greedy_agree']}/{r['greedy_tokens']}")
    hdr = f"{'threads':>7} {'seqs':>5} {'grpo':>5} {'llama.cpp':>10} {'kv':>5} | {'grpo decode':>12} {'llama decode':>13} {'grpo/llama':>11} | {'grpo prefill':>13} {'llama prefill':>14} {'grpo/llama':>11}"
    print(hdr)
    print(f"{'':>7} {'':>5} {'':>5} {'':>10} {'cache':>5} | {'tok/s':>12} {'tok/s':>13} {'':>11} | {'tok/s':>13} {'tok/s':>14} {'':>11}")
    for r in rows:
        print(f"{r['threads']:>7} {r['concurrent_sequences']:>5} {r['grpo_dtype']:>5} {r['llama_cpp_type']:>10} "
              f"{r['llama_cpp_kv_cache']:>5} | {r['grpo_decode_tokens_per_s']:>12.1f} {r['llama_cpp_decode_tokens_per_s']:>13.1f} "
              f"{r['decode_ratio_grpo_over_llama_cpp']:>10.2f}x | {r['grpo_prefill_tokens_per_s']:>13.1f} "
              f"{r['llama_cpp_prefill_tokens_per_s']:>14.1f} {r['prefill_ratio_grpo_over_llama_cpp']:>10.2f}x")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"cpu": cpu, "cores": os.cpu_count(), "load_average_samples": loads,
                   "grpo_bench_load_averages": grpo_loads, "repetitions": reps, "rows": rows,
                   "conversion_check": check, "grpo_raw": grpo, "llama_cpp_raw": llama,
                   "pairs": {"fp32": "F32", "bf16": "BF16", "fp8": "Q8_0"}}, f, indent=2)
    share = max(r["llama_cpp_decode_fill_and_sample_share_max"] for r in rows)
    print(f"llama.cpp decode time outside llama_decode (Python batch filling + sampling): at most {100 * share:.1f} %")
    print(f"\nwrote {a.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--ids", required=True, help="the ids JSONL both sides read")
    c.add_argument("--grpo", required=True, help="grpo logprobs output")
    c.add_argument("--greedy-grpo", required=True, help="grpo generate --temperature 0 output")
    c.add_argument("--grpo-bf16", help="grpo logprobs --dtype bf16 output (reported for scale)")
    c.add_argument("--llama", action="append", required=True, help="NAME=llama_run.py logprobs output")
    c.add_argument("--gate", required=True, help="the NAME that must match grpo fp32")
    c.add_argument("--max-gap", type=float, default=1e-4, help="largest |log p| difference allowed for --gate")
    c.add_argument("--out", required=True)
    t = sub.add_parser("table")
    t.add_argument("--grpo", action="append", required=True, help="THREADS=bench_rollout json")
    t.add_argument("--llama", action="append", required=True, help="THREADS=llama_run.py bench json")
    t.add_argument("--check", required=True)
    t.add_argument("--load", action="append", default=[], help="1-minute load averages sampled during the run")
    t.add_argument("--out", required=True)
    a = ap.parse_args()
    cmd_check(a) if a.cmd == "check" else cmd_table(a)


if __name__ == "__main__":
    main()
