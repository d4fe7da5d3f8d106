#!/usr/bin/env python3
"""Writes onig_splits.jsonl: reference matches of tokenizer regexes by Oniguruma itself.

HF tokenizers runs Split patterns with Oniguruma (the onig crate: default syntax, no options,
find_iter skipping an empty match right after the previous match). This script calls the system
libonig.so.5 (Debian libonig5, 6.9.x) through ctypes with the same settings, on fixed patterns and
random texts, so tests can check our PCRE2 translation against the real engine.

Usage: python3 make_onig_splits.py > onig_splits.jsonl   (deterministic: fixed seed)
"""
import ctypes
import json
import random
import sys

lib = ctypes.CDLL("libonig.so.5")


class Region(ctypes.Structure):
    _fields_ = [("allocated", ctypes.c_int), ("num_regs", ctypes.c_int),
                ("beg", ctypes.POINTER(ctypes.c_int)), ("end", ctypes.POINTER(ctypes.c_int))]


class ErrorInfo(ctypes.Structure):
    _fields_ = [("enc", ctypes.c_void_p), ("par", ctypes.c_void_p), ("par_end", ctypes.c_void_p)]


UTF8 = ctypes.c_void_p(ctypes.addressof(ctypes.c_char.in_dll(lib, "OnigEncodingUTF8")))
SYNTAX = ctypes.c_void_p.in_dll(lib, "OnigDefaultSyntax")
lib.onig_initialize((ctypes.c_void_p * 1)(UTF8), 1)
lib.onig_new.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint,
                         ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ErrorInfo)]
lib.onig_region_new.restype = ctypes.POINTER(Region)
lib.onig_search.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p, ctypes.POINTER(Region), ctypes.c_uint]


def compile_onig(pattern):
    p = pattern.encode()
    buf = ctypes.create_string_buffer(p, len(p))
    reg = ctypes.c_void_p()
    base = ctypes.addressof(buf)
    err = ErrorInfo()
    rc = lib.onig_new(ctypes.byref(reg), ctypes.c_char_p(base), ctypes.c_char_p(base + len(p)), 0, UTF8,
                      SYNTAX, ctypes.byref(err))
    if rc != 0:
        raise SystemExit(f"onig_new failed ({rc}) for {pattern!r}")
    return reg


def find_iter(reg, text):
    """The onig crate's FindMatches over text (str); returns byte offsets."""
    data = text.encode()
    buf = ctypes.create_string_buffer(data, len(data) + 1)
    base = ctypes.addressof(buf)
    region = lib.onig_region_new()
    out, last_end, last_match_end = [], 0, None
    while last_end <= len(data):
        r = lib.onig_search(reg, ctypes.c_char_p(base), base + len(data), base + last_end, base + len(data),
                            region, 0)
        if r < 0:
            break
        s, e = region.contents.beg[0], region.contents.end[0]
        if s == e and last_match_end == e:
            if last_end >= len(data):
                break
            step = 1
            while last_end + step < len(data) and (data[last_end + step] & 0xC0) == 0x80:
                step += 1
            last_end += step
            continue
        out.append([s, e])
        last_end = e
        last_match_end = e
    lib.onig_region_free(region, 1)
    return out


PATTERNS = [
    # DeepSeek-V3 (as in tokenizer.json next to this script)
    r"\p{N}{1,3}",
    "[\u4e00-\u9fa5\\u3040-\u309f\u30a0-\u30ff]+",
    "[\\r\\n]|\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+|\\s+$|\\s+(?!\\S)|\\s*[^\\s\\p{L}\\p{N}!-/:-~]+|\\s?\\p{L}+",
    # GPT-2 (ByteLevel use_regex)
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    # Llama-3
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    # Qwen2
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    # constructs the translation rewrites
    r"\w+|\W",
    r"[\w\s]+",
    r"\h+|\H",
    r"^\s*\S|\S\s*$",
    r"x{,2}y",
    r"(?m:a.b)|a.b",
    r"\S+",
    r"\d+|\D",
    "\\v|\\u0085+",
    r"(?=\p{Lu})",
    r"\b\w+\b|\B.",
    r"[[:alpha:]]+|[[:punct:]]+|[[:^space:]]",
    r"[[:upper:][:digit:]]+|[[:word:]]+|[[:blank:]]",
    r"\p{Han}+|\p{Hiragana}+|\P{Latin}",
]

ATOMS = ["a", "Z", "hello", " world", "x", "y", "xxy", "axb", "a\nb", "_", "'s", "'S", "'\u017f", "'ll", "'LL",
         "'re", "'Ve", "'d", "'", "$", ".", ",", "!", "?", "-", "！", "（", "：", "～", "\u2018", "\u201c",
         " ", "  ", "   ", "\t", "\n", "\r", "\r\n", "\n\n", "\x0b", "\x0c", "\u00a0", "\u3000", "\u2028",
         "\u0085", "\u1680", "\u200b", "\ufeff", "0", "7", "42", "12345", "٣", "²", "Ⅻ", "ab12cd",
         "中", "文本", "日本語", "の", "テキスト", "ゟ", "゠", "。", "、", "龥", "一", "\u9fa6", "\u3040",
         "한", "국어", "토큰", "🚀", "🔥", "👍🏽", "👨\u200d👩\u200d👧", "🇯🇵", "e\u0301", "\u0301",
         "a\u0308\u0304", "ñ", "Ǆ", "ǅ", "İ", "ß", "K", "\u200d", "\u00ad", "\ud7a3", "\U00010400",
         "\U0001f600", "ABC", "Dé", "def f(x):\n    return x\n"]


def main():
    rng = random.Random(20240611)
    texts = ["", " ", "\n", "  \n", "a  \nb", "a \n\nb", "x  ", "x\n  \ny", "Hello, world!", "  lead and trail   "]
    for _ in range(300):
        texts.append("".join(rng.choice(ATOMS) for _ in range(rng.randint(1, 16))))
    for pattern in PATTERNS:
        reg = compile_onig(pattern)
        for text in texts:
            print(json.dumps({"pattern": pattern, "text": text, "matches": find_iter(reg, text)},
                             ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
