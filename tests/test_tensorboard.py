"""The README's `tensorboard --logdir runs` reads what a run writes: TensorBoard's own reader gives back the
scalars of metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing import event_accumulator  # the `tools` extra, which make installs

import jaxmodels as jm

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "mnist1d_mlp.py"


def test_tensorboard_reads_the_scalars_of_metrics_jsonl(data_dir: str, tmp_path: Path):
    settings = [f"data.data_dir={data_dir}", "train.num_steps=20", "train.log_every=10", "train.eval_every=20"]
    run = jm.train(jm.load_config(EXPERIMENT, [*settings, "train.progress_bar=False"]), tmp_path / "run")
    reader = event_accumulator.EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    reader.Reload()
    for key in ("train/loss", "test/accuracy"):
        logged = {row["step"]: row[key] for row in run.history if key in row}
        shown = {event.step: event.value for event in reader.Scalars(key)}
        assert shown == pytest.approx(logged, rel=1e-6) and len(shown) == (2 if key == "train/loss" else 1)
