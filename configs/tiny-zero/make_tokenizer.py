#!/usr/bin/env python3
"""Writes the tiny-zero demo's tokenizer: a character-level byte-level BPE (no merges).

Vocabulary: the 256 byte symbols of the byte-level alphabet (so any text encodes; ASCII text is
one token per character) plus the added tokens BOS, EOS and the R1 tags <think>, </think>,
<answer>, </answer> (ids 0..5; bytes follow at 6..261). Output: tokenizer.json and
tokenizer_config.json (bos/eos) beside this script. Deterministic; rerun to regenerate.
"""
import json
import os

ADDED = [  # (content, special)
    ("<｜begin▁of▁sentence｜>", True),
    ("<｜end▁of▁sentence｜>", True),
    ("<think>", False),
    ("</think>", False),
    ("<answer>", False),
    ("</answer>", False),
]


def byte_symbols():
    """The byte-level alphabet: printable bytes stand for themselves, the rest map past 255."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    symbols, extra = {}, 0
    for b in range(256):
        if b in printable:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    vocab = {sym: len(ADDED) + i for i, sym in enumerate(byte_symbols())}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": s}
            for i, (c, s) in enumerate(ADDED)
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }
    with open(os.path.join(here, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(here, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token": ADDED[0][0], "eos_token": ADDED[1][0]}, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
