"""Reproduces Greydanus (2020) Table 1 on MNIST-1D: four models x several seeds, mean +- std.

Each run is exactly `jaxmodels train --config experiments/mnist1d_<model>.py
--workdir <out>/<model>_seed<k> --config.seed=<k>`, done in-process. Reports final-step test
accuracy and the best test accuracy over the evaluations (every 250 steps), as a markdown table.

    python benchmarks/mnist1d_table.py --seeds 0 1 2 --out runs/table
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from jaxmodels import config as config_lib
from jaxmodels.run import train

PAPER = {"logreg": "32 ± 1", "mlp": "68 ± 2", "cnn": "94 ± 2", "gru": "91 ± 2"}


def run(model: str, seed: int, out: Path, data_dir: str) -> tuple[float, float, float]:
    """Trains one (model, seed); returns (final accuracy %, best accuracy %, wall seconds)."""
    workdir = out / f"{model}_seed{seed}"
    overrides = [f"--config.seed={seed}", "--config.train.progress_bar=False", f"--config.data.data_dir={data_dir}"]
    config = config_lib.apply_overrides(config_lib.load_config_file(f"experiments/mnist1d_{model}.py"), overrides)
    start = time.perf_counter()
    final = train(config, workdir).final
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    best = max(r["test/accuracy"] for r in records if "test/accuracy" in r)
    return 100 * final["test/accuracy"], 100 * best, seconds


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(PAPER))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/table"))
    parser.add_argument("--data_dir", default="")
    args = parser.parse_args()
    rows = [
        "| model | paper (Table 1) | ours, final step | ours, best eval | seeds | wall s/run |",
        "|---|---|---|---|---|---|",
    ]
    for model in args.models:
        results = [run(model, seed, args.out, args.data_dir) for seed in args.seeds]
        finals, bests, seconds = zip(*results, strict=True)
        print(f"{model}: final {finals} best {bests}", flush=True)
        rows.append(
            f"| {model} | {PAPER[model]} | {mean_std(list(finals))} | {mean_std(list(bests))} | "
            f"{len(args.seeds)} | {statistics.mean(seconds):.0f} |"
        )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
