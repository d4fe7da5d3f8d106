#!/usr/bin/env python3
"""Live oracle: `grpo verify --verifier math` against Math-Verify (huggingface/math-verify 0.8).

What is checked
  The same (gold, prediction) pairs go through Math-Verify's `parse` / `verify` and through
  `grpo verify --verifier math` (one JSONL run), and the verdicts are compared:
    * suite   — tests/data/math/mathverify_cases.jsonl, Math-Verify's own test cases with their
                labels (`expected`). Math-Verify is called as its tests call it: the case's
                `match_types` pick the extraction targets (latex -> LatexExtractionConfig(
                boxed_match_priority=0), expr -> ExprExtractionConfig()), `precision` / `strict` /
                `allow_set_relation_comp` go to verify(); the 7 letter-extraction cases become
                (letter, text) pairs with StringExtractionConfig. grpo gets the same options in its
                terms (extract order, float_rounding, strict, allow_set_relation_comp,
                plain_reference), as tests/reward_math_mathverify_test.cpp maps them.
    * math500 / gsm8k — pairs built from the datasets' reference answers (tests/data/math/):
                the answer wrapped as a model writes it (\\boxed{}, "the answer is ...", the
                dataset's own worked solution) and systematic variants whose verdict is known by
                construction: equivalent rewrites (0.5 vs \\frac{1}{2}, 1,000 vs 1000, 5.0 vs 5,
                x = 5 vs 5, \\$5 vs 5, \\dfrac, \\left(x\\right)) and non-equivalent ones (off
                by one, sign, x10, a rounded repeating decimal, "+1" on an expression).
                Math-Verify gets the gold as `$...$` and the completion with parse()'s default
                targets; grpo gets the bare reference and the completion with its default options.
  Every disagreement is listed with gold, prediction, both verdicts and who is right: the label
  (the suite's `expected`, or the variant's construction) decides, else "undecided".

Pass criterion (exit status 0): on every labelled pair where grpo and Math-Verify disagree, grpo
gives the labelled verdict, and grpo scores every line. Otherwise exit 1, listing grpo's wrong
verdicts. Suite cases reviewed by hand are in tests/oracles/mathverify_disputed.json, each with its
reason: a wrong label is corrected; a known grpo gap is listed, not failed, until grpo gets it right
(then the oracle fails so the entry is removed). A missing Python package or a failing grpo run is also exit 1 (never a skip).

Runs as `ctest -R oracle_mathverify` (a deterministic subset of the datasets: every 2nd MATH-500
row, every 5th GSM8K row; about half a minute on 2 cores), or by hand:
    python3 tests/oracles/mathverify_oracle.py --grpo build/apps/grpo [--verbose]
    python3 tests/oracles/mathverify_oracle.py --grpo build/apps/grpo --bench   # all rows; prints the
        bench table and writes bench/results/mathverify_agreement.json (or --json PATH)
(with the Python of the project's environment, scripts/pyenv.sh).
"""
import argparse
import ast
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from fractions import Fraction

DEPS_HINT = "run 'make deps' (scripts/pyenv.sh builds the project's environment from python/requirements.txt)"

try:
    import math_verify
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, StringExtractionConfig, parse, verify
except ImportError as e:  # an oracle is never skipped silently
    print(f"missing Python package '{(e.name or 'math_verify').split('.')[0]}': {DEPS_HINT}", file=sys.stderr)
    sys.exit(1)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data", "math")


# ---------------------------------------------------------------------------------------------
# Pairs. Each: source, id, gold, pred, label (True / False / None), mv (how Math-Verify is called),
# options (grpo verify options, None for its defaults), note.

def load_disputed():
    with open(os.path.join(HERE, "mathverify_disputed.json"), encoding="utf-8") as f:
        return {k: v for k, v in json.load(f).items() if not k.startswith("_")}


def pair(source, pid, gold, pred, label, mv, options=None, note="", mv_gold=None):
    return {"source": source, "id": pid, "gold": gold, "pred": pred, "label": label, "mv": mv,
            "options": options, "note": note, "mv_gold": gold if mv_gold is None else mv_gold}


def grpo_options_for(config):
    """Math-Verify's test options in grpo's terms (as tests/reward_math_mathverify_test.cpp)."""
    types = config.get("match_types")
    o = {}
    if isinstance(types, list):
        latex, expr = "latex" in types, "expr" in types
        if latex and not expr:
            o["extract"] = ["boxed", "answer_is", "last_latex"]
        if expr and not latex:
            o["extract"] = ["answer_is", "last_number"]
            o["plain_reference"] = True  # expr targets read numbers from plain text ("1,22" is 1.22)
    if "precision" in config:
        o["float_rounding"] = config["precision"]
    if "strict" in config:
        o["strict"] = config["strict"]
    if "allow_set_relation_comp" in config:
        o["allow_set_relation_comp"] = config["allow_set_relation_comp"]
    return o or None


def string_config_kwargs(text):
    """'StringExtractionConfig(strings=('U',))' -> {'strings': ('U',)} (literals only)."""
    call = ast.parse(text, mode="eval").body
    if not isinstance(call, ast.Call) or getattr(call.func, "id", "") != "StringExtractionConfig":
        raise ValueError(f"unexpected extraction config {text!r}")
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords}


def suite_pairs(path):
    out = []
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for i, r in enumerate(rows):
        cfg = r["config"]
        pid = f"{i}:{r['source']}"
        if r["kind"] == "verify":
            if cfg.get("call") == "compare_strings":
                mv = {"kind": "compare", "match_types": cfg["match_types"], "precision": cfg["precision"],
                      "strict": cfg["strict"], "allow_set_relation_comp": cfg["allow_set_relation_comp"]}
            else:  # verify(parse(gold), parse(pred)) with parse()'s defaults
                mv = {"kind": "default"}
            p = pair("suite", pid, r["gold"], r["pred"], bool(r["expected"]), mv, grpo_options_for(cfg))
            p["observed"] = r.get("observed")
            out.append(p)
        else:  # letter extraction: expected = parse(pred, [config]) (empty: no letter in the text)
            kwargs = string_config_kwargs(cfg["extraction_config"])
            letter = r["expected"][1] if r["expected"] else "A"
            p = pair("suite", pid, letter, r["pred"], bool(r["expected"]), {"kind": "string", "kwargs": kwargs},
                     note="letter extraction; gold = the letter Math-Verify's test expects" +
                          ("" if r["expected"] else " (none expected, so any letter is wrong)"))
            p["observed"] = bool(r.get("observed"))
            out.append(p)
    return out


# --- numbers in the datasets' answers -------------------------------------------------------

def as_number(s):
    """(Fraction, style) for '42', '-3', '0.25', '1,234', '\\frac{3}{4}', '-\\dfrac{3}{4}', '3/4'; else None."""
    t = s.replace(" ", "").replace("{,}", ",")
    m = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", t) or re.fullmatch(r"(-?)(\d+)/(\d+)", t)
    if m:
        if int(m.group(3)) == 0:
            return None
        v = Fraction(int(m.group(2)), int(m.group(3)))
        return (-v if m.group(1) else v), "frac"
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+", t):
        return Fraction(int(t.replace(",", ""))), "int"
    if re.fullmatch(r"-?\d+", t):
        return Fraction(int(t)), "int"
    if re.fullmatch(r"-?\d*\.\d+", t):
        return Fraction(Decimal(t)), "dec"
    return None


def terminating(v):
    d = v.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def dec_str(v):
    """Exact decimal text of a terminating fraction ('0.125', '-3', '2.5')."""
    sign = "-" if v < 0 else ""
    v = abs(v)
    q, r = divmod(v.numerator, v.denominator)
    if r == 0:
        return f"{sign}{q}"
    digits = ""
    while r:
        r *= 10
        digits += str(r // v.denominator)
        r %= v.denominator
    return f"{sign}{q}.{digits}"


def number_str(v, style, latex):
    """v written in the style of the dataset's answer: an integer, a terminating decimal ("dec"
    style), else a fraction (\\frac{p}{q} in LaTeX, p/q in plain text)."""
    if v.denominator == 1:
        return str(v.numerator)
    if style == "dec" and terminating(v):
        return dec_str(v)
    if latex:
        sign = "-" if v < 0 else ""
        return f"{sign}\\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"
    return f"{v.numerator}/{v.denominator}"


def latex_str(v, style):
    return number_str(v, style, latex=True)


def plain_str(v, style):
    return number_str(v, style, latex=False)


def boxed(x):
    return f"Putting it together, the final answer is $\\boxed{{{x}}}$."


def number_variants(v, style):
    """(variant name, completion, label) for a numeric answer v."""
    out = [("plain 'answer is'", f"So the answer is {plain_str(v, style)}.", True),
           ("assignment x = ...", boxed(f"x = {latex_str(v, style)}"), True)]
    if v.denominator == 1:
        out.append(("N.0", boxed(f"{v.numerator}.0"), True))
        out.append(("dollar sign", f"So she makes $\\boxed{{\\${v.numerator}}}$ in total.", True))
        if abs(v) >= 1000:
            out.append(("thousands commas", f"So the answer is {v.numerator:,}.", True))
    elif terminating(v):
        if style == "frac":
            out.append(("fraction as decimal", boxed(dec_str(v)), True))
            out.append(("\\dfrac", boxed(latex_str(v, style).replace("\\frac", "\\dfrac")), True))
        else:
            out.append(("decimal as fraction", boxed(latex_str(v, "frac")), True))
    else:
        out.append(("rounded to 2 decimals", boxed(f"{float(v):.2f}"), False))
    out.append(("off by one", boxed(latex_str(v + 1, style)), False))
    if v != 0:
        out.append(("sign flipped", boxed(latex_str(-v, style)), False))
        out.append(("x10", boxed(latex_str(v * 10, style)), False))
    return out


NOT_EXPRESSION = (",", "=", "<", ">", "\\le", "\\ge", "\\text", "\\mbox", "\\in", "\\cup", "\\cap", "\\pm", "\\mp",
                  "\\infty", ":", "\\{", "matrix", "\\\\", "^\\circ", "\\%", "\\$", "!")


def expression_like(g):
    """A single expression ('2\\sqrt{5}', 'x^3+3x-6'): adding 1 changes its value."""
    return (len(g) < 80 and not any(t in g for t in NOT_EXPRESSION) and not g.startswith(("(", "["))
            and re.search(r"[0-9a-zA-Z]", g) is not None)


def dataset_variants(gold):
    out = [("boxed", boxed(gold), True)]
    num = as_number(gold)
    if num is not None:
        out += number_variants(*num)
    else:
        out.append(("'answer is $..$'", f"Therefore, the answer is ${gold}$.", True))
        if expression_like(gold):
            out.append(("\\left( \\right)", boxed(f"\\left( {gold} \\right)"), True))
            out.append(("plus one", boxed(f"{gold} + 1"), False))
    return out


def mv_gold_text(gold):
    # Math-Verify's README: the gold answer as LaTeX between $...$ (it parses what it finds there).
    return gold if "$" in gold else f"${gold}$"


def dataset_pairs(source, path, step, row):
    """Every step-th row of a JSONL dataset: its answer's variants and its worked solution.
    row(i, r) -> (pair id, gold answer, worked solution)."""
    out = []
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    mv = {"kind": "dataset"}
    for i, r in enumerate(rows):
        if i % step:
            continue
        pid, gold, solution = row(i, r)
        for name, pred, label in dataset_variants(gold):
            out.append(pair(source, pid, gold, pred, label, mv, note=name, mv_gold=mv_gold_text(gold)))
        out.append(pair(source, pid, gold, solution, True, mv, note="the dataset's worked solution",
                        mv_gold=mv_gold_text(gold)))
    return out


def math500_pairs(path, step):
    return dataset_pairs("math500", path, step,
                         lambda i, r: (f"{i}:{r.get('id', '')}", r["expected_answer"], r["solution"]))


def gsm8k_row(i, r):
    worked, gold = r["answer"].rsplit("####", 1)
    gold = gold.strip()
    # The worked solution without the <<calculator>> annotations, ending with the answer.
    return str(i), gold, re.sub(r"<<[^>]*>>", "", worked).rstrip() + f"\nThe answer is {gold}."


def gsm8k_pairs(path, step):
    return dataset_pairs("gsm8k", path, step, gsm8k_row)


# ---------------------------------------------------------------------------------------------
# Math-Verify

def mv_verdict(p):
    """(verdict, what Math-Verify parsed from gold, from pred) for one pair. Runs in a worker
    process, where Math-Verify's signal-based timeouts work."""
    mv = p["mv"]
    g = q = []
    try:
        if mv["kind"] == "compare":
            targets = []
            for t in mv["match_types"]:
                if t == "latex":
                    targets.append(LatexExtractionConfig(boxed_match_priority=0))
                elif t == "expr":
                    targets.append(ExprExtractionConfig())
            g, q = parse(p["mv_gold"], targets), parse(p["pred"], targets)
            v = verify(g, q, float_rounding=mv["precision"], strict=mv["strict"],
                       allow_set_relation_comp=mv["allow_set_relation_comp"])
        elif mv["kind"] == "string":
            cfg = [StringExtractionConfig(**mv["kwargs"])]
            g, q = parse(p["mv_gold"], cfg), parse(p["pred"], cfg)
            v = verify(g, q)
        else:
            g, q = parse(p["mv_gold"]), parse(p["pred"])
            v = verify(g, q)
        return bool(v), str(g), str(q)
    except Exception as e:  # noqa: BLE001 — Math-Verify's own failure is a "not equal" verdict
        print(f"Math-Verify raised {type(e).__name__} on {p['source']} {p['id']}: {e}", file=sys.stderr)
        return False, str(g), str(q)


def mv_verdicts(pairs, jobs):
    if jobs <= 1:
        return [mv_verdict(p) for p in pairs]
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        return list(ex.map(mv_verdict, pairs, chunksize=32))


# ---------------------------------------------------------------------------------------------
# grpo

def grpo_verdicts(grpo, pairs):
    """(correct or None, reason) per pair from one `grpo verify --verifier math` run."""
    lines = []
    for k, p in enumerate(pairs):
        row = {"id": k, "completion": p["pred"], "reference": p["gold"]}
        if p["options"]:
            row["options"] = p["options"]
        lines.append(json.dumps(row, ensure_ascii=False))
    cmd = [grpo, "verify", "--verifier", "math"]
    try:
        r = subprocess.run(cmd, input=("\n".join(lines) + "\n").encode("utf-8"), capture_output=True, timeout=600)
    except FileNotFoundError:
        sys.exit(f"cannot run '{grpo}': no such file (build it first, or pass --grpo)")
    except subprocess.TimeoutExpired:
        sys.exit(f"'{' '.join(cmd)}' did not finish in 600 s")
    out = {}
    for line in r.stdout.decode("utf-8", errors="replace").split("\n"):
        if line.strip():
            o = json.loads(line)
            out[o.get("id")] = o
    if len(out) != len(pairs):
        sys.exit(f"'{' '.join(cmd)}' exited with {r.returncode} and answered {len(out)} of {len(pairs)} lines:\n"
                 f"{r.stderr.decode(errors='replace')}")
    res = []
    for k in range(len(pairs)):
        o = out[k]
        if "error" in o:
            res.append((None, "error: " + o["error"]))
        else:
            res.append((bool(o["correct"]), o.get("reason", "")))
    return res


# ---------------------------------------------------------------------------------------------
# Report

def short(s, limit=200):
    s = s.replace("\n", "\\n")
    return s if len(s) <= limit else s[:limit] + f"... ({len(s)} chars)"


def verdict_word(v):
    return "error" if v is None else ("equal" if v else "not equal")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grpo", required=True, help="path of the grpo binary")
    ap.add_argument("--bench", action="store_true",
                    help="all MATH-500 and GSM8K rows; write the JSON report "
                         "(default bench/results/mathverify_agreement.json)")
    ap.add_argument("--json", metavar="PATH", help="write the report as JSON here")
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="Math-Verify worker processes")
    ap.add_argument("--data", default=DATA, help="folder with mathverify_cases.jsonl, math500.jsonl, gsm8k_test.jsonl")
    ap.add_argument("--verbose", action="store_true", help="print every pair's verdicts")
    args = ap.parse_args()
    grpo = os.path.abspath(args.grpo)
    math500_step, gsm8k_step = (1, 1) if args.bench else (2, 5)

    disputed = load_disputed()
    pairs = (suite_pairs(os.path.join(args.data, "mathverify_cases.jsonl"))
             + math500_pairs(os.path.join(args.data, "math500.jsonl"), math500_step)
             + gsm8k_pairs(os.path.join(args.data, "gsm8k_test.jsonl"), gsm8k_step))

    t0 = time.time()
    g_res = grpo_verdicts(grpo, pairs)
    t_grpo = time.time() - t0
    t0 = time.time()
    mv_full = mv_verdicts(pairs, args.jobs)
    mv_res = [v for v, _, _ in mv_full]
    t_mv = time.time() - t0

    sources = ["suite", "math500", "gsm8k"]
    stats = {s: {"cases": 0, "agree": 0, "labelled": 0, "grpo_right": 0, "mv_right": 0} for s in sources}
    disagreements, grpo_wrong, both_wrong, errors, not_reproduced = [], [], [], [], []
    known_gaps, stale = [], set(disputed)
    for p in pairs:  # corrected labels, before anything is counted
        d = disputed.get(p["id"].split(":", 1)[1]) if p["source"] == "suite" else None
        if d and d["kind"] == "label_wrong":
            p["label"] = not p["label"]
            p["note"] = f"suite label corrected: {d['why']}"
    for p, (g, reason), (m, mv_gold_parsed, mv_pred_parsed) in zip(pairs, g_res, mv_full):
        st = stats[p["source"]]
        st["cases"] += 1
        st["agree"] += g == m
        label = p["label"]
        if label is not None:
            st["labelled"] += 1
            st["grpo_right"] += g == label
            st["mv_right"] += m == label
        if p.get("observed") is not None and m != p["observed"]:
            not_reproduced.append(p)
        item = dict(p, grpo=g, mv=m, reason=reason, mv_parsed=(mv_gold_parsed, mv_pred_parsed))
        if g is None:
            errors.append(item)
        key = p["id"].split(":", 1)[1] if p["source"] == "suite" else None
        if label is not None and g != label and key in disputed:
            stale.discard(key)  # still disputed: grpo still differs from the label
            if disputed[key]["kind"] == "grpo_gap":
                known_gaps.append(dict(item, note=disputed[key]["why"]))
                continue
        elif key in disputed and disputed[key]["kind"] == "label_wrong":
            stale.discard(key)  # grpo has the corrected verdict
        if g != m:
            disagreements.append(item)
            if label is not None and g != label:
                grpo_wrong.append(item)
        elif label is not None and g != label:
            both_wrong.append(item)
        if args.verbose:
            print(f"{p['source']} {p['id']} [{p['note']}] gold={short(p['gold'], 60)!r} pred={short(p['pred'], 80)!r} "
                  f"label={label} MV={m} grpo={g}")

    print(f"Math-Verify {getattr(math_verify, '__version__', '0.8')} vs grpo verify --verifier math "
          f"({'all rows' if args.bench else 'every 2nd MATH-500 row, every 5th GSM8K row'})")
    print(f"Math-Verify reproduces the verdict it recorded for its own suite on "
          f"{sum(1 for p in pairs if p.get('observed') is not None) - len(not_reproduced)}/"
          f"{sum(1 for p in pairs if p.get('observed') is not None)} cases")
    for p in not_reproduced:
        print(f"  not reproduced: {p['id']} gold={p['gold']!r} pred={short(p['pred'])!r} recorded={p['observed']}")

    print(f"\n{'source':<10} {'cases':>6} {'agree':>6} {'rate':>7}   {'labelled':>8} {'grpo=label':>14} "
          f"{'MV=label':>14}")
    tot = {k: sum(stats[s][k] for s in sources) for k in stats["suite"]}
    for name, st in [(s, stats[s]) for s in sources] + [("total", tot)]:
        n, lab = st["cases"], st["labelled"]
        pct = lambda a, b: f"{100.0 * a / b:5.1f}%" if b else "  n/a"
        print(f"{name:<10} {n:>6} {st['agree']:>6} {pct(st['agree'], n):>7}   {lab:>8} "
              f"{st['grpo_right']:>6} {pct(st['grpo_right'], lab):>7} "
              f"{st['mv_right']:>6} {pct(st['mv_right'], lab):>7}")
    print(f"time: grpo {t_grpo:.1f} s ({len(pairs) / max(t_grpo, 1e-9):.0f} pairs/s, one process), "
          f"Math-Verify {t_mv:.1f} s ({len(pairs) / max(t_mv, 1e-9):.0f} pairs/s, {args.jobs} processes)")

    def show(item, why):
        print(f"- [{item['source']} {item['id']}] {item['note'] or ''}".rstrip())
        print(f"    gold: {short(item['gold'])!r}")
        print(f"    pred: {short(item['pred'])!r}")
        print(f"    Math-Verify: {verdict_word(item['mv'])} (parsed gold {short(item['mv_parsed'][0], 80)}, "
              f"pred {short(item['mv_parsed'][1], 80)})")
        print(f"    grpo: {verdict_word(item['grpo'])} ({short(item['reason'], 160)})")
        print(f"    who is right: {why}")

    if disagreements:
        print(f"\ndisagreements ({len(disagreements)}):")
        for d in disagreements:
            if d["label"] is None:
                why = "undecided (no label)"
            else:
                right = "grpo" if d["grpo"] == d["label"] else "Math-Verify"
                how = "the suite's expected" if d["source"] == "suite" else "the variant's construction"
                why = f"{right} ({how}: {verdict_word(d['label'])})"
            show(d, why)
    if both_wrong:
        print(f"\nboth verifiers differ from the label ({len(both_wrong)}; not a grpo/Math-Verify disagreement):")
        for d in both_wrong:
            show(d, f"neither (label: {verdict_word(d['label'])})")

    if known_gaps:
        print(f"\nknown grpo gaps (tests/oracles/mathverify_disputed.json, {len(known_gaps)}):")
        for d in known_gaps:
            show(d, f"Math-Verify (the suite's expected: {verdict_word(d['label'])}); a known grpo gap")

    if args.bench or args.json:
        path = args.json or os.path.join(ROOT, "bench", "results", "mathverify_agreement.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        report = {"benchmark": "mathverify_agreement", "math_verify": getattr(math_verify, "__version__", "0.8"),
                  "rows": [dict(source=s, **stats[s]) for s in sources] + [dict(source="total", **tot)],
                  "seconds": {"grpo": t_grpo, "math_verify": t_mv, "math_verify_jobs": args.jobs},
                  "disagreements": [{k: d[k] for k in ("source", "id", "note", "gold", "pred", "label", "mv", "grpo",
                                                       "reason")} for d in disagreements]}
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, ensure_ascii=False)
        os.replace(path + ".tmp", path)
        print(f"\nwrote {path}")

    bad = grpo_wrong + [e for e in errors if e not in grpo_wrong]
    if stale:
        print(f"\nFAIL: tests/oracles/mathverify_disputed.json lists {len(stale)} case(s) grpo now gets right "
              f"(remove them): {', '.join(sorted(stale))}")
        return 1
    if bad:
        print(f"\nFAIL: grpo is wrong on {len(grpo_wrong)} labelled disagreement(s)"
              f"{f' and could not score {len(errors)} line(s)' if errors else ''}:")
        for d in bad:
            print(f"  [{d['source']} {d['id']}] {d['note']} gold={short(d['gold'], 80)!r} "
                  f"pred={short(d['pred'], 120)!r} label={verdict_word(d['label'])} grpo={verdict_word(d['grpo'])}")
        return 1
    print("\nPASS: wherever grpo and Math-Verify disagree on a labelled pair, grpo has the label's verdict")
    return 0


if __name__ == "__main__":
    sys.exit(main())
