"""Live oracle: grpo's model forward and greedy decoding against HuggingFace transformers.

For each architecture it builds a tiny, seeded, random HF model (float32), saves it with
save_pretrained (config.json + model.safetensors) and compares the grpo binary against HF:

  dsv2   DeepseekV2ForCausalLM: plain q_proj (q_lora_rank null), softmax gating with
         topk_method group_limited_greedy (n_group 4, topk_group 2), all layers MoE.
  dsv3   DeepseekV3ForCausalLM: q_lora (q_a_proj, q_a_layernorm, q_b_proj), sigmoid noaux_tc
         gating with a random e_score_correction_bias, YaRN rope scaling (mscale != mscale_all_dim),
         first_k_dense_replace 1, and one MTP module (num_nextn_predict_layers 1). HF has no MTP
         layer, so its weights are added to the saved file under model.layers.<num_hidden_layers>.*
         as DeepSeek-V3 checkpoints name them; grpo must load them (it builds its MTP module when
         eh_proj is present and then requires every one of them).
  qwen2  Qwen2ForCausalLM: GQA, q/k/v biases, tied embeddings.
  llama  LlamaForCausalLM: GQA, untied lm_head.

Checks, per architecture:
  logprobs  `grpo logprobs --dtype fp32` on 3 sequences vs HF forward + log_softmax:
            |Δ log p| <= 1e-4 for every token.
  greedy    `grpo generate --temperature 0` of 12 new tokens from 2 prompts vs HF
            generate(do_sample=False): identical tokens (up to and including an EOS).
  mtp       (dsv3) grpo loads the MTP tensors, and refuses the checkpoint when one is missing.
The MoE checks also require HF's routing to vary across tokens and the group limit to change
some tokens' experts, so that the gating under test is really exercised.

Run by ctest (`ctest -R oracle_hf`) or by hand:
  python tests/oracles/hf_models.py --grpo build/apps/grpo [--arch dsv2,dsv3,qwen2,llama] [--keep DIR]
      [--device cuda]   (grpo on the GPU, HF on the CPU: scripts/gpu_check.sh)
Exit code 0 when every check passes, 1 otherwise (a missing Python package is a failure too).
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time

from oracle_common import Report, json_lines, require, run_grpo

torch, transformers, safetensors_torch, _ = require("torch", "transformers", "safetensors.torch", "numpy")

SEED = 1234
THREADS = 2
DEVICE = "cpu"  # where grpo computes (--device); HF always runs on the CPU in float32
LOGPROB_TOL = 1e-4
ROW_LENGTHS = (16, 20, 24)  # logprobs sequences
PROMPT_LENGTHS = (6, 9)  # greedy prompts
NEW_TOKENS = 12
VOCAB = 320
EOS, BOS = 2, 1

# Shapes shared by the two DeepSeek models (multi-head latent attention, small MoE).
# num_key_value_heads must be given: DeepseekV3Config's default is 128 whatever the head count.
MLA = dict(
    vocab_size=VOCAB, hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
    num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=16, qk_nope_head_dim=16,
    qk_rope_head_dim=8, v_head_dim=12, n_routed_experts=8, max_position_embeddings=256,
    bos_token_id=BOS, eos_token_id=EOS, tie_word_embeddings=False,
)
DENSE = dict(
    vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    bos_token_id=BOS, eos_token_id=EOS,
)


def dsv2_config():
    # 3 experts per token from the 2 best of 4 groups: with top-k <= topk_group, ranking groups
    # by their best expert would pick the plain top-k, and the group limit would go untested.
    # norm_topk_prob stays False (the V2 hub value): HF 5.x's V2 router ignores the key.
    return transformers.DeepseekV2Config(
        **MLA, num_hidden_layers=2, q_lora_rank=None, first_k_dense_replace=0, n_shared_experts=2,
        topk_method="group_limited_greedy", n_group=4, topk_group=2, num_experts_per_tok=3,
        norm_topk_prob=False, routed_scaling_factor=1.5,
    )


def dsv3_config():
    yarn = dict(rope_type="yarn", rope_theta=10000.0, factor=4.0, original_max_position_embeddings=64,
                beta_fast=32.0, beta_slow=1.0, mscale=1.0, mscale_all_dim=0.8)
    return transformers.DeepseekV3Config(
        **MLA, num_hidden_layers=3, q_lora_rank=24, first_k_dense_replace=1, n_shared_experts=1,
        n_group=4, topk_group=2, num_experts_per_tok=2, norm_topk_prob=True, routed_scaling_factor=2.5,
        topk_method="noaux_tc", scoring_func="sigmoid", rope_interleave=True,
        num_nextn_predict_layers=1, rope_parameters=yarn,
    )


def qwen2_config():
    return transformers.Qwen2Config(**DENSE, tie_word_embeddings=True, use_sliding_window=False)


def llama_config():
    return transformers.LlamaConfig(**DENSE, tie_word_embeddings=False, attention_bias=False)


ARCHS = {"dsv2": dsv2_config, "dsv3": dsv3_config, "qwen2": qwen2_config, "llama": llama_config}


# ---- building and saving the models ----

def random_tensor(name, shape, gen):
    """A seeded value for a weight, by its role: norms near 1, a spread-out router, small biases."""
    def normal(std):
        return torch.randn(shape, generator=gen) * std
    if name.endswith("norm.weight"):
        return 1.0 + normal(0.1)
    if name.endswith("e_score_correction_bias"):
        return normal(0.05)
    if name.endswith("mlp.gate.weight"):  # the MoE router: tokens must pick different experts
        return normal(0.5)
    if name.endswith(".bias"):
        return normal(0.1)
    if "embed_tokens" in name:
        return normal(0.5)
    return normal(0.15)


def build_model(config, seed):
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if t.is_floating_point():
                t.copy_(random_tensor(name, t.shape, gen))
    return model.eval()


def add_mtp_weights(ckpt, config, seed):
    """Appends DeepSeek-V3's MTP module (model.layers.<num_hidden_layers>.*) to model.safetensors:
    the block is shaped like the last decoder layer, plus enorm, hnorm, eh_proj, embed_tokens and
    shared_head.{norm,head}. Returns the number of tensors added."""
    path = os.path.join(ckpt, "model.safetensors")
    tensors = safetensors_torch.load_file(path)
    n, d, v = config.num_hidden_layers, config.hidden_size, config.vocab_size
    last, mtp = f"model.layers.{n - 1}.", f"model.layers.{n}."
    shapes = {mtp + k[len(last):]: t.shape for k, t in tensors.items() if k.startswith(last)}
    shapes.update({
        mtp + "enorm.weight": (d,), mtp + "hnorm.weight": (d,), mtp + "eh_proj.weight": (d, 2 * d),
        mtp + "embed_tokens.weight": (v, d), mtp + "shared_head.norm.weight": (d,),
        mtp + "shared_head.head.weight": (v, d),
    })
    gen = torch.Generator().manual_seed(seed + 1)
    for name in sorted(shapes):
        tensors[name] = random_tensor(name, shapes[name], gen).contiguous()
    safetensors_torch.save_file(tensors, path, metadata={"format": "pt"})
    return len(shapes)


def save_checkpoint(model, ckpt):
    """save_pretrained, plus the MTP weights when the config asks for MTP; their count."""
    model.save_pretrained(ckpt)
    saved = json.load(open(os.path.join(ckpt, "config.json")))
    if saved.get("num_nextn_predict_layers", 0) > 0:
        return add_mtp_weights(ckpt, model.config, SEED)
    return 0


# ---- HF reference ----

def random_ids(gen, lengths):
    """Token ids avoiding BOS/EOS (ids 0..2), so prompts do not end early."""
    return [torch.randint(3, VOCAB, (n,), generator=gen).tolist() for n in lengths]


def hf_logprobs(model, rows):
    """log p(t_i | t_<i), i >= 1, per row (each row its own forward, no padding)."""
    out = []
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([row])
            logits = model(input_ids=ids).logits[0, :-1].float()
            out.append(logits.log_softmax(-1).gather(-1, ids[0, 1:, None])[:, 0].tolist())
    return out


def hf_greedy(model, prompt, n):
    """HF greedy continuation (stopping after EOS) and the smallest top-1/top-2 logit gap met."""
    ids = torch.tensor([prompt])
    with torch.no_grad():
        g = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                           eos_token_id=EOS, pad_token_id=EOS, return_dict_in_generate=True, output_logits=True)
    tokens = g.sequences[0, len(prompt):].tolist()
    if EOS in tokens:
        tokens = tokens[:tokens.index(EOS) + 1]
    gaps = [float(l[0].topk(2).values.diff().abs()) for l in g.logits[:len(tokens)]]
    return tokens, min(gaps)


def routing_stats(model, rows):
    """(distinct expert sets, tokens whose experts the group limit changed, routed tokens) over the
    rows, from HF's routers; (0, 0, 0) for a dense model. The group-limited choice is compared with
    a plain top-k of the same selection scores (softmax, or sigmoid + correction bias)."""
    picks, limited = [], [0]

    def hook(gate, _inputs, out):
        logits, _, chosen = out
        bias = getattr(gate, "e_score_correction_bias", None)
        scores = logits.softmax(-1) if bias is None else logits.sigmoid() + bias
        chosen, plain = chosen.sort(-1).values, scores.topk(gate.top_k, -1).indices.sort(-1).values
        picks.extend(map(tuple, chosen.tolist()))
        limited[0] += int((chosen != plain).any(-1).sum())

    hooks = [m.register_forward_hook(hook) for name, m in model.named_modules()
             if name.endswith("mlp.gate") and hasattr(m, "top_k")]
    hf_logprobs(model, rows)
    for h in hooks:
        h.remove()
    return len(set(picks)), limited[0], len(picks)


# ---- grpo ----

def grpo_logprobs(grpo, ckpt, rows):
    stdin = "".join(json.dumps({"ids": r}) + "\n" for r in rows)
    out = json_lines(run_grpo(grpo, ["logprobs", "--model", ckpt, "--dtype", "fp32", "--threads", THREADS,
                                     "--device", DEVICE], stdin))
    return [o["logprobs"] for o in out]


def grpo_greedy(grpo, ckpt, prompts, n):
    stdin = "".join(json.dumps({"prompt_ids": p}) + "\n" for p in prompts)
    args = ["generate", "--model", ckpt, "--prompts", "-", "--max-new-tokens", n, "--temperature", 0,
            "--dtype", "fp32", "--threads", THREADS, "--device", DEVICE]
    out = sorted(json_lines(run_grpo(grpo, args, stdin)), key=lambda o: o["prompt_index"])
    return [o["output_ids"] for o in out]


# ---- comparisons ----

def compare_logprobs(want, got):
    """(max |Δ|, 'row r token t' where it is) or (inf, why) when the shapes differ."""
    if [len(r) for r in got] != [len(r) for r in want]:
        return float("inf"), f"lengths {[len(r) for r in got]}, expected {[len(r) for r in want]}"
    worst, where = 0.0, ""
    for r, (a, b) in enumerate(zip(want, got)):
        for t, (x, y) in enumerate(zip(a, b)):
            if abs(x - y) > worst:
                worst, where = abs(x - y), f"row {r} token {t + 1}"
    return worst, where


def check_logprobs(report, arch, model, grpo, ckpt, rows):
    want, got = hf_logprobs(model, rows), grpo_logprobs(grpo, ckpt, rows)
    worst, where = compare_logprobs(want, got)
    tokens = sum(len(r) for r in want)
    nll = -sum(sum(r) for r in want) / tokens
    sets, limited, routed = routing_stats(model, rows)
    detail = (f"max |Δ log p| = {worst:.2e} ({where}) over {tokens} tokens; "
              f"mean -log p {nll:.2f} (uniform {math.log(VOCAB):.2f})")
    ok = worst <= LOGPROB_TOL
    if routed:
        detail += f"; routing: {sets} distinct expert sets, group limit binding for {limited}/{routed} tokens"
        ok = ok and sets > 1 and limited > 0  # else the gating under test is not exercised
    report.check(f"{arch} logprobs", ok, detail)


def check_greedy(report, arch, model, grpo, ckpt, prompts):
    got = grpo_greedy(grpo, ckpt, prompts, NEW_TOKENS)
    ok, parts = len(got) == len(prompts), []
    for i, prompt in enumerate(prompts):
        want, gap = hf_greedy(model, prompt, NEW_TOKENS)
        mine = got[i] if i < len(got) else []
        same = mine == want
        ok = ok and same
        if same:
            parts.append(f"prompt {i}: {len(want)} tokens identical (min top-2 gap {gap:.3f})")
        else:
            first = next((k for k, (a, b) in enumerate(zip(want, mine)) if a != b), min(len(want), len(mine)))
            parts.append(f"prompt {i}: differ at new token {first}: HF {want} grpo {mine} (min top-2 gap {gap:.3f})")
    report.check(f"{arch} greedy", ok, "; ".join(parts))


def check_mtp_loaded(report, arch, grpo, ckpt, layer, count, row):
    """grpo builds its MTP module when eh_proj is present and then needs every MTP tensor: the
    checkpoint loading above shows the names and shapes fit; one tensor taken away must be missed."""
    cut = ckpt + "-mtp-cut"
    tensors = safetensors_torch.load_file(os.path.join(ckpt, "model.safetensors"))
    dropped = f"model.layers.{layer}.shared_head.head.weight"
    del tensors[dropped]
    os.makedirs(cut, exist_ok=True)
    shutil.copy(os.path.join(ckpt, "config.json"), cut)
    safetensors_torch.save_file(tensors, os.path.join(cut, "model.safetensors"), metadata={"format": "pt"})
    p = run_grpo(grpo, ["logprobs", "--model", cut, "--threads", THREADS], json.dumps({"ids": row}) + "\n", check=False)
    refused = p.returncode != 0 and f"missing tensors: {dropped}" in p.stderr
    report.check(f"{arch} mtp", refused,
                 f"{count} MTP tensors model.layers.{layer}.* loaded; without {dropped} grpo "
                 + (f"refuses: {p.stderr.strip()[-120:]}" if refused else f"exits {p.returncode}: {p.stderr.strip()}"))


def run_arch(report, arch, grpo, workdir):
    seed = SEED + list(ARCHS).index(arch)
    model = build_model(ARCHS[arch](), seed)
    ckpt = os.path.join(workdir, arch)
    mtp_tensors = save_checkpoint(model, ckpt)
    gen = torch.Generator().manual_seed(seed)
    rows, prompts = random_ids(gen, ROW_LENGTHS), random_ids(gen, PROMPT_LENGTHS)
    check_logprobs(report, arch, model, grpo, ckpt, rows)
    check_greedy(report, arch, model, grpo, ckpt, prompts)
    if mtp_tensors:
        check_mtp_loaded(report, arch, grpo, ckpt, model.config.num_hidden_layers, mtp_tensors, rows[0])


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grpo", required=True, help="path to the grpo binary")
    p.add_argument("--arch", default=",".join(ARCHS), help="comma-separated subset of " + ",".join(ARCHS))
    p.add_argument("--keep", metavar="DIR", help="save the checkpoints under DIR (kept) instead of a temp dir")
    p.add_argument("--device", default="cpu", help="grpo's --device (cuda: the GPU path against HF on the CPU)")
    args = p.parse_args()
    args.arch = [a for a in args.arch.split(",") if a]
    unknown = [a for a in args.arch if a not in ARCHS]
    if unknown or not args.arch:
        p.error(f"--arch: unknown {unknown}; choose from {','.join(ARCHS)}")
    return args


def main():
    global DEVICE
    args = parse_args()
    DEVICE = args.device
    torch.set_num_threads(THREADS)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    grpo = os.path.abspath(args.grpo)
    report, start = Report(), time.time()
    with tempfile.TemporaryDirectory(prefix="oracle_hf_") as tmp:
        workdir = args.keep or tmp
        os.makedirs(workdir, exist_ok=True)
        for arch in args.arch:
            t0 = time.time()
            run_arch(report, arch, grpo, workdir)
            print(f"      {arch}: {time.time() - t0:.1f} s", flush=True)
    print(f"oracle_hf: {time.time() - start:.1f} s")
    return report.exit_code()


if __name__ == "__main__":
    sys.exit(main())
