"""Reproduces Greydanus (2020) Table 1 on MNIST-1D: four models x several seeds, mean +- std.

Each run is exactly `jaxmodels train --config experiments/mnist1d_<model>.py
--workdir <out>/<model>_seed<k> --config.seed=<k>`, done in-process. Reports final-step test
accuracy and the best test accuracy over the evaluations (every 250 steps), as a markdown table.

    python benchmarks/mnist1d_table.py --seeds 0 1 2 --out runs/table

`--json <file>` also writes every run's numbers (final and best accuracy %, the final test
loss at full precision) so that two runs of the table, e.g. on two machines or under two
`XLA_FLAGS=--xla_cpu_max_isa=...` settings, can be compared number by number; `--compare a.json b.json`
prints that comparison as a markdown table (per seed: b - a; bitwise: the final test loss is the same float).
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


def run(model: str, seed: int, out: Path, data_dir: str) -> tuple[float, float, float, float]:
    """Trains one (model, seed); returns (final accuracy %, best accuracy %, wall seconds, final test loss)."""
    workdir = out / f"{model}_seed{seed}"
    overrides = [f"--config.seed={seed}", "--config.train.progress_bar=False", f"--config.data.data_dir={data_dir}"]
    config = config_lib.apply_overrides(config_lib.load_config_file(f"experiments/mnist1d_{model}.py"), overrides)
    start = time.perf_counter()
    final = train(config, workdir).final
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    best = max(r["test/accuracy"] for r in records if "test/accuracy" in r)
    return 100 * final["test/accuracy"], 100 * best, seconds, final["test/loss"]


def mean_std(values: list[float]) -> str:
    """Mean ± sample standard deviation (ddof=1), one decimal."""
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.1f}"


def compare(first: Path, second: Path) -> str:
    """Per model: the per-seed final-accuracy differences (second - first), how many seeds give the very same final
    test loss (bitwise), and mean ± sample std (ddof=1) of the final accuracy under each."""
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    rows = [
        f"| model | {first.name}: final % | {second.name}: final % | per-seed difference, points | bitwise equal |",
        "|---|---|---|---|---|",
    ]
    for model in a:
        pairs = list(zip(a[model], b[model], strict=True))
        if any(x["seed"] != y["seed"] for x, y in pairs):
            raise SystemExit(f"{model}: the two files hold other seeds")
        differences = ", ".join(f"{y['final_accuracy'] - x['final_accuracy']:+.1f}" for x, y in pairs)
        equal = sum(x["final_test_loss"] == y["final_test_loss"] for x, y in pairs)
        finals = [[run["final_accuracy"] for run in runs] for runs in (a[model], b[model])]
        rows.append(
            f"| {model} | {mean_std(finals[0])} | {mean_std(finals[1])} | {differences} | {equal} of {len(pairs)} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(PAPER))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/table"))
    parser.add_argument("--data_dir", default="")
    parser.add_argument("--json", type=Path, help="also write every run's numbers to this JSON file")
    parser.add_argument("--compare", nargs=2, type=Path, metavar="JSON", help="compare two --json files; no training")
    args = parser.parse_args()
    if args.compare:
        print(compare(*args.compare))
        return
    rows = [
        "| model | paper (Table 1) | ours, final step | ours, best eval | seeds | wall s/run |",
        "|---|---|---|---|---|---|",
    ]
    per_run: dict[str, list[dict[str, float]]] = {}
    for model in args.models:
        results = [run(model, seed, args.out, args.data_dir) for seed in args.seeds]
        finals, bests, seconds, losses = zip(*results, strict=True)
        per_run[model] = [
            {"seed": seed, "final_accuracy": f, "best_accuracy": b, "final_test_loss": loss}
            for seed, f, b, loss in zip(args.seeds, finals, bests, losses, strict=True)
        ]
        print(f"{model}: final {finals} best {bests}", flush=True)
        rows.append(
            f"| {model} | {PAPER[model]} | {mean_std(list(finals))} | {mean_std(list(bests))} | "
            f"{len(args.seeds)} | {statistics.mean(seconds):.0f} |"
        )
    print("\n".join(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(per_run, indent=1) + "\n")


if __name__ == "__main__":
    main()
