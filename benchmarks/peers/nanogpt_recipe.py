"""nanoGPT's shakespeare_char CPU recipe in PyTorch, on token ids the driver wrote (benchmarks/nanogpt_reference.py).

The model is the peer GPT of peers.torch_models with nanoGPT's own choices (no biases, exact GELU). Training follows
nanoGPT's train.py with config/train_shakespeare_char.py and its README's CPU overrides (block 64, batch 12, 4 layers,
4 heads, 128 wide, dropout 0, 2,000 iterations, lr_decay_iters 2,000): each batch is `batch_size` windows at
uniformly random offsets of the training ids, AdamW (betas 0.9/0.99, eps 1e-8, weight decay 0.1 on matrices and
embeddings, none on the rest), gradient-norm clipping at 1.0, float32, and nanoGPT's rate: linear warm-up
lr * (it + 1) / (warmup + 1) over 100 iterations, then cosine decay to min_lr = 1e-4 at lr_decay_iters. The score is
the mean cross-entropy per character over every non-overlapping window of the validation ids (not nanoGPT's 200
random batches). Prints one JSON line: {"seed", "iters", "val_loss", "train_seconds", "torch"}.

    cd benchmarks && python -m peers.nanogpt_recipe ids.npz --seed 0 --iters 2000
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from peers.torch_models import GPT, as_tensor, loss_of, make_optimizer

RECIPE = {
    "block_size": 64,
    "batch_size": 12,
    "num_layers": 4,
    "num_heads": 4,
    "embed_dim": 128,
    "dropout": 0.0,
    "bias": False,
    "gelu": "none",
    "learning_rate": 1e-3,
    "min_lr": 1e-4,
    "warmup_iters": 100,
    "weight_decay": 0.1,
    "beta1": 0.9,
    "beta2": 0.99,
    "grad_clip": 1.0,
}
EVAL_BATCH = 256  # windows per forward pass when scoring; any size gives the same mean


def nanogpt_rate(iteration: int, lr_decay_iters: int) -> float:
    """nanoGPT's get_lr: linear warm-up from lr / (warmup + 1), cosine decay to min_lr at lr_decay_iters."""
    peak, floor, warmup = RECIPE["learning_rate"], RECIPE["min_lr"], RECIPE["warmup_iters"]
    if iteration < warmup:
        return peak * (iteration + 1) / (warmup + 1)
    if iteration > lr_decay_iters:
        return floor
    ratio = (iteration - warmup) / max(lr_decay_iters - warmup, 1)
    return floor + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (peak - floor)


def random_batch(ids: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """`batch_size` windows of `block_size` + 1 ids at random offsets, as nanoGPT's get_batch."""
    block = RECIPE["block_size"]
    starts = torch.randint(len(ids) - block, (RECIPE["batch_size"],), generator=generator)
    windows = torch.stack([ids[start : start + block + 1] for start in starts.tolist()])
    return {"inputs": windows[:, :-1], "targets": windows[:, 1:]}


def build(vocab_size: int) -> GPT:
    sizes = ("block_size", "num_layers", "num_heads", "embed_dim", "dropout", "bias", "gelu")
    return GPT(vocab_size, *(RECIPE[key] for key in sizes))


def train(model: nn.Module, train_ids: torch.Tensor, seed: int, iters: int) -> None:
    settings = {"name": "adamw", "learning_rate": RECIPE["learning_rate"], "weight_decay": RECIPE["weight_decay"]}
    optimizer = make_optimizer(model, {**settings, "b1": RECIPE["beta1"], "b2": RECIPE["beta2"], "eps": 1e-8})
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for iteration in range(iters):
        for group in optimizer.param_groups:
            group["lr"] = nanogpt_rate(iteration, iters)
        batch = random_batch(train_ids, generator)
        loss = loss_of(model(batch["inputs"]), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), RECIPE["grad_clip"])
        optimizer.step()


@torch.no_grad()
def whole_text_loss(model: nn.Module, windows: torch.Tensor) -> float:
    """Mean cross-entropy per predicted character over all (windows, block_size + 1) validation windows."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(windows), EVAL_BATCH):
        chunk = windows[start : start + EVAL_BATCH]
        total += float(loss_of(model(chunk[:, :-1]), {"targets": chunk[:, 1:]})) * chunk[:, 1:].numel()
        count += chunk[:, 1:].numel()
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", type=Path, help="npz with 'train' (1-D ids), 'val_windows' (N, 65) and 'vocab_size'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=0, help="torch's intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with np.load(args.ids) as data:
        train_ids, windows, vocab_size = (
            as_tensor(data["train"]),
            as_tensor(data["val_windows"]),
            int(data["vocab_size"]),
        )
    torch.manual_seed(args.seed)
    model = build(vocab_size)
    start = time.perf_counter()
    train(model, train_ids, args.seed, args.iters)
    seconds = time.perf_counter() - start
    result = {"seed": args.seed, "iters": args.iters, "val_loss": whole_text_loss(model, windows)}
    print(json.dumps({**result, "train_seconds": seconds, "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
