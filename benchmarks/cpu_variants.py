"""How should jaxmodels use a CPU host's cores? Each benchmark case's train step, one CPU device against several.

Each variant is the jaxmodels worker of benchmarks/frameworks.py (the experiment's real loop step and feed) in its
own process with its own config overrides and XLA_FLAGS: the experiment as written; `parallel.cpu_devices=1`
(one CPU device, XLA's intra-op threads over every core); `parallel.cpu_devices=2` (two devices, dp: each
computes half the batch on its own thread). `--xla` adds XLA's oneDNN and YNNPACK CPU paths. The
workers of a case start one after another, then run `--rounds` interleaved timing rounds of `--seconds` each;
one table row per case and variant: the median steps/s and its ratio to one device. docs/benchmarks.md keeps
the result and the defaults it chose.

    python benchmarks/cpu_variants.py [--cases char_gpt mnist1d_cnn ...] [--rounds 5] [--seconds 3] [--xla]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from frameworks import Worker, interleaved_rounds
from peers.cases import CASES

ONE_DEVICE = "1 device"
# label -> (XLA_FLAGS, jaxmodels config overrides)
DEVICE_VARIANTS: dict[str, tuple[str, list[str]]] = {
    "as the experiment": ("", []),
    ONE_DEVICE: ("", ["parallel.cpu_devices=1"]),
    "2 devices, dp": ("", ["parallel.cpu_devices=2", "parallel.strategy=dp"]),
}
YNN_DOT = "--xla_cpu_experimental_ynn_fusion_type=dot"  # XLA's YNNPACK library calls for dots and convolutions
XLA_VARIANTS: dict[str, tuple[str, list[str]]] = {
    "1 device, onednn": ("--xla_cpu_use_onednn=true", ["parallel.cpu_devices=1"]),
    "1 device, ynnpack": (YNN_DOT, ["parallel.cpu_devices=1"]),
    "2 devices, dp, ynnpack": (YNN_DOT, ["parallel.cpu_devices=2", "parallel.strategy=dp"]),
}


def time_variants(
    case: str, variants: dict[str, tuple[str, list[str]]], rounds: int, seconds: float, logs: Path
) -> dict[str, list[float]]:
    """{variant: steps/s of each round} for one case, the variants' workers alive together, rounds interleaved."""
    workers: dict[str, Worker] = {}
    try:
        for index, (label, (flags, overrides)) in enumerate(variants.items()):
            env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip())
            arguments = ["jaxmodels", case, str(logs / f"{case}_{index}.npz"), str(seconds / 4), *overrides]
            worker = Worker(arguments, logs / f"{case}_{index}.log", env)
            try:
                worker.ask(None, timeout=600)
                workers[label] = worker
            except RuntimeError as error:
                print(f"{case}, {label}: failed: {error}", flush=True)
                worker.close()
        return interleaved_rounds(workers, rounds, seconds)
    finally:
        for worker in workers.values():
            worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--xla", action="store_true", help="also XLA's oneDNN and YNNPACK CPU paths")
    args = parser.parse_args()
    variants = {**DEVICE_VARIANTS, **(XLA_VARIANTS if args.xla else {})}
    print("| case | variant | steps/s (median) | / 1 device | rounds |\n|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as logs:
        for case in args.cases:
            rates = time_variants(case, variants, args.rounds, args.seconds, Path(logs))
            base = statistics.median(rates[ONE_DEVICE]) if rates.get(ONE_DEVICE) else None
            for label, values in rates.items():
                median = statistics.median(values)
                ratio = f"{median / base:.2f}" if base else ""
                rounds = ", ".join(f"{v:.1f}" for v in values)
                print(f"| {case} | {label} | {median:.1f} | {ratio} | {rounds} |", flush=True)


if __name__ == "__main__":
    main()
