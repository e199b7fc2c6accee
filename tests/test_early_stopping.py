"""Early stopping (jaxmodels.early_stopping, config.early_stopping): when a run ends, and that it stays ended."""

from __future__ import annotations

from pathlib import Path

import pytest

import jaxmodels as jm
from jaxmodels import cli
from jaxmodels.config import base_config
from jaxmodels.early_stopping import EarlyStopping
from jaxmodels.errors import ConfigError

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "mnist1d_mlp.py"


def evals(stopper: EarlyStopping, values: list[float]) -> list[bool]:
    return [stopper.update(10 * (i + 1), {"test/loss": value}) for i, value in enumerate(values)]


def test_the_count_restarts_at_each_improvement_larger_than_min_delta():
    stopper = EarlyStopping("test/loss", "min", patience=2, min_delta=0.1)
    # 1.0 best; 0.95 is not better by more than 0.1; 0.8 is; then two evaluations without improvement.
    assert evals(stopper, [1.0, 0.95, 0.8, 0.75, 0.9]) == [False, False, False, False, True]
    assert (stopper.best, stopper.best_step) == (0.8, 30)
    assert "test/loss has not improved by more than 0.1 for 2 evaluations (best 0.8 at step 30" in stopper.reason()


def test_mode_max_and_non_finite_values():
    stopper = EarlyStopping("test/loss", "max", patience=1)
    assert evals(stopper, [float("nan"), 0.5, 0.6, 0.6]) == [True, False, False, True]
    assert stopper.best == 0.6  # NaN never becomes the best


def test_from_config_replays_the_history_of_a_resumed_run():
    config = base_config()
    config.early_stopping.metric, config.early_stopping.mode, config.early_stopping.patience = "test/loss", "min", 3
    history = [{"step": 10, "test/loss": 1.0}, {"step": 15, "train/loss": 0.1}, {"step": 20, "test/loss": 1.2}]
    stopper = EarlyStopping.from_config(config, history)
    assert (stopper.best, stopper.best_step, stopper.evals_without_improvement) == (1.0, 10, 1)
    config.early_stopping.metric = ""
    assert EarlyStopping.from_config(config, history) is None


def test_an_unknown_metric_is_refused_before_training(data_dir: str, tmp_path: Path):
    config = jm.load_config(EXPERIMENT, [f"data.data_dir={data_dir}", "early_stopping.metric=test/los"])
    with pytest.raises(ConfigError, match=r"early_stopping\.metric.*Did you mean 'test/loss'"):
        jm.train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_run_stops_early_saves_and_stays_stopped(data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture):
    command = [
        "train", "--config", str(EXPERIMENT), "--workdir", str(tmp_path / "run"),
        f"--config.data.data_dir={data_dir}", "--config.train.num_steps=200", "--config.train.eval_every=20",
        "--config.train.checkpoint_every=100", "--config.train.progress_bar=False",
        "--config.early_stopping.metric=test/accuracy", "--config.early_stopping.patience=2",
        "--config.early_stopping.min_delta=1.0",  # accuracy cannot improve by more than 1: stops at the 3rd eval
    ]  # fmt: skip
    assert cli.main(command) == 0
    err = capsys.readouterr().err
    assert "stopped early at step 60: test/accuracy has not improved by more than 1 for 2 evaluations" in err
    run = jm.load(tmp_path / "run")
    assert run.step == 60 and [row["step"] for row in run.history][-1] == 60
    assert cli.main(command) == 0  # the same command again: evaluates, does not train on
    assert "this run stopped early at step 60" in capsys.readouterr().err
    assert jm.load(tmp_path / "run").step == 60
