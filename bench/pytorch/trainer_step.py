"""The GRPO learner step in plain PyTorch eager: the baseline bench_trainer runs beside Trainer::step.

HF transformers' DeepseekV3ForCausalLM (its default, eager expert loop) on the checkpoint
bench_trainer wrote, on the batch it wrote, on the same LibTorch as the grpo binary (the
project's Python environment, scripts/pyenv.sh). One step does what Trainer::step does with
bench_trainer's options: old log-probs in micro-batches without grad; one mini-batch of
micro-batches in batch order, each padded to the batch's length, PPO-clip loss (eps 0.2, dual
clip 3) averaged over all completion tokens; global grad-norm clip at 1; AdamW.

  python bench/pytorch/trainer_step.py --model DIR --batch BATCH.safetensors \
      [--dtype fp32|bf16] [--threads 1] [--reps 2] [--micro 4] [--lr 1e-5]

Prints one JSON line: the best step time of --reps after a warm-up step, and the pre-clip grad
norm and loss of the first step (fresh weights), which must match bench_trainer's own.
"""

import argparse
import json
import time

import torch
import transformers
from safetensors.torch import load_file


def ppo_clip_loss(logp, old_logp, advantages, mask, eps=0.2, dual_clip=3.0):
    """Per-token PPO-clip loss with dual clip, zero where mask is 0. Shapes: [B, T], [B, T], [B], [B, T]."""
    ratio = torch.exp(logp - old_logp)
    a = advantages[:, None]
    pg = torch.maximum(-a * ratio, -a * torch.clamp(ratio, 1 - eps, 1 + eps))
    pg = torch.where(a < 0, torch.minimum(pg, -a * dual_clip), pg)
    return pg * mask


def completion_logprobs(model, ids):
    """log p(ids[:, t+1] | ids[:, :t+1]) in fp32: [B, T-1]."""
    logits = model(input_ids=ids).logits[:, :-1].float()
    return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--batch", required=True)
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--micro", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    batch = load_file(args.batch)
    ids, mask, advantages = batch["ids"].long(), batch["mask"].float(), batch["advantages"].float()
    rows, micro = ids.shape[0], args.micro
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def step():
        tokens = mask.sum()
        with torch.no_grad(), autocast:
            old = torch.cat([completion_logprobs(model, ids[s : s + micro]) for s in range(0, rows, micro)])
        optimizer.zero_grad(set_to_none=True)
        loss = 0.0
        for s in range(0, rows, micro):
            with autocast:
                logp = completion_logprobs(model, ids[s : s + micro])
            part = ppo_clip_loss(logp, old[s : s + micro], advantages[s : s + micro], mask[s : s + micro]).sum() / tokens
            part.backward()
            loss += part.item()
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return loss, float(norm)

    start = time.perf_counter()
    loss, norm = step()  # the warm-up, on the fresh weights: its loss and norm are compared
    first_s = time.perf_counter() - start
    best = float("inf")
    for _ in range(args.reps):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    print(
        json.dumps(
            {
                "step_s": best,
                "first_step_s": first_s,
                "loss": loss,
                "grad_norm": norm,
                "dtype": args.dtype,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "experts_implementation": getattr(model.config, "_experts_implementation", None) or "eager",
            }
        )
    )


if __name__ == "__main__":
    main()
