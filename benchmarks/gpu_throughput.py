"""Train-step throughput and model FLOPs utilisation (MFU) of the GPT and ResNet steps on an accelerator,
jaxmodels beside PyTorch.

One prepared script for a lent GPU (bf16 compute, float32 parameters and Adam state): for each model jaxmodels
compiles `jaxmodels.steps.train_step` once, data parallel over every local device, runs warm-up steps, then
times `--steps` steps on a device-resident random batch (the input pipeline is measured separately, in
benchmarks/feed_vs_step.py) and reports examples/s, tokens/s for the GPTs, XLA's FLOPs per step and MFU against
the card's dense bf16 peak. For the GPTs it also reports MFU from the PaLM formula (6 x parameters + 12 x layers
x width x context FLOPs per token), which does not count recomputation. PyTorch, where it is installed, trains
the same networks on one device's share of the batch, eager and `torch.compile`d (benchmarks/peers/
torch_throughput.py); its MFU uses the same FLOPs per example, and `per_device_vs_torch` is jaxmodels'
examples/s per device over PyTorch's. Each framework runs in its own process, so that neither holds the other's
GPU memory (JAX reserves most of it at start).

    python benchmarks/gpu_throughput.py --out gpu_throughput.json            # on the GPU
    python benchmarks/gpu_throughput.py --smoke                              # tiny models, any machine
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from peers.cases import model_sizes

from jaxmodels.models import get_model
from jaxmodels.steps import create_train_state, train_step
from jaxmodels.tasks import Classify, LanguageModel

# Dense bf16 tensor-core peaks from the vendors' data sheets (FLOP/s, without sparsity), by `device_kind`.
PEAK_BF16 = {
    "NVIDIA H100 80GB HBM3": 989e12,  # SXM
    "NVIDIA H100 PCIe": 756e12,
    "NVIDIA H100 NVL": 835e12,
    "NVIDIA H200": 989e12,
    "NVIDIA A100-SXM4-80GB": 312e12,
    "NVIDIA A100-SXM4-40GB": 312e12,
    "NVIDIA A100 80GB PCIe": 312e12,
}

# name -> (model name, model arguments, kind, per-device batch, example shape)
WORKLOADS = {
    # nanoGPT's shakespeare_char GPU recipe (6 layers, 6 heads, 384 wide, 256 characters of context)
    "gpt_shakespeare_char": ("gpt", dict(vocab_size=96, block_size=256, num_layers=6, num_heads=6, embed_dim=384,
                                         dropout=0.2), "lm", 64, (256,)),
    # GPT-2 small (124M) on 1,024-token windows
    "gpt2_small": ("gpt2_small", dict(dropout=0.0), "lm", 16, (1024,)),
    # ResNet-50 on ImageNet-sized images
    "resnet50": ("resnet50", dict(num_classes=1000), "images", 128, (224, 224, 3)),
}  # fmt: skip
SMOKE = {
    "gpt_tiny": ("gpt", dict(vocab_size=32, block_size=16, num_layers=1, num_heads=2, embed_dim=16), "lm", 4, (16,)),
    "resnet_tiny": ("resnet", dict(stage_sizes=(1, 1), block="bottleneck", num_filters=8, num_classes=10), "images",
                    4, (32, 32, 3)),
}  # fmt: skip


def random_batch(kind: str, batch: int, shape: tuple[int, ...], vocab_or_classes: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    if kind == "lm":
        tokens = rng.integers(0, vocab_or_classes, (batch, shape[0] + 1)).astype(np.int32)
        return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}
    return {
        "inputs": rng.normal(size=(batch, *shape)).astype(np.float32),
        "label": rng.integers(0, vocab_or_classes, batch).astype(np.int32),
    }


def palm_flops_per_token(params: Any, model: Any) -> float:
    """6N + 12 L d T: the forward and backward matmul FLOPs per token (Chowdhery et al. 2022, Appendix B)."""
    count = sum(x.size for x in jax.tree.leaves(params))
    return 6 * count + 12 * model.num_layers * model.embed_dim * model.block_size


def measure(name: str, spec: tuple, steps: int, warmup: int) -> dict[str, Any]:
    model_name, arguments, kind, per_device, shape = spec
    devices = jax.local_devices()
    mesh = Mesh(np.array(devices), ("data",))
    replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    model = get_model(model_name, **arguments)
    task = LanguageModel() if kind == "lm" else Classify()
    size = model.vocab_size if kind == "lm" else model.num_classes
    batch = random_batch(kind, per_device * len(devices), shape, size)
    tx = optax.adamw(3e-4)
    state = jax.jit(functools.partial(create_train_state, model, task, tx), out_shardings=replicated)(
        batch, jax.random.key(0)
    )
    batch = jax.device_put(batch, sharded)
    step = jax.jit(
        functools.partial(train_step, model=model, task=task, tx=tx, compute_dtype="bfloat16"),
        out_shardings=(replicated, replicated),
        donate_argnums=(0,),
    )
    rng = jax.random.key(1)
    start = time.perf_counter()
    compiled = step.lower(state, batch, rng).compile()
    state, metrics = compiled(state, batch, rng)
    jax.block_until_ready(state)
    first_step = time.perf_counter() - start
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", 0.0)) * len(devices)  # cost_analysis is per device
    for _ in range(warmup):
        state, metrics = compiled(state, batch, rng)
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = compiled(state, batch, rng)
    jax.block_until_ready((state, metrics))
    seconds = (time.perf_counter() - start) / steps
    examples = per_device * len(devices)
    peak = PEAK_BF16.get(devices[0].device_kind)
    result: dict[str, Any] = {
        "model": model_name,
        "devices": len(devices),
        "device_kind": devices[0].device_kind,
        "global_batch": examples,
        "first_step_s": round(first_step, 2),
        "step_ms": round(1e3 * seconds, 3),
        "examples_per_second": round(examples / seconds, 1),
        "xla_flops_per_step": flops,
        "mfu_xla": round(flops / seconds / (peak * len(devices)), 4) if peak else None,
        "loss": float(metrics["loss"] / metrics["count"]),
    }
    if kind == "lm":
        tokens = examples * shape[0]
        result["tokens_per_second"] = round(tokens / seconds, 1)
        result["palm_flops_per_token"] = palm_flops_per_token(state.params, model)
        if peak:
            result["mfu_palm"] = round(result["palm_flops_per_token"] * tokens / seconds / (peak * len(devices)), 4)
    return result


def measure_peer(spec: tuple, steps: int, warmup: int, compiled: bool) -> dict[str, Any]:
    """The workload in PyTorch on one device, with one device's share of jaxmodels' batch."""
    from peers.torch_throughput import measure_torch  # PyTorch is a peer, installed apart (and absent in CI)

    _, _, kind, per_device, shape = spec
    sizes = model_sizes(get_model(spec[0], **spec[1]))
    batch = random_batch(kind, per_device, shape, sizes["vocab_size"] if kind == "lm" else sizes["num_classes"])
    return measure_torch(kind, sizes, batch, steps, warmup, compiled)


FRAMEWORKS = ("jaxmodels", "torch", "torch_compile")
RESULT = "RESULT "  # a worker's last stdout line: this, then its results as JSON


def worker(framework: str, workloads: dict[str, tuple], steps: int, warmup: int) -> None:
    """Measures every workload in `framework` and prints the results (progress goes to stderr)."""
    results: dict[str, Any] = {}
    for name, spec in workloads.items():
        try:
            if framework == "jaxmodels":
                results[name] = measure(name, spec, steps, warmup)
            else:
                results[name] = measure_peer(spec, steps, warmup, compiled=framework == "torch_compile")
        except Exception as error:  # one workload's failure (out of memory, no PyTorch) is one of its results
            results[name] = {"error": f"{type(error).__name__}: {error}"}
        print(framework, name, json.dumps(results[name]), file=sys.stderr, flush=True)
    print(RESULT + json.dumps(results), flush=True)


def run_worker(framework: str, args: argparse.Namespace) -> dict[str, Any]:
    """Runs one framework's worker in a child process; {workload: results}, or {'error': why} if it died."""
    command = [sys.executable, __file__, "--worker", framework, "--steps", str(args.steps)]
    command += ["--warmup", str(args.warmup)] + (["--smoke"] if args.smoke else [])
    try:
        process = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"the {framework} worker took more than --timeout {args.timeout:g} s"}
    lines = [line for line in process.stdout.splitlines() if line.startswith(RESULT)]
    if not lines:
        return {"error": f"the {framework} worker exited with status {process.returncode} and no results"}
    return json.loads(lines[-1][len(RESULT) :])


def compare_with_peers(results: dict[str, dict[str, Any]]) -> None:
    """Adds to each peer result its MFU (jaxmodels' FLOPs per example) and jaxmodels' per-device ratio to it."""
    for name, ours in results["jaxmodels"].items():
        if not isinstance(ours, dict) or "error" in ours:  # the worker or this workload failed
            continue
        peak = PEAK_BF16.get(ours["device_kind"])
        per_device = ours["examples_per_second"] / ours["devices"]
        for framework in FRAMEWORKS[1:]:
            peer = results.get(framework, {}).get(name)
            if not peer or "error" in peer:
                continue
            rate = peer["examples_per_second"]
            if peak:
                peer["mfu_xla"] = round(ours["xla_flops_per_step"] / ours["global_batch"] * rate / peak, 4)
            if "tokens_per_second" in ours:
                peer["tokens_per_second"] = round(rate * ours["tokens_per_second"] / ours["examples_per_second"], 1)
                if peak:
                    peer["mfu_palm"] = round(ours["palm_flops_per_token"] * peer["tokens_per_second"] / peak, 4)
            ours[f"per_device_vs_{framework}"] = round(per_device / rate, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny models and 2 steps: checks the script runs")
    names = ", ".join(FRAMEWORKS)
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help=f"comma-separated, of {names}")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for each framework's worker")
    parser.add_argument("--out", default="", help="also write the results here as JSON")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    workloads = SMOKE if args.smoke else WORKLOADS
    if args.smoke:
        args.steps, args.warmup = 2, 1
    if args.worker:
        worker(args.worker, workloads, args.steps, args.warmup)
        return
    frameworks = args.frameworks.split(",")
    if frameworks[0] != "jaxmodels" or not set(frameworks) <= set(FRAMEWORKS):
        parser.error(f"--frameworks: jaxmodels first (the peers' MFU uses its FLOP count), then any of {names}")
    results = {framework: run_worker(framework, args) for framework in frameworks}
    compare_with_peers(results)
    run = {"jax": jax.__version__, "date": time.strftime("%Y-%m-%d"), "frameworks": results}
    print(json.dumps(run, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(run, indent=2))


if __name__ == "__main__":
    main()
