"""Host memory of an evaluation pass: the eval split held whole (today's path under `data.resident_max_mb`) against
the same split streamed a batch at a time (`pipeline.StreamedExamples`, the path above it).

Serves `--records` random 64x64x3 uint8 images, each made from its index when read (the source holds nothing),
preprocessed to float32 in [0, 1], and reads them in padded eval batches of `--batch`: resident, every batch is
kept (as `build_experiment` keeps them on the device); streamed, each batch is dropped once read. Each mode runs
in a fresh process; prints one JSON line per mode: peak RSS above the imports (MB) and seconds.

    python benchmarks/eval_memory.py [--records 10000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

SHAPE = (64, 64, 3)


class RandomImages:
    """`records` image records, each drawn from its index on demand."""

    def __init__(self, records: int):
        self.records = records

    def __len__(self) -> int:
        return self.records

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        image = np.random.default_rng(index).integers(0, 256, SHAPE, np.uint8)
        return {"image": image, "label": np.int64(index % 10)}


def preprocess(record: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"inputs": record["image"].astype(np.float32) / 255, "label": record["label"].astype(np.int32)}


def measure(mode: str, records: int, batch: int) -> dict[str, float]:
    """One evaluation pass's reading in this process: peak RSS above what the imports took, and seconds."""
    from jaxmodels.data import pipeline

    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    source, indices = RandomImages(records), np.arange(records)
    if mode == "resident":
        kept = list(pipeline.padded_eval_batches(pipeline.load_arrays(source, preprocess, indices), batch))
        del kept
    else:
        for _ in pipeline.padded_eval_batches(pipeline.StreamedExamples(source, preprocess, indices), batch):
            pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds, split_mb = time.perf_counter() - start, records * int(np.prod(SHAPE)) * 4 / 2**20
    return {"mode": mode, "records": records, "split_mb": round(split_mb, 1),
            "peak_rss_mb": round((peak - before) / 1024, 1), "seconds": round(seconds, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--mode", choices=["resident", "streamed"], help=argparse.SUPPRESS)  # one mode, in-process
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args.mode, args.records, args.batch)))
        return
    for mode in ("resident", "streamed"):
        command = [sys.executable, __file__, "--mode", mode, "--records", str(args.records), "--batch", str(args.batch)]
        print(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
