"""The PyTorch peer of benchmarks/gpu_throughput.py: the same workloads, batch and precision in PyTorch.

As a PyTorch user would train them on a GPU: bf16 autocast over float32 parameters, fused AdamW (on CUDA),
`scaled_dot_product_attention` (flash attention on the GPU), ResNets in channels-last memory format, eager or
`torch.compile`d. One device (the first GPU, else the CPU); the batch is device-resident, as jaxmodels' is.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from peers.torch_models import GPT, BottleneckResNet, as_tensor, loss_of


def build(kind: str, sizes: dict[str, Any]) -> nn.Module:
    """The workload's network from the jaxmodels model's resolved fields (`sizes`)."""
    if kind == "lm":
        keys = ("vocab_size", "block_size", "num_layers", "num_heads", "embed_dim", "dropout")
        return GPT(*(sizes[key] for key in keys))
    if sizes["block"] != "bottleneck":
        raise ValueError(f"the PyTorch peer has the bottleneck ResNet only, not block={sizes['block']!r}")
    return BottleneckResNet(tuple(sizes["stage_sizes"]), sizes["num_classes"], sizes["num_filters"])


def measure_torch(
    kind: str, sizes: dict[str, Any], batch: dict[str, np.ndarray], steps: int, warmup: int, compiled: bool
) -> dict[str, Any]:
    """Times `steps` AdamW steps (after `warmup`) on `batch`; returns step time, examples/s and the last loss."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = build(kind, sizes).to(device)
    if kind == "images":
        model = model.to(memory_format=torch.channels_last)
        batch = {**batch, "inputs": batch["inputs"].transpose(0, 3, 1, 2)}  # NHWC -> NCHW (stored channels-last)
    tensors = {key: as_tensor(value).to(device) for key, value in batch.items()}
    if kind == "images":
        tensors["inputs"] = tensors["inputs"].contiguous(memory_format=torch.channels_last)
    # optax.adamw(3e-4), as the jaxmodels side: weight decay 1e-4 on every parameter.
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=1e-4, fused=device == "cuda")
    forward = torch.compile(model) if compiled else model

    def step() -> torch.Tensor:
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            loss = loss_of(forward(tensors["inputs"]), tensors)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    def synchronize() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    model.train()
    start = time.perf_counter()
    step()
    synchronize()
    first_step = time.perf_counter() - start
    for _ in range(warmup):
        step()
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    synchronize()
    seconds = (time.perf_counter() - start) / steps
    examples = len(batch["inputs"])
    return {
        "torch": torch.__version__,
        "devices": 1,
        "device_kind": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "global_batch": examples,
        "first_step_s": round(first_step, 2),
        "step_ms": round(1e3 * seconds, 3),
        "examples_per_second": round(examples / seconds, 1),
        "loss": float(loss),
    }
