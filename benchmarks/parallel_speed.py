"""Steps per second of each parallel strategy on 8 fake CPU devices against one device.

    python benchmarks/parallel_speed.py [--steps 300]                     # MNIST-1D CNN, batch 128
    python benchmarks/parallel_speed.py --experiment experiments/shakespeare_char_gpt.py --batch 64 --tp

Runs the real loop step (the experiment's own feed, model and optimizer; resident MNIST-1D for the CNN) of
`jaxmodels.experiment.build_experiment` for every strategy in a fresh subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=8 (1 device for the baseline). Fake devices share the host's
cores, so this measures the strategies' overhead (collectives, sharded gathers), not a speed-up: on 2 cores,
8 devices cannot be faster than 1. Every step is waited for
(see `measure`), so the numbers include one host sync per step. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(strategy: str, devices: int, steps: int, experiment_file: str, batch: int, data_dir: str) -> float:
    """Runs in the subprocess: steps/s of the compiled loop step after a warm-up."""
    import jax

    from jaxmodels import config as config_lib
    from jaxmodels.experiment import build_experiment

    overrides = [
        f"--config.parallel.strategy={strategy}",
        f"--config.data.batch_size={batch}",
        "--config.data.eval_batch_size=200",
    ]
    if strategy == "tp":
        overrides.append("--config.parallel.mesh.model=2")
    if data_dir:
        overrides.append(f"--config.data.data_dir={data_dir}")
    config = config_lib.apply_overrides(config_lib.load_config_file(experiment_file), overrides)
    experiment = build_experiment(config)
    state, feed = experiment.initial_state, experiment.feed
    sums = experiment.strategy.put_replicated(experiment.zero_metrics)
    for step in range(20):  # compile and warm up
        state, sums = experiment.loop_step(state, sums, *feed.args_for_step(step))
    jax.block_until_ready(state)
    start = time.perf_counter()
    for step in range(20, 20 + steps):
        state, sums = experiment.loop_step(state, sums, *feed.args_for_step(step))
        # Fake CPU devices run collectives on a small shared thread pool: with many steps in flight they can
        # deadlock (XLA's rendezvous aborts after 40 s), so every strategy, the baseline too, waits each step.
        jax.block_until_ready(state)
    assert jax.device_count() == devices
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--experiment", default=str(ROOT / "experiments" / "mnist1d_cnn.py"))
    parser.add_argument("--batch", type=int, default=128, help="global batch (divisible by 8)")
    parser.add_argument("--tp", action="store_true", help="also tp on a (data 4, model 2) mesh: Transformers only")
    parser.add_argument("--data-dir", default=os.environ.get("TFDS_DATA_DIR", ""))
    parser.add_argument("--child", nargs=2, metavar=("STRATEGY", "DEVICES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        strategy, devices = args.child[0], int(args.child[1])
        rate = measure(strategy, devices, args.steps, args.experiment, args.batch, args.data_dir)
        print(json.dumps({"steps_per_second": rate}))
        return
    runs = [("dp", 1), ("pmap", 8), ("dp", 8), ("fsdp", 8)] + ([("tp", 8)] if args.tp else [])
    name = Path(args.experiment).name
    print(f"| strategy | devices | steps/s ({name}, batch {args.batch}) |\n|---|---|---|")
    for strategy, devices in runs:
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", PYTHONPATH=str(ROOT))
        command = [sys.executable, __file__, "--steps", str(args.steps), "--experiment", args.experiment]
        command += ["--batch", str(args.batch)]
        command += ["--data-dir", args.data_dir, "--child", strategy, str(devices)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
        rate = json.loads(done.stdout.strip().splitlines()[-1])["steps_per_second"]
        label = "one device (dp on a 1-device mesh)" if devices == 1 else strategy
        print(f"| {label} | {devices} | {rate:,.3g} |", flush=True)


if __name__ == "__main__":
    main()
