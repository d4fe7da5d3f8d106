#!/usr/bin/env python3
"""Convert a grpo DeepSeek-V3 HF checkpoint (config.json + safetensors, as `grpo init-model`
writes it) to a GGUF file of llama.cpp's `deepseek2` architecture, as F32, BF16 or Q8_0.

    python to_gguf.py --model DIR --out FILE.gguf --type f32|bf16|q8_0

Runs in the environment of bench/llamacpp/env.sh (PyPI's `gguf` package; numpy; no torch): the
safetensors files are read here with numpy. Written against the installed gguf package's
GGUFWriter and its tensor-name table (gguf.TENSOR_NAMES), laid out the way the llama.cpp that
llama-cpp-python builds (the same release as that gguf) loads deepseek2 models:

* MLA in the absorbed form: kv_b_proj is split per head into attn_k_b (the nope rows,
  transposed: ggml shape {qk_nope, kv_lora, heads}) and attn_v_b ({kv_lora, v_head, heads});
  attention.key_length / value_length are the latent sizes (kv_lora + rope, kv_lora) and
  key_length_mla / value_length_mla the per-head sizes (nope + rope, v_head); one KV head (MQA).
* Routed experts stacked per layer into ffn_{gate,up,down}_exps ({in, out, experts}); the shared
  expert as ffn_*_shexp; the router as ffn_gate_inp and its score-correction bias as
  exp_probs_b.bias; leading_dense_block_count = first_k_dense_replace.
* Routing: expert_gating_func sigmoid, expert_weights_norm = norm_topk_prob, expert_weights_scale
  = routed_scaling_factor, expert group count / used = n_group / topk_group.
* RoPE: llama.cpp rotates consecutive pairs (rope type NORM) for deepseek2, which is what HF's
  rope_interleave = true means for the checkpoint's rope rows, so those are copied as they are.
  Configs with rope_interleave false or rope_scaling set are refused (not needed by the bench).
* Tensor types as llama.cpp's own converter picks them: 1-D tensors, norms, the router and the
  bias stay F32; every other matrix takes the requested type (Q8_0 through gguf.quants).
* Vocabulary: a synthetic 'llama'-model (SentencePiece-style) token list of vocab_size entries:
  "<s>" and "</s>" at the config's bos/eos ids, the 256 byte tokens "<0x00>".."<0xFF>" at ids
  2..257 (llama.cpp looks up "<0x0A>" as the newline), "<tN>" elsewhere. The benchmark feeds
  token ids, never text, so no real tokenizer is needed.
"""
import argparse
import glob
import json
import os
import struct
import sys

import numpy as np
import gguf

T = gguf.MODEL_TENSOR


def read_safetensors(model_dir):
    """All tensors of the checkpoint's *.safetensors files as float32 numpy arrays, by name."""
    files = sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
    if not files:
        sys.exit(f"to_gguf.py: no *.safetensors in {model_dir}")
    out = {}
    for path in files:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            begin, end = meta["data_offsets"]
            raw = data[begin:end]
            dt, shape = meta["dtype"], meta["shape"]
            if dt == "F32":
                arr = raw.view(np.float32)
            elif dt == "BF16":  # bf16 is the top half of an fp32
                arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            elif dt == "F16":
                arr = raw.view(np.float16).astype(np.float32)
            else:
                sys.exit(f"to_gguf.py: {name}: dtype {dt} not handled (write the checkpoint with --dtype fp32 or bf16)")
            out[name] = np.array(arr.reshape(shape), dtype=np.float32)
    return out


def tname(kind, bid=None, suffix="weight"):
    """The GGUF tensor name of `kind` (layer `bid`) from the installed gguf package's table."""
    base = gguf.TENSOR_NAMES[kind]
    return (base.format(bid=bid) if bid is not None else base) + "." + suffix


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="HF checkpoint directory (config.json + safetensors)")
    ap.add_argument("--out", required=True, help="GGUF file to write")
    ap.add_argument("--type", required=True, choices=["f32", "bf16", "q8_0"], help="type of the weight matrices")
    args = ap.parse_args()

    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("model_type") not in ("deepseek_v3", "deepseek_v2"):
        sys.exit(f"to_gguf.py: model_type {cfg.get('model_type')!r} is not DeepSeek V2/V3")
    if cfg.get("rope_scaling"):
        sys.exit("to_gguf.py: rope_scaling is not handled (the bench config has none)")
    if not cfg.get("rope_interleave", True):
        sys.exit("to_gguf.py: rope_interleave false (rotate-half rope rows) is not handled")
    if cfg.get("scoring_func", "softmax") != "sigmoid":
        sys.exit("to_gguf.py: only scoring_func sigmoid (DeepSeek-V3 routing) is handled")
    if not cfg.get("q_lora_rank"):
        sys.exit("to_gguf.py: q_lora_rank null (V2-Lite style q_proj) is not handled")

    qtype = {"f32": gguf.GGMLQuantizationType.F32, "bf16": gguf.GGMLQuantizationType.BF16,
             "q8_0": gguf.GGMLQuantizationType.Q8_0}[args.type]
    ftype = {"f32": gguf.LlamaFileType.ALL_F32, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
             "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[args.type]

    n_layer = cfg["num_hidden_layers"]
    n_head = cfg["num_attention_heads"]
    nope, rope, vdim = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    kv_lora, q_lora = cfg["kv_lora_rank"], cfg["q_lora_rank"]
    n_exp = cfg["n_routed_experts"]
    dense_lead = cfg.get("first_k_dense_replace", 0)
    vocab = cfg["vocab_size"]

    w = gguf.GGUFWriter(args.out, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.DEEPSEEK2])
    w.add_name("grpo " + os.path.basename(os.path.normpath(args.model)))
    w.add_file_type(ftype)
    w.add_block_count(n_layer)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(1)  # MLA in the absorbed form is MQA over the latent
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_rope_dimension_count(rope)
    w.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-6))
    w.add_vocab_size(vocab)
    w.add_leading_dense_block_count(dense_lead)
    w.add_q_lora_rank(q_lora)
    w.add_kv_lora_rank(kv_lora)
    w.add_key_length(kv_lora + rope)
    w.add_value_length(kv_lora)
    w.add_key_length_mla(nope + rope)
    w.add_value_length_mla(vdim)
    w.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
    w.add_expert_count(n_exp)
    w.add_expert_used_count(cfg["num_experts_per_tok"])
    w.add_expert_shared_count(cfg.get("n_shared_experts", 0))
    w.add_expert_group_count(cfg.get("n_group", 1))
    w.add_expert_group_used_count(cfg.get("topk_group", 1))
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)
    w.add_expert_weights_scale(float(cfg.get("routed_scaling_factor", 1.0)))
    if cfg.get("norm_topk_prob", False):
        w.add_expert_weights_norm(True)

    # Synthetic vocabulary (ids only).
    bos, eos = cfg.get("bos_token_id", 0), cfg.get("eos_token_id", 1)
    tokens, types = [], []
    for i in range(vocab):
        special = {bos: "<s>", eos: "</s>"}.get(i)
        byte = i - 2 if special is None and 2 <= i < 258 else None  # SentencePiece's byte tokens
        if special:
            tokens.append(special), types.append(gguf.TokenType.CONTROL)
        elif byte is not None:
            tokens.append(f"<0x{byte:02X}>"), types.append(gguf.TokenType.BYTE)
        else:
            tokens.append(f"<t{i}>"), types.append(gguf.TokenType.NORMAL)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * vocab)
    w.add_token_types(types)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_add_bos_token(False)

    st = read_safetensors(args.model)
    used = set()

    def take(name):
        used.add(name)
        return st[name]

    def add(name, arr, keep_f32=False):
        """Write `arr` (numpy shape = ggml shape reversed) as F32 when it is 1-D, a norm, or
        `keep_f32`, else as the requested type."""
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        t = gguf.GGMLQuantizationType.F32
        if not (keep_f32 or arr.ndim <= 1 or name.endswith("_norm.weight")):
            t = qtype
        data = arr if t == gguf.GGMLQuantizationType.F32 else gguf.quants.quantize(arr, t)
        w.add_tensor(name, data, raw_dtype=t)

    add(tname(T.TOKEN_EMBD), take("model.embed_tokens.weight"))
    add(tname(T.OUTPUT_NORM), take("model.norm.weight"))
    if "lm_head.weight" in st:
        add(tname(T.OUTPUT), take("lm_head.weight"))

    for i in range(n_layer):
        p = f"model.layers.{i}."
        add(tname(T.ATTN_NORM, i), take(p + "input_layernorm.weight"))
        add(tname(T.FFN_NORM, i), take(p + "post_attention_layernorm.weight"))
        a = p + "self_attn."
        add(tname(T.ATTN_Q_A, i), take(a + "q_a_proj.weight"))
        add(tname(T.ATTN_Q_A_NORM, i), take(a + "q_a_layernorm.weight"))
        add(tname(T.ATTN_Q_B, i), take(a + "q_b_proj.weight"))
        add(tname(T.ATTN_KV_A_MQA, i), take(a + "kv_a_proj_with_mqa.weight"))
        add(tname(T.ATTN_KV_A_NORM, i), take(a + "kv_a_layernorm.weight"))
        kv_b = take(a + "kv_b_proj.weight")  # [heads * (nope + v), kv_lora]
        assert kv_b.shape == (n_head * (nope + vdim), kv_lora), kv_b.shape
        kv_b = kv_b.reshape(n_head, nope + vdim, kv_lora)
        add(tname(T.ATTN_K_B, i), kv_b[:, :nope, :].transpose(0, 2, 1))  # [heads, kv_lora, nope]
        add(tname(T.ATTN_V_B, i), kv_b[:, nope:, :])  # [heads, v, kv_lora]
        add(tname(T.ATTN_OUT, i), take(a + "o_proj.weight"))
        m = p + "mlp."
        if i < dense_lead:
            add(tname(T.FFN_GATE, i), take(m + "gate_proj.weight"))
            add(tname(T.FFN_UP, i), take(m + "up_proj.weight"))
            add(tname(T.FFN_DOWN, i), take(m + "down_proj.weight"))
            continue
        add(tname(T.FFN_GATE_INP, i), take(m + "gate.weight"), keep_f32=True)
        if m + "gate.e_score_correction_bias" in st:
            add(tname(T.FFN_EXP_PROBS_B, i, "bias"), take(m + "gate.e_score_correction_bias"))
        for kind, hf in ((T.FFN_GATE_EXP, "gate_proj"), (T.FFN_UP_EXP, "up_proj"), (T.FFN_DOWN_EXP, "down_proj")):
            stacked = np.stack([take(f"{m}experts.{e}.{hf}.weight") for e in range(n_exp)])
            add(tname(kind, i), stacked)
        for kind, hf in ((T.FFN_GATE_SHEXP, "gate_proj"), (T.FFN_UP_SHEXP, "up_proj"),
                         (T.FFN_DOWN_SHEXP, "down_proj")):
            add(tname(kind, i), take(f"{m}shared_experts.{hf}.weight"))

    left = sorted(set(st) - used)
    if left:
        sys.exit(f"to_gguf.py: checkpoint tensors not converted: {left[:8]}{' ...' if len(left) > 8 else ''}")

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"to_gguf.py: wrote {args.out} ({args.type}, {os.path.getsize(args.out) / 2**20:.1f} MiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
