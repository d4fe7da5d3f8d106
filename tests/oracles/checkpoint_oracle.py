"""Live oracle: a `grpo train` checkpoint loads on its own in HuggingFace transformers.

A one-step GRPO run on a tiny random DeepSeek-V3 (dsv3-tiny's shape with the bpe-tokenizer
fixture's 3000-token vocabulary; `grpo init-model`, the run's tokenizer files beside it), then on
its checkpoint, with nothing but the checkpoint directory:

  tokenizer   AutoTokenizer.from_pretrained(ckpt): the same ids as `grpo tokenize --tokenizer ckpt`
              on a few texts, and the BOS/EOS/pad tokens of the run's tokenizer_config.json.
  generation  GenerationConfig.from_pretrained(ckpt): bos/eos/pad ids 0, 1, 3.
  model       AutoModelForCausalLM.from_pretrained(ckpt): log-probs of 2 sequences equal to
              `grpo logprobs --model ckpt` within 1e-4.

Run by ctest (`ctest -R oracle_checkpoint`) or by hand:
  python tests/oracles/checkpoint_oracle.py --grpo build/apps/grpo
Exit code 0 when every check passes, 1 otherwise (a missing Python package is a failure too).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

from oracle_common import Report, json_lines, require, run_grpo

torch, transformers = require("torch", "transformers")
transformers.logging.set_verbosity_error()  # HF lists the MTP layer's tensors, which it has no module for

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(SOURCE, "tests", "data")
TOKENIZER_CONFIG = {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>", "pad_token": "</think>"}
TEXTS = ["What is 2 + 2?", "<think>step by step</think><answer>4</answer>", "héllo wörld  123\n\tend"]


def make_checkpoint(grpo, tmp):
    """A one-step `grpo train` run on a random tiny model; returns its checkpoint directory."""
    with open(os.path.join(DATA, "dsv3-tiny", "config.json")) as f:
        config = json.load(f)
    config["vocab_size"] = 3000  # the bpe-tokenizer fixture's
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(config, f)
    base = os.path.join(tmp, "base")
    run_grpo(grpo, ["init-model", "--config", os.path.join(tmp, "config.json"), "--out", base, "--seed", "3"])
    shutil.copy(os.path.join(DATA, "bpe-tokenizer", "tokenizer.json"), base)
    with open(os.path.join(base, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(TOKENIZER_CONFIG, f, ensure_ascii=False)
    with open(os.path.join(tmp, "train.jsonl"), "w") as f:
        for i in range(6):
            f.write(json.dumps({"id": f"q{i}", "prompt": f"What is {i} + {i}?", "answer": str(2 * i)}) + "\n")
    with open(os.path.join(tmp, "run.yaml"), "w") as f:
        f.write(f"run: {{name: t, seed: 3, threads: 1, out_dir: {tmp}/run}}\n"
                f"model: {{path: {base}}}\n"
                f"template: {SOURCE}/configs/chat_templates/chatml-think.yaml\n"
                f"data:\n  train: {{path: {tmp}/train.jsonl}}\n"
                f"reward: {{config: {SOURCE}/configs/reward.yaml, verifier: shaped}}\n"
                "rollout: {workers: 1, group_size: 4, sampling: {max_new_tokens: 8}}\n"
                "train: {steps: 1, prompts_per_step: 3}\n"
                "trainer: {lr: 0.001, micro_batch_size: 6, mini_batches: 1, threads: 1}\n")
    run_grpo(grpo, ["train", "--quiet", os.path.join(tmp, "run.yaml")], timeout=600)
    return os.path.join(tmp, "run", "checkpoints", "step-000001")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grpo", required=True, help="path of the grpo binary")
    grpo = os.path.abspath(ap.parse_args().grpo)
    report = Report()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="oracle_checkpoint_") as tmp:
        ckpt = make_checkpoint(grpo, tmp)

        tok = transformers.AutoTokenizer.from_pretrained(ckpt)
        hf_ids = [tok.encode(t, add_special_tokens=False) for t in TEXTS]
        ours = [o["ids"] for o in json_lines(run_grpo(
            grpo, ["tokenize", "--tokenizer", ckpt], "".join(json.dumps({"text": t}) + "\n" for t in TEXTS)))]
        specials = (tok.bos_token, tok.eos_token, tok.pad_token)
        want = (TOKENIZER_CONFIG["bos_token"], TOKENIZER_CONFIG["eos_token"], TOKENIZER_CONFIG["pad_token"])
        report.check("tokenizer", hf_ids == ours and specials == want,
                     f"AutoTokenizer ids {'==' if hf_ids == ours else '!='} grpo tokenize; bos/eos/pad {specials}")

        gen = transformers.GenerationConfig.from_pretrained(ckpt)
        got = (gen.bos_token_id, gen.eos_token_id, gen.pad_token_id)
        report.check("generation", got == (0, 1, 3), f"bos/eos/pad ids {got}, want (0, 1, 3)")

        model = transformers.AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()
        rows = [torch.randint(4, 3000, (n,)).tolist() for n in (12, 17)]
        stdin = "".join(json.dumps({"ids": r}) + "\n" for r in rows)
        ours = [o["logprobs"] for o in json_lines(run_grpo(grpo, ["logprobs", "--model", ckpt, "--threads", "1"], stdin))]
        worst = 0.0
        with torch.no_grad():
            for row, got in zip(rows, ours):
                ids = torch.tensor([row])
                lp = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1).gather(-1, ids[0, 1:, None])[:, 0]
                worst = max(worst, (lp - torch.tensor(got)).abs().max().item())
        report.check("model", worst <= 1e-4, f"AutoModelForCausalLM log-probs vs grpo logprobs: max |diff| {worst:.2e}")
    return report.exit_code()


if __name__ == "__main__":
    sys.exit(main())
