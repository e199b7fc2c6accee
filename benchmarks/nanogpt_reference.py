"""nanoGPT's shakespeare_char CPU recipe (PyTorch) beside jaxmodels' GPT experiment, same text, same score, seeds.

Both read the corpus, split and character vocabulary of jaxmodels' `shakespeare` data view (the whole text split 90/10
by position, the vocabulary of the training part) and are scored alike: the mean cross-entropy per character over the
WHOLE validation text in non-overlapping 64-character windows (jaxmodels' `data.eval_windows=0`).

- PyTorch: benchmarks/peers/nanogpt_recipe.py, nanoGPT's recipe (train.py with config/train_shakespeare_char.py and
  the README's CPU overrides) on the repository's PyTorch GPT peer, in its own process (`--torch_python`, default
  this interpreter: the venv `make benchmarks` puts PyTorch in, benchmarks/requirements-peers.txt).
- jaxmodels: `jaxmodels train --config experiments/shakespeare_char_gpt.py --config.seed=<k>
  --config.data.eval_windows=0`, also one process per run.

Writes per-seed losses, their means and sample standard deviations (ddof=1) as JSON:

    python benchmarks/nanogpt_reference.py --seeds 0 1 2 --out docs/nanogpt_reference.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from peers.report import machine

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
EXPERIMENT = "experiments/shakespeare_char_gpt.py"


def text_ids(data_dir: str) -> dict[str, Any]:
    """Training ids, validation windows (N, 65) and vocabulary size of the experiment's data view."""
    from jaxmodels import config as config_lib
    from jaxmodels.data import sources, views

    config = config_lib.load_config_file(str(ROOT / EXPERIMENT))
    builder = sources.open_dataset(config.data.name, data_dir)
    train_ids, val_ids, tokenizer = views._corpus_tokens(config, builder, None, "lm_windows")
    windows = views._windows(val_ids, config.data.block_size, 0)
    return {"train": train_ids, "val_windows": windows, "vocab_size": tokenizer.vocab_size}


def run_json(command: list[str], cwd: Path) -> dict[str, Any]:
    """Runs `command` and returns the JSON of its last stdout line; RuntimeError with its stderr's tail if it fails."""
    finished = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed: {finished.stderr.strip()[-2000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def torch_run(python: str, ids: Path, seed: int, iters: int, threads: int) -> dict[str, Any]:
    command = [python, "-m", "peers.nanogpt_recipe", str(ids), "--seed", str(seed), "--iters", str(iters)]
    return run_json([*command, "--threads", str(threads)], BENCHMARKS)


def jaxmodels_run(workdir: Path, seed: int, iters: int, data_dir: str) -> dict[str, Any]:
    """`jaxmodels train` of the experiment (whole validation text) in a fresh process; its final val loss."""
    overrides = [f"--config.seed={seed}", "--config.data.eval_windows=0", "--config.train.progress_bar=False"]
    overrides += [f"--config.train.num_steps={iters}", f"--config.data.data_dir={data_dir}"]
    if iters <= 100:  # a smoke run shorter than the experiment's 100 warm-up steps
        overrides.append(f"--config.optimizer.warmup_steps={iters // 2}")
    command = [sys.executable, "-m", "jaxmodels.cli", "train", "--config", EXPERIMENT, "--workdir", str(workdir)]
    start = time.perf_counter()
    finished = subprocess.run([*command, *overrides], cwd=ROOT, capture_output=True, text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"jaxmodels train failed: {finished.stderr.strip()[-2000:]}")
    seconds = time.perf_counter() - start
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    final = [row for row in rows if "val/loss" in row][-1]
    return {"seed": seed, "iters": final["step"], "val_loss": final["val/loss"], "wall_seconds": seconds}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs, their val losses, mean and sample standard deviation (ddof=1)."""
    losses = [run["val_loss"] for run in runs]
    spread = statistics.stdev(losses) if len(losses) > 1 else None
    return {"runs": runs, "val_loss": losses, "mean": statistics.mean(losses), "std_ddof1": spread}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--iters", type=int, default=2000, help="training iterations of both (the recipe: 2000)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "nanogpt_reference.json")
    parser.add_argument("--torch_python", default=sys.executable, help="a Python with torch (default: this one)")
    parser.add_argument("--data_dir", default="")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each its own process (losses do not change)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        ids = Path(scratch) / "ids.npz"
        data = text_ids(args.data_dir)
        np.savez(ids, **data)
        with ThreadPoolExecutor(args.jobs) as pool:
            threads = 1 if args.jobs > 1 else 0  # spinning OpenMP threads of concurrent runs would starve each other
            torch_runs = pool.map(lambda seed: torch_run(args.torch_python, ids, seed, args.iters, threads), args.seeds)
            jax_runs = pool.map(
                lambda seed: jaxmodels_run(Path(scratch) / f"jaxmodels_seed{seed}", seed, args.iters, args.data_dir),
                args.seeds,
            )
            torch_runs, jax_runs = list(torch_runs), list(jax_runs)
    report = {
        "score": "mean cross-entropy per character (nats) over the whole validation text, non-overlapping windows",
        "corpus": {
            "train_characters": len(data["train"]),
            "val_windows": len(data["val_windows"]),
            "window": data["val_windows"].shape[1] - 1,
            "vocab_size": data["vocab_size"],
        },
        "iters": args.iters,
        "nanogpt_torch": summary(torch_runs),
        "jaxmodels": summary(jax_runs),
        "machine": machine(),  # torch's version: each PyTorch run's "torch"
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for name in ("nanogpt_torch", "jaxmodels"):
        losses = ", ".join(f"{loss:.4f}" for loss in report[name]["val_loss"])
        spread = report[name]["std_ddof1"] or 0
        print(f"{name}: {losses}; {report[name]['mean']:.4f} ± {spread:.4f} (sample std, ddof=1)")


if __name__ == "__main__":
    main()
