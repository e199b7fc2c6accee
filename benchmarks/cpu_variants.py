"""How should jaxmodels use a CPU host's cores? The char GPT's train step under XLA device and flag variants.

Each variant is the jaxmodels worker of benchmarks/frameworks.py (the experiment's real loop step and feed) in its
own process with its own XLA_FLAGS and config overrides: one CPU device (the default); two host devices
(`--xla_force_host_platform_device_count=2`) with data parallelism; XLA's XNNPACK and oneDNN CPU paths. The
workers start one after another, then run `--rounds` interleaved timing rounds of `--seconds` each; we print the
median steps/s of each variant and its ratio to the default.

    python benchmarks/gpt_cpu_variants.py [--case char_gpt] [--rounds 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from frameworks import Worker

TWO_DEVICES = "--xla_force_host_platform_device_count=2"
# label -> (XLA_FLAGS, jaxmodels config overrides)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "1 device (default)": ("", []),
    "2 devices, dp": (TWO_DEVICES, ["parallel.strategy=dp"]),
    "1 device, xnnpack": ("--xla_cpu_use_xnnpack=true", []),
    "1 device, onednn": ("--xla_cpu_use_onednn=true", []),
    "2 devices, dp, xnnpack": (f"{TWO_DEVICES} --xla_cpu_use_xnnpack=true", ["parallel.strategy=dp"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="char_gpt")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {}
    workers: dict[str, Worker] = {}
    with tempfile.TemporaryDirectory() as logs:
        try:
            for index, (label, (flags, overrides)) in enumerate(VARIANTS.items()):
                env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip())
                data = Path(logs) / f"{index}.npz"
                arguments = ["jaxmodels", args.case, str(data), str(args.seconds / 4), *overrides]
                worker = Worker(arguments, Path(logs) / f"{index}.log", env)
                try:
                    print(label, worker.ask(None, timeout=600), flush=True)
                    workers[label], rates[label] = worker, []
                except RuntimeError as error:
                    print(f"{label}: failed: {error}", flush=True)
                    worker.close()
            for round_index in range(args.rounds):
                order = list(workers)
                for label in order[round_index % len(order) :] + order[: round_index % len(order)]:
                    answer = workers[label].ask({"op": "time", "seconds": args.seconds}, timeout=10 * args.seconds + 60)
                    rates[label].append(answer["steps"] / answer["seconds"])
        finally:
            for worker in workers.values():
                worker.close()
    base = statistics.median(rates["1 device (default)"]) if rates.get("1 device (default)") else None
    print(f"| {args.case} variant | steps/s (median) | / 1 device | rounds |\n|---|---|---|---|")
    for label, values in rates.items():
        median = statistics.median(values)
        ratio = f"{median / base:.2f}" if base else ""
        print(f"| {label} | {median:.1f} | {ratio} | {', '.join(f'{v:.1f}' for v in values)} |")


if __name__ == "__main__":
    main()
