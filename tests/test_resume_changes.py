"""Resuming a run under a changed config (jaxmodels.loop, jaxmodels.checkpoint): nothing is ever lost.

A change that gives the train state another structure stops with one line naming the changed keys and touches
no file; `checkpoint.reset_optimizer` continues with the checkpoint's parameters and a fresh optimizer state;
other changes resume as before and are recorded in config_changes.jsonl. Damaged checkpoints are set aside only
when an older one can be read; when none can, the run refuses and moves nothing. A failed save names the last
complete checkpoint, which a re-run resumes from.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import jaxmodels as jm
from jaxmodels import cli
from jaxmodels.errors import CheckpointError
from tests import parallel_worker  # noqa: F401  (registers tiny_bn_cnn, a BatchNorm CNN for MNIST-1D)
from tests.conftest import assert_one_error_line

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "mnist1d_mlp.py"
pytestmark = pytest.mark.usefixtures("compilation_cache_dir")  # every case builds the same MLP


def overrides(data_dir: str, num_steps: int, *changes: str) -> list[str]:
    return [
        f"data.data_dir={data_dir}",
        f"train.num_steps={num_steps}",
        "train.eval_every=20",
        "train.log_every=10",
        "train.checkpoint_every=20",
        "train.progress_bar=False",
        *changes,
    ]


def train_command(workdir: Path, data_dir: str, num_steps: int, *changes: str) -> list[str]:
    settings = [f"--config.{item}" for item in overrides(data_dir, num_steps, *changes)]
    return ["train", "--config", str(EXPERIMENT), "--workdir", str(workdir), *settings]


def snapshot(workdir: Path) -> dict[str, str]:
    """sha256 of every file under `workdir`, by relative path."""
    return {
        str(path.relative_to(workdir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(workdir.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def trained(data_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-step MLP run with checkpoints at steps 20 and 40."""
    workdir = tmp_path_factory.mktemp("trained") / "run"
    jm.train(jm.load_config(EXPERIMENT, overrides(data_dir, 40)), workdir)
    return workdir


@pytest.fixture
def workdir(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


@pytest.mark.parametrize(
    "change, key",
    [
        ("optimizer.grad_clip_norm=1.0", "optimizer.grad_clip_norm: 0.0 -> 1.0"),
        ("optimizer.name=sgd", "optimizer.name: 'adam' -> 'sgd'"),
        ("data.loader=grain", "data.loader: 'auto' -> 'grain'"),
        ("model.hidden=64", "model.hidden"),
    ],
)
def test_a_structure_changing_resume_names_the_changed_key_and_touches_nothing(
    workdir: Path, data_dir: str, change: str, key: str, capsys: pytest.CaptureFixture
):
    before = snapshot(workdir)
    status = cli.main(train_command(workdir, data_dir, 60, change))
    line = assert_one_error_line(status, capsys.readouterr().err)
    assert "the checkpoint at step 40" in line and key in line and "Nothing was changed" in line
    assert snapshot(workdir) == before  # checkpoints, config.json, metrics.jsonl, TensorBoard
    assert not (workdir / "checkpoints.unusable").exists()


def test_the_error_offers_reset_optimizer_only_for_an_optimizer_change(
    workdir: Path, data_dir: str, capsys: pytest.CaptureFixture
):
    assert cli.main(train_command(workdir, data_dir, 60, "optimizer.grad_clip_norm=1.0")) == 2
    assert "--config.checkpoint.reset_optimizer=True" in capsys.readouterr().err
    assert cli.main(train_command(workdir, data_dir, 60, "model.hidden=64")) == 2
    message = capsys.readouterr().err
    assert "reset_optimizer" not in message and f"--config.checkpoint.init_from={workdir}" in message


def test_reset_optimizer_continues_with_the_checkpoints_parameters(workdir: Path, data_dir: str):
    saved = jm.load(workdir)  # step 40
    history = saved.history
    # A learning rate of 0 leaves the parameters where the checkpoint had them, bit for bit.
    changes = ("optimizer.grad_clip_norm=1.0", "optimizer.learning_rate=0.0", "checkpoint.reset_optimizer=True")
    run = jm.train(jm.load_config(EXPERIMENT, overrides(data_dir, 60, *changes)), workdir)
    assert run.step == 60
    for kept, now in zip(jax.tree.leaves(saved.state.params), jax.tree.leaves(run.state.params), strict=True):
        np.testing.assert_array_equal(kept, now)
    counts = [int(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(run.state.opt_state)
              if "count" in jax.tree_util.keystr(path)]  # fmt: skip
    assert counts == [20, 60]  # Adam's moments restarted at step 40; the schedule did not
    assert run.history[: len(history)] == history  # the run's history stays
    [row] = [json.loads(line) for line in (workdir / "config_changes.jsonl").read_text().splitlines()]
    assert row["step"] == 40 and "optimizer.grad_clip_norm: 0.0 -> 1.0" in row["changes"]
    assert row["optimizer_state"].startswith("re-initialised")
    # The next resume fits the new optimizer state: it restores it (no second reset).
    again = jm.train(jm.load_config(EXPERIMENT, overrides(data_dir, 80, *changes)), workdir)
    assert again.step == 80
    rows = [json.loads(line) for line in (workdir / "config_changes.jsonl").read_text().splitlines()]
    assert [row["optimizer_state"] for row in rows][1:] == ["restored"]
    assert rows[1]["changes"] == ["train.num_steps: 60 -> 80"]


def test_reset_optimizer_keeps_the_batchnorm_statistics_and_the_grain_data_position(data_dir: str, tmp_path: Path):
    """A BatchNorm model fed by Grain, reset at step 20 and trained 4 steps at learning rate 0: its statistics go
    on from the checkpoint's over the batches after step 20, exactly as a plain resume's do (the learning rate
    keeps the parameters fixed, so the optimizer state plays no part)."""
    bn_grain = ("model.name=tiny_bn_cnn", "data.loader=grain", "data.batch_size=50")
    jm.train(jm.load_config(EXPERIMENT, overrides(data_dir, 20, *bn_grain)), tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "20" / "data").is_dir()  # the Grain iterator's position
    saved = jm.load(tmp_path / "run")
    frozen = (*bn_grain, "optimizer.learning_rate=0.0")
    runs = {}
    for name, changes in {"plain": frozen, "reset": (*frozen, "optimizer.grad_clip_norm=1.0",
                                                     "checkpoint.reset_optimizer=True")}.items():  # fmt: skip
        shutil.copytree(tmp_path / "run", tmp_path / name)
        runs[name] = jm.train(jm.load_config(EXPERIMENT, overrides(data_dir, 24, *changes)), tmp_path / name)
    rows = [json.loads(line) for line in (tmp_path / "reset" / "config_changes.jsonl").read_text().splitlines()]
    assert rows[0]["optimizer_state"].startswith("re-initialised")
    for kept, now in zip(jax.tree.leaves(saved.state.params), jax.tree.leaves(runs["reset"].state.params), strict=True):
        np.testing.assert_array_equal(kept, now)
    statistics = [jax.tree.leaves(run.state.model_state) for run in (saved, runs["plain"], runs["reset"])]
    assert len(statistics[0]) == 2  # BatchNorm's running mean and variance
    for at_20, plain, reset in zip(*statistics, strict=True):
        assert not np.allclose(plain, at_20)  # four more batches moved them
        np.testing.assert_array_equal(reset, plain)


@pytest.mark.parametrize("change", ["optimizer.learning_rate=0.003", "train.on_nonfinite=skip"])
def test_a_change_that_keeps_the_structure_resumes_and_is_recorded(
    workdir: Path, data_dir: str, change: str, capsys: pytest.CaptureFixture
):
    assert cli.main(train_command(workdir, data_dir, 60, change)) == 0
    assert f"resumed from the checkpoint at step 40 in {workdir / 'checkpoints'}" in capsys.readouterr().err
    [row] = [json.loads(line) for line in (workdir / "config_changes.jsonl").read_text().splitlines()]
    assert row["step"] == 40 and row["optimizer_state"] == "restored"
    assert any(line.startswith(change.split("=")[0]) for line in row["changes"])
    assert [row["step"] for row in jm.load(workdir).history] == [10, 20, 30, 40, 50, 60]


def test_eval_with_a_structure_changing_override_says_why_it_cannot(workdir: Path, capsys: pytest.CaptureFixture):
    before = snapshot(workdir)
    status = cli.main(["eval", "--workdir", str(workdir), "--config.optimizer.name=sgd"])
    line = assert_one_error_line(status, capsys.readouterr().err)
    assert "optimizer.name: 'adam' -> 'sgd'" in line and "train first" not in line
    assert snapshot(workdir) == before


def damage(step_dir: Path) -> None:
    """Garbles every array file of a checkpoint's state, as a torn write or bad disk would."""
    for path in (step_dir / "state").rglob("*"):
        if path.is_file() and "d" in path.parent.name:  # the OCDBT data files
            path.write_bytes(b"\x00garbage" * 8)


def test_when_every_checkpoint_is_unreadable_the_run_refuses_and_moves_nothing(
    workdir: Path, data_dir: str, capsys: pytest.CaptureFixture
):
    for step_dir in (workdir / "checkpoints").iterdir():
        damage(step_dir)
    before = snapshot(workdir)
    status = cli.main(train_command(workdir, data_dir, 60))
    line = assert_one_error_line(status, capsys.readouterr().err)
    assert "no checkpoint in" in line and "20 is unreadable" in line and "40 is unreadable" in line
    assert snapshot(workdir) == before
    assert not (workdir / "checkpoints.unusable").exists()


def test_a_damaged_newest_checkpoint_is_set_aside_once_an_older_one_reads(
    workdir: Path, data_dir: str, capsys: pytest.CaptureFixture
):
    damage(workdir / "checkpoints" / "40")
    assert cli.main(train_command(workdir, data_dir, 60)) == 0
    err = capsys.readouterr().err
    assert "40 is unreadable" in err and "falling back to step 20" in err
    assert "resumed from the checkpoint at step 20" in err
    assert (workdir / "checkpoints.unusable" / "40").is_dir()


def test_a_failed_save_names_the_last_complete_checkpoint_and_a_rerun_resumes(
    workdir: Path, data_dir: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    save = ocp.CheckpointManager.save

    def disk_full_from_step_60(self, step, *args, **kwargs):
        if step >= 60:
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(self, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", disk_full_from_step_60)
    status = cli.main(train_command(workdir, data_dir, 80))
    line = assert_one_error_line(status, capsys.readouterr().err)
    assert "saving the checkpoint at step 60" in line and "No space left on device" in line
    assert "the last complete checkpoint is step 40" in line
    monkeypatch.setattr(ocp.CheckpointManager, "save", save)
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [20, 40]
    assert cli.main(train_command(workdir, data_dir, 80)) == 0
    assert "resumed from the checkpoint at step 40" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match=r"optimizer\.name"):
        jm.load(workdir, overrides=["optimizer.name=sgd"])
