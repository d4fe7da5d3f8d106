#!/usr/bin/env python3
"""Live oracle: `grpo tokenize` against HuggingFace `tokenizers` on a DeepSeek-V3-style BPE.

What is checked
  1. A small byte-level BPE (1500 tokens) is trained here with HF `tokenizers` behind DeepSeek-V3's
     exact pre-tokenizer: a Sequence of Split(\\p{N}{1,3}), Split of Han/kana runs
     ([一-龥぀-ゟ゠-ヿ]+), Split of DeepSeek-V3's punctuation/letter regex, then
     ByteLevel(add_prefix_space=false, use_regex=false); ByteLevel decoder; DeepSeek's special
     tokens <｜begin▁of▁sentence｜> / <｜end▁of▁sentence｜> plus <think> / </think> as
     non-special added tokens (as in DeepSeek-R1). The tokenizer.json goes to a temp dir.
  2. A mixed corpus (math/LaTeX, long digit runs, code with tabs and trailing spaces, Chinese,
     Japanese, Korean, emoji with ZWJ and skin tones, whitespace runs, CR/LF, combining marks,
     mixed scripts, special tokens inside text; hand-written cases plus seeded random mixes) is
     encoded by `grpo tokenize --tokenizer DIR` and by `Tokenizer.encode(s,
     add_special_tokens=False)`: the ids must be identical for every string.
  3. The HF ids are decoded by `grpo tokenize --decode` (and with --skip-special): the text must
     equal HF's `decode(ids, skip_special_tokens=...)`, and without skipping, the original string.
  4. Prefixes of the id lists (which may end inside a UTF-8 character) decode as HF decodes them.

Prints the number of strings and each mismatch (string, HF ids, grpo ids); exit status 1 on any
mismatch, a missing Python package or a grpo failure.

Runs as `ctest -R oracle_tokenizer`, or by hand:
    python3 tests/oracles/tokenizer_oracle.py --grpo build/apps/grpo [--keep DIR] [--verbose]
(with the Python of the project's environment, scripts/pyenv.sh). A few seconds on 2 CPU cores.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

DEPS_HINT = "run 'make deps' (scripts/pyenv.sh builds the project's environment from python/requirements.txt)"

try:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
except ImportError as e:  # an oracle is never skipped silently
    print(f"missing Python package '{(e.name or 'tokenizers').split('.')[0]}': {DEPS_HINT}", file=sys.stderr)
    sys.exit(1)

# DeepSeek-V3's tokenizer.json pre_tokenizer (deepseek-ai/DeepSeek-V3, also R1 and V3.1).
DSV3_DIGITS = r"\p{N}{1,3}"
DSV3_CJK = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"
DSV3_MAIN = (r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+"
             r"|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
             r"| ?[\p{P}\p{S}]+[\r\n]*"
             r"|\s*[\r\n]+"
             r"|\s+(?!\S)"
             r"|\s+")
BOS, EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
VOCAB_SIZE = 1500


# ---------------------------------------------------------------------------------------------
# Corpus

HANDWRITTEN = [
    # math
    "The answer is \\boxed{42}.",
    "$\\frac{1}{2} + \\frac{1}{3} = \\frac{5}{6}$",
    "\\[ \\int_0^{\\infty} e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2} \\]",
    "x^2 + 3x - 10 = 0 \\implies x = 2 \\text{ or } x = -5",
    "12345678901234567890",
    "3.14159265358979323846264338327950288419716939937510",
    "-0.000001 + 1e-10 - 6.022e23 = ?",
    "1,000,000 vs 1 000 000 vs 1000000.00",
    "\\sum_{k=1}^{n} k^2 = \\frac{n(n+1)(2n+1)}{6}",
    "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
    "f(x) = \\sqrt[3]{x} \\cdot \\log_{2}(x) \\geq 0, \\forall x \\in [1, \\infty)",
    "∑∫√π≤≥≠∞ ∀x∈ℝ: x²+y²=r²",
    "１２３ ＡＢＣ ＋－＝ （全角）",
    "٣٤٥ + ۱۲ = Ⅻ ½ ¾ ²³",
    "10%, 25 %, $5.00, €3,50, ¥1000",
    # code
    "def f(x):\n    return x * 2\n",
    "for i in range(10):\n\tif i % 2 == 0:\n\t\tprint(i)   \n",
    "#include <stdio.h>\nint main(void) {\n    printf(\"%d\\n\", 42);\n    return 0;\n}\n",
    "template <typename T>\nstd::vector<T> v{1, 2, 3};  // trailing   \n",
    "    indented with spaces    \n\t\tand tabs\t\t\n",
    "a=b==c!=d<=e>=f&&g||h->i::j",
    "if (x) { y++; } else { --z; }",
    "SELECT * FROM t WHERE a = 'it''s';",
    "lambda x: x**2 if x>0 else -x",
    "  return {'key': [1, 2, 3], \"k2\": None}",
    "#!/usr/bin/env bash\nset -euo pipefail\necho \"$HOME\"\n",
    # CJK
    "你好，世界！这是一个测试。",
    "我有3个苹果和12345个橙子。",
    "こんにちは、世界！カタカナとひらがな。",
    "日本語のテキスト：東京タワーは333メートルです。",
    "안녕하세요, 세계! 한국어 텍스트입니다.",
    "中文English混合Text测试123",
    "ｶﾀｶﾅ（半角） and ヴァイオリン・ー",
    "「引用」『二重』【括弧】〈山〉",
    "龥龦 鿿 㐀 𠀀",
    # emoji
    "👍",
    "👍🏽 👋🏿 🙋🏻‍♀️",
    "👨‍👩‍👧‍👦 family",
    "🏳️‍🌈 🇯🇵🇺🇸 1️⃣ #️⃣",
    "I ❤️ Python 🐍 and C++ 🚀🚀🚀",
    "😀😃😄😁😆😅😂🤣",
    # whitespace
    "",
    " ",
    "   ",
    "\n",
    "\n\n\n",
    "\r\n",
    "a\r\nb\rc\nd",
    "\t",
    "  leading spaces and trailing   ",
    "word    word\t\tword \n \n word",
    "trailing newline\n",
    "   \n\t  \n",
    "\u00a0non-breaking\u00a0space\u3000ideographic space\u2028line sep",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    # mixed scripts and marks
    "Ελληνικά κείμενο αβγ",
    "Русский текст: привет, мир!",
    "العربية: مرحبا بالعالم",
    "हिन्दी पाठ: नमस्ते दुनिया",
    "ภาษาไทย สวัสดี",
    "e\u0301 vs é, n\u0303 vs ñ, a\u0308\u0304",
    "Ǆ ǅ ǆ ŉ ﬁ ﬂ ß ẞ",
    "don't I'll we're they've it's",
    "O'Neil's résumé—naïve café…",
    "url: https://example.com/a?b=c&d=e#f",
    "email@example.com, @user #tag",
    "!!!???...---***",
    " ?! ,. ;:",
    "(a)[b]{c}<d>",
    # special and added tokens inside text
    BOS + "Hello" + EOS,
    BOS + BOS + EOS,
    "text " + BOS + " more text " + EOS + " end",
    THINK_OPEN + "reasoning here" + THINK_CLOSE + " The answer is 4.",
    THINK_OPEN + "\n嗯，让我想想。\n" + THINK_CLOSE + "\n\n答案是 \\boxed{7}",
    "<think>no close",
    "</think><think>",
    "<｜begin▁of▁sentence｜",
    "<|begin_of_sentence|> is not the special token",
    "▁▁ sentencepiece marks ▁",
]

ATOMS = [
    # math
    "x", "y", "n", "\\frac{", "}{", "}", "\\sqrt{", "^2", "_{i}", " = ", " + ", " - ", "\\cdot", "\\pi",
    "\\boxed{", "$", "$$", "\\(", "\\)", "\\left(", "\\right)", "0.5", "-3", "1e-9", "1,234", "99.99",
    # numbers
    "0", "7", "42", "123", "1234", "98765", "3141592653", "00001", "٣", "²", "Ⅻ", "１２",
    # code
    "def ", "return ", "int ", "    ", "\t", "\t\t", "();", "{", "}", "[]", "==", "!=", "->", "::", "#",
    "//", "/*", "*/", "\"", "'", "`", "\\n", "_var", "camelCase", "snake_case", "0x1F",
    # words and punctuation
    "the", " the", "Hello", " world", "!", "?", ".", ",", ";", ":", "...", "—", "’", "“", "”", "'s",
    "'ll", " a", "A", "Z", "é", "ß", "ǅ", "e\u0301", "привет", " мир", "αβγ", "مرحبا",
    # CJK
    "你好", "世界", "。", "，", "！", "数学", "ひらがな", "カタカナ", "ー", "・", "한국어", "가", "ｶﾅ",
    "（", "）", "「", "」", "　",
    # emoji
    "👍", "👍🏽", "👨‍👩‍👧", "❤️", "🇫🇷", "🚀", "1️⃣", "🙋🏻‍♀️", "😂",
    # whitespace
    " ", "  ", "   ", "\n", "\n\n", "\r\n", "\r", " \n", "\u00a0", "\u2028", "\u200b",
    # special / added tokens
    BOS, EOS, THINK_OPEN, THINK_CLOSE, "<", ">", "|", "｜", "▁",
]


def random_strings(rng, n, max_atoms):
    return ["".join(rng.choice(ATOMS) for _ in range(rng.randint(1, max_atoms))) for _ in range(n)]


def templated_strings(rng, n):
    """Sentences in the shape of model outputs: math derivations, code, multilingual prose."""
    out = []
    for _ in range(n):
        a, b = rng.randint(0, 10 ** rng.randint(1, 12)), rng.randint(1, 999)
        kind = rng.randrange(6)
        if kind == 0:
            out.append(f"We have ${a} \\times {b} = {a * b}$, so the answer is $\\boxed{{{a * b}}}$.")
        elif kind == 1:
            out.append(f"def f{b}(x):\n    return x ** {b % 7} + {a}  \n\n")
        elif kind == 2:
            out.append(f"答案是{a}。因为{b}×2={2 * b}，所以成立。")
        elif kind == 3:
            out.append(f"x = {a}.{b:03d};\ty = -{b}e{b % 30}\n")
        elif kind == 4:
            out.append(f"{THINK_OPEN}\nLet me check {a} mod {b} = {a % b}.\n{THINK_CLOSE}\n\n**{a % b}** 👍")
        else:
            out.append(f"東京まで{b}キロ、{a}円です。 한국 {b}원 🇰🇷")
    return out


def test_corpus():
    rng = random.Random(20240601)
    return HANDWRITTEN + templated_strings(rng, 40) + random_strings(rng, 120, 12)


def training_corpus():
    rng = random.Random(7)
    return HANDWRITTEN * 3 + templated_strings(rng, 3000) + random_strings(rng, 3000, 20)


# ---------------------------------------------------------------------------------------------
# Tokenizer

def build_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(DSV3_DIGITS), behavior="isolated", invert=False),
        pre_tokenizers.Split(Regex(DSV3_CJK), behavior="isolated", invert=False),
        pre_tokenizers.Split(Regex(DSV3_MAIN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False) for t in (BOS, EOS)]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, show_progress=False,
                                  special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_corpus(), trainer=trainer)
    # DeepSeek-R1's <think> / </think>: added tokens that are not special (decode keeps them).
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in (THINK_OPEN, THINK_CLOSE)])
    return tok


# ---------------------------------------------------------------------------------------------
# grpo

def run_grpo(grpo, args, rows):
    """Feeds rows (dicts) as JSONL to `grpo ARGS`; returns one parsed output object per row."""
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    cmd = [grpo] + args
    try:
        p = subprocess.run(cmd, input=data.encode("utf-8"), capture_output=True, timeout=120)
    except FileNotFoundError:
        sys.exit(f"cannot run '{grpo}': no such file (build it first, or pass --grpo)")
    except subprocess.TimeoutExpired:
        sys.exit(f"'{' '.join(cmd)}' did not finish in 120 s")
    # One line per input; split on "\n" only (decoded text may hold U+2028, which splitlines() cuts at).
    lines = p.stdout.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(rows):
        sys.exit(f"'{' '.join(cmd)}' exited with {p.returncode} and wrote {len(lines)} lines for {len(rows)} "
                 f"inputs:\n{p.stderr.decode(errors='replace')}")
    out = [json.loads(line) for line in lines]
    if p.returncode != 0 and not any("error" in o for o in out):
        sys.exit(f"'{' '.join(cmd)}' exited with {p.returncode}:\n{p.stderr.decode(errors='replace')}")
    return out


def show(s, limit=160):
    r = repr(s)
    return r if len(r) <= limit else r[:limit] + "...'"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grpo", required=True, help="path of the grpo binary")
    ap.add_argument("--keep", metavar="DIR", help="write tokenizer.json and corpus.jsonl here and keep them")
    ap.add_argument("--verbose", action="store_true", help="print every string with its ids")
    args = ap.parse_args()
    grpo = os.path.abspath(args.grpo)

    tok = build_tokenizer()
    corpus = test_corpus()
    with tempfile.TemporaryDirectory(prefix="oracle_tokenizer_") as tmp:
        folder = args.keep or tmp
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "tokenizer.json")
        tok.save(path)
        tok = Tokenizer.from_file(path)  # what grpo reads is what HF reads
        hf_ids = [tok.encode(s, add_special_tokens=False).ids for s in corpus]
        if args.keep:
            with open(os.path.join(folder, "corpus.jsonl"), "w", encoding="utf-8") as f:
                for s, ids in zip(corpus, hf_ids):
                    f.write(json.dumps({"text": s, "ids": ids}, ensure_ascii=False) + "\n")

        failures = 0

        def fail(what, text, hf, got):
            nonlocal failures
            failures += 1
            if failures <= 50:
                print(f"MISMATCH ({what}) text: {show(text)}\n  HF  : {hf}\n  grpo: {got}")

        # 1. encode
        enc = run_grpo(grpo, ["tokenize", "--tokenizer", folder], [{"text": s} for s in corpus])
        enc_bad = 0
        for s, hf, o in zip(corpus, hf_ids, enc):
            got = o.get("ids", o)
            if args.verbose:
                print(f"{show(s)} -> {hf}")
            if got != hf:
                enc_bad += 1
                fail("encode", s, hf, got)

        # 2. decode the HF ids, keeping and skipping special tokens
        dec_rows = [{"ids": ids} for ids in hf_ids]
        dec = run_grpo(grpo, ["tokenize", "--decode", "--tokenizer", path], dec_rows)
        dec_skip = run_grpo(grpo, ["tokenize", "--decode", "--skip-special", "--tokenizer", path], dec_rows)
        dec_bad = 0
        for s, ids, o, o_skip in zip(corpus, hf_ids, dec, dec_skip):
            hf_text = tok.decode(ids, skip_special_tokens=False)
            hf_skip = tok.decode(ids, skip_special_tokens=True)
            if hf_text != s:
                print(f"note: HF itself does not round-trip {show(s)} (decodes to {show(hf_text)})")
            if o.get("text") != hf_text:
                dec_bad += 1
                fail("decode", s, repr(hf_text), repr(o.get("text", o)))
            if o_skip.get("text") != hf_skip:
                dec_bad += 1
                fail("decode --skip-special", s, repr(hf_skip), repr(o_skip.get("text", o_skip)))

        # 3. prefixes of id lists: the text may end inside a UTF-8 character (HF: U+FFFD)
        prefixes = [ids[:k] for ids in hf_ids if len(ids) > 1 for k in range(1, len(ids))]
        pre = run_grpo(grpo, ["tokenize", "--decode", "--tokenizer", path], [{"ids": p} for p in prefixes])
        pre_bad = 0
        for ids, o in zip(prefixes, pre):
            hf_text = tok.decode(ids, skip_special_tokens=False)
            if o.get("text") != hf_text:
                pre_bad += 1
                fail("decode of a prefix", ids, repr(hf_text), repr(o.get("text", o)))

    n_tokens = sum(len(i) for i in hf_ids)
    print(f"tokenizer: byte-level BPE, {tok.get_vocab_size()} tokens, DeepSeek-V3 pre-tokenizer")
    print(f"encode: {len(corpus)} strings ({n_tokens} tokens), {len(corpus) - enc_bad} identical to HF, "
          f"{enc_bad} mismatches")
    print(f"decode: {len(corpus)} id lists x (keep, skip special), {dec_bad} mismatches")
    print(f"decode of prefixes: {len(prefixes)} id lists, {pre_bad} mismatches")
    if failures > 50:
        print(f"({failures - 50} more mismatches not shown)")
    if failures:
        print(f"FAIL: {failures} mismatches between grpo tokenize and HF tokenizers")
        return 1
    print("PASS: grpo tokenize agrees with HF tokenizers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
