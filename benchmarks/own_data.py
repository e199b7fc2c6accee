"""Your own data at any size: `jaxmodels prepare`'s time, the Grain feed's rate against the train step's, peak memory.

Generates in a temporary folder a text corpus (`--text_mb` MB of random words in files of 10 MB) and an image
folder (`--images` 32x32 images in 10 class folders: PNG and JPEG, greyscale and RGB), each also at a tenth of
that size, and for each of the four:
- prepare: `jaxmodels prepare` in its own process (the char tokenizer for the text): seconds, and the process's
  peak RSS (`os.wait4`);
- feed: in a fresh process, the data view and train feed built from the prepared directory as `jaxmodels train`
  builds them (`data.name=tfds_dir`; images streamed: `data.loader=grain`, `data.host_cache_max_mb=0`), read for
  `--seconds`: examples/s, and the process's peak RSS;
- step (full size only): the experiment's compiled train step alone on one batch (`feed_vs_step.measure`):
  the char GPT (experiments/shakespeare_char_gpt.py), ResNet-20 on 32x32x3 images
  (experiments/digits_cifar_resnet20.py).
Prints one Markdown table. Run it once; it takes about 10 minutes on 2 cores:

    python benchmarks/own_data.py [--text_mb 1000] [--images 100000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = {"text": ROOT / "experiments" / "shakespeare_char_gpt.py",
               "images": ROOT / "experiments" / "digits_cifar_resnet20.py"}  # fmt: skip
FILE_MB = 10


def write_corpus(folder: Path, megabytes: int, seed: int = 0) -> None:
    """`megabytes` of text in files of `FILE_MB` MB: lines drawn from 10,000 lines of 12 random words (of 2,000)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = np.array(["".join(rng.choice(letters, rng.integers(1, 9))) for _ in range(2000)])
    lines = np.array([" ".join(words[rng.integers(0, len(words), 12)]) for _ in range(10_000)])
    folder.mkdir(parents=True)
    per_file = FILE_MB * 2**20 // (np.mean([len(line) for line in lines]) + 1)
    for index in range(max(1, megabytes // FILE_MB)):
        text = "\n".join(lines[rng.integers(0, len(lines), int(per_file))])
        (folder / f"{index:04d}.txt").write_text(text + "\n")


def write_images(folder: Path, count: int, seed: int = 0) -> None:
    """`count` 32x32 images in 10 class folders; odd ones greyscale, every third a JPEG."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label in range(10):
        (folder / f"class{label}").mkdir(parents=True)
    for index in range(count):
        label = index % 10
        shape = (32, 32) if index % 2 else (32, 32, 3)
        pixels = np.clip(rng.normal(25 * label, 40, shape), 0, 255).astype(np.uint8)
        suffix = "jpg" if index % 3 == 0 else "png"
        Image.fromarray(pixels).save(folder / f"class{label}" / f"{index:06d}.{suffix}")


def run_child(argv: list[str]) -> tuple[str, float, float]:
    """(stdout, seconds, peak RSS in MB) of the command `argv`, reaped here so that its own peak RSS is known."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    out = process.stdout.read().decode()
    err = process.stderr.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{err[-3000:]}")
    return out, time.perf_counter() - start, usage.ru_maxrss / 1024


def data_overrides(kind: str, prepared: Path) -> list[str]:
    common = ["--config.data.name=tfds_dir", f"--config.data.dir={prepared}", "--config.data.eval_windows=8"]
    if kind == "images":
        return [*common, "--config.data.loader=grain", "--config.data.host_cache_max_mb=0"]
    return common


def measure_feed(kind: str, prepared: Path, seconds: float) -> dict:
    """(In a child process.) Examples/s of the train feed alone on the prepared data."""
    import jax
    from feed_vs_step import rate

    from jaxmodels import config as config_lib
    from jaxmodels.data import views
    from jaxmodels.experiment import make_feed
    from jaxmodels.tasks import task_spec

    config = config_lib.apply_overrides(config_lib.load_config_file(EXPERIMENTS[kind]), data_overrides(kind, prepared))
    view = views.build(config, None, view=task_spec(config.task.name).view)
    feed = make_feed(config, view, jax.random.key(0), None)
    return {"examples_per_second": rate(feed.args_for_step, seconds) * config.data.batch_size}


def measure_step(kind: str, prepared: Path, seconds: float) -> dict:
    """(In a child process.) Steps/s of the experiment's compiled train step alone."""
    from feed_vs_step import measure

    model, _, step_rate, batch = measure(str(EXPERIMENTS[kind]), seconds, data_overrides(kind, prepared))
    return {"model": model, "steps_per_second": step_rate, "batch": batch}


def child(mode: str, kind: str, prepared: Path, seconds: float) -> tuple[dict, float]:
    """The JSON a child process measured, and its peak RSS in MB."""
    argv = [sys.executable, __file__, "--child", mode, kind, str(prepared), "--seconds", str(seconds)]
    out, _, rss = run_child(argv)
    return json.loads(out.strip().splitlines()[-1]), rss


def prepare(kind: str, source: Path, out: Path) -> tuple[dict, float, float]:
    data = ["--config.data.name=text", f"--config.data.files={source}/*.txt"] if kind == "text" else [
        "--config.data.name=images", f"--config.data.dir={source}", "--config.data.image_size=(32, 32)"]  # fmt: skip
    argv = [sys.executable, "-m", "jaxmodels.cli", "prepare", "--out", str(out), *data]
    out_text, seconds, rss = run_child(argv)
    return json.loads(out_text.strip().splitlines()[-1]), seconds, rss


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text_mb", type=int, default=1000)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "KIND", "PREPARED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, kind, prepared = args.child
        measured = (measure_feed if mode == "feed" else measure_step)(kind, Path(prepared), args.seconds)
        print(json.dumps(measured))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="own_data_") as temp:
        temp = Path(temp)
        sizes = {"text": (args.text_mb // 10, args.text_mb), "images": (args.images // 10, args.images)}
        steps = {}
        for kind, (small, large) in sizes.items():
            for size in (small, large):
                source, prepared = temp / f"{kind}_{size}", temp / f"{kind}_{size}_prepared"
                start = time.perf_counter()
                (write_corpus if kind == "text" else write_images)(source, size)
                generated = time.perf_counter() - start
                summary, prepare_seconds, prepare_rss = prepare(kind, source, prepared)
                feed, feed_rss = child("feed", kind, prepared, args.seconds)
                if size == large:
                    steps[kind], _ = child("step", kind, prepared, args.seconds)
                rows.append({"kind": kind, "size": size, "source_mb": folder_mb(source), "generated_s": generated,
                             "prepared_mb": folder_mb(prepared), "records": summary["records"],
                             "prepare_s": prepare_seconds, "prepare_rss_mb": prepare_rss,
                             "feed_examples_per_s": feed["examples_per_second"], "feed_rss_mb": feed_rss})  # fmt: skip
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                subprocess.run(["rm", "-rf", str(source), str(prepared)], check=True)
    print(
        "| data | size | on disk -> prepared | prepare | prepare peak RSS | feed examples/s | feed peak RSS "
        "| train step (model, batch) | feed / step |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        step = steps[row["kind"]]
        step_examples = step["steps_per_second"] * step["batch"]
        unit = "MB of text" if row["kind"] == "text" else "images"
        print(
            f"| {row['kind']} | {row['size']:,} {unit} | {row['source_mb']:,.0f} MB -> {row['prepared_mb']:,.0f} MB "
            f"| {row['prepare_s']:.0f} s | {row['prepare_rss_mb']:,.0f} MB | {row['feed_examples_per_s']:,.0f} "
            f"| {row['feed_rss_mb']:,.0f} MB | {step['steps_per_second']:.1f} steps/s = {step_examples:,.0f} "
            f"examples/s ({step['model']}, {step['batch']}) | {row['feed_examples_per_s'] / step_examples:.0f}x |"
        )


if __name__ == "__main__":
    main()
