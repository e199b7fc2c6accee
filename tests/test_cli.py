"""The `jaxmodels` command as a user runs it: train, eval, help, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXPERIMENTS, assert_one_error_line

CNN = str(EXPERIMENTS / "mnist1d_cnn.py")
FAST = ["--config.train.progress_bar=False", "--config.train.log_every=50"]


def jaxmodels(*args: str, data_dir: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **({"TFDS_DATA_DIR": data_dir} if data_dir else {}))
    return subprocess.run(
        [sys.executable, "-m", "jaxmodels.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert_one_error_line(result.returncode, result.stderr, *fragments)


@pytest.fixture(scope="module")
def trained_workdir(data_dir, tmp_path_factory) -> tuple[Path, dict]:
    """A short CNN run through the CLI: 300 steps, evaluated every 100."""
    workdir = tmp_path_factory.mktemp("cli") / "cnn"
    result = jaxmodels(
        "train", "--config", CNN, "--workdir", str(workdir), "--config.train.num_steps=300",
        "--config.train.eval_every=100", *FAST, data_dir=data_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return workdir, json.loads(result.stdout.strip().splitlines()[-1])


def test_training_through_the_cli_reaches_60_percent(trained_workdir):
    workdir, summary = trained_workdir
    assert summary["test/accuracy"] > 0.60
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["test/accuracy"] for r in records if "test/accuracy" in r][-1] == summary["test/accuracy"]


def test_eval_restores_the_latest_checkpoint_and_reproduces_the_accuracy(trained_workdir, data_dir):
    workdir, summary = trained_workdir
    result = jaxmodels("eval", "--workdir", str(workdir), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    evaluated = json.loads(result.stdout.strip().splitlines()[-1])
    assert evaluated["step"] == 300
    assert evaluated["test/accuracy"] == summary["test/accuracy"]


def test_rerunning_the_same_command_resumes(trained_workdir, data_dir):
    workdir, summary = trained_workdir
    result = jaxmodels(
        "train", "--config", CNN, "--workdir", str(workdir), "--config.train.num_steps=300",
        "--config.train.eval_every=100", *FAST, data_dir=data_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "resumed from the checkpoint at step 300" in result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == summary


def test_a_checkpoint_of_another_model_is_refused(trained_workdir, data_dir):
    workdir, _ = trained_workdir
    before = sorted(p.name for p in (workdir / "checkpoints").iterdir())
    result = jaxmodels(
        "train", "--config", str(EXPERIMENTS / "mnist1d_mlp.py"), "--workdir", str(workdir), *FAST, data_dir=data_dir
    )
    assert_one_line_error(
        result, "does not fit this config, in its model parameters", "Dense_0/kernel",
        "model.name: 'mnist1d_cnn' -> 'mnist1d_mlp'", f"--config.checkpoint.init_from={workdir}",
    )  # fmt: skip
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == before


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("--config.model.name=mnist1d_cnnn", ("unknown model 'mnist1d_cnnn'", "Did you mean 'mnist1d_cnn'")),
        ("--config.data.name=mnist1dd", ("unknown dataset 'mnist1dd'", "'mnist1d'")),
        ("--config.optimizer.learning_rat=0.1", ("unknown config key", "'optimizer.learning_rate'")),
        ("--config.train.num_steps=many", ("'train.num_steps' expects a value of type int",)),
        ("--config.model.chanels=4", ("has no argument 'chanels'", "'channels'")),
    ],
)
def test_bad_input_is_one_clear_line(override, fragments, tmp_path, data_dir):
    result = jaxmodels("train", "--config", CNN, "--workdir", str(tmp_path / "w"), override, data_dir=data_dir)
    assert_one_line_error(result, *fragments)


def test_eval_of_an_empty_workdir_says_what_to_do(tmp_path):
    assert_one_line_error(jaxmodels("eval", "--workdir", str(tmp_path)), "holds no config.json")


def test_help_lists_the_commands():
    result = jaxmodels("--help")
    assert result.returncode == 0
    assert "train" in result.stdout and "eval" in result.stdout
    train_help = jaxmodels("train", "--help").stdout
    assert "--config" in train_help and "--workdir" in train_help


def test_unknown_flags_are_usage_errors(tmp_path):
    result = jaxmodels("train", "--config", CNN, "--workdir", str(tmp_path), "--bogus")
    assert result.returncode == 2 and "unrecognized arguments: --bogus" in result.stderr


def test_an_unwritable_workdir_is_one_clear_line(tmp_path, data_dir):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = jaxmodels("train", "--config", CNN, "--workdir", str(blocker / "w"), *FAST, data_dir=data_dir)
    assert_one_line_error(result, "cannot write to workdir", "choose a writable --workdir")


def test_bad_config_on_a_trained_workdir_leaves_it_untouched(trained_workdir, data_dir):
    workdir, _ = trained_workdir
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file() and "tensorboard" not in p.parts}
    for override in ("--config.train.num_steps=many", "--config.checkpoint.best_mod=max"):
        result = jaxmodels("train", "--config", CNN, "--workdir", str(workdir), override, *FAST, data_dir=data_dir)
        assert_one_line_error(result, "config key")
    after = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file() and "tensorboard" not in p.parts}
    assert after == before


def test_export_of_a_trained_workdir(trained_workdir, tmp_path):
    workdir, _ = trained_workdir
    result = jaxmodels("export", "--workdir", str(workdir), "--out", str(tmp_path / "params"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["step"] == 300
    assert_one_line_error(
        jaxmodels("export", "--workdir", str(workdir), "--out", str(tmp_path / "params")), "not empty"
    )
