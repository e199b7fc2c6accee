"""Checkpoints as a library: async saves, best-K, damaged checkpoints, non-finite steps, export and import."""

from __future__ import annotations

import functools
import json
import shutil
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import traverse_util

from jaxmodels.checkpoint import Checkpointer, abstract_like
from jaxmodels.errors import CheckpointError, JaxmodelsError
from jaxmodels.models import get_model
from jaxmodels.optim import make_optimizer
from jaxmodels.params_io import export_params, init_from_pretrained, load_params
from jaxmodels.partial_loading import LoadReport, load_partial
from jaxmodels.preemption import Preempted, PreemptionGuard
from jaxmodels.run import load, train
from jaxmodels.steps import create_train_state, train_step
from jaxmodels.tasks import Classify
from tests.conftest import small_config_factory

# The `mlp` of models/cnn.py with dropout: resuming must also reproduce the dropout masks.
MLP_DROPOUT = ("--config.model.name=mlp", "--config.model.hidden_sizes=(32, 32)", "--config.model.dropout=0.3")


def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _log(workdir: Path) -> list[dict]:
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "train/steps_per_second"} for r in records]


def _steps(workdir: Path) -> list[int]:
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


@pytest.fixture(scope="module")
def unbroken(data_dir, tmp_path_factory):
    """The small CNN run (60 steps, checkpoints at 20/40/60) without interruption: the reference."""
    workdir = tmp_path_factory.mktemp("unbroken")
    trained = train(small_config_factory(data_dir)(), workdir)
    state, metrics = trained.state, trained.final
    return state, metrics, workdir


# ------------------------------------------------------------------------------------------------ saving


def test_saves_are_asynchronous(tmp_path):
    checkpointer = Checkpointer(tmp_path, save_every=1, keep=1)
    state = {"params": {"w": jnp.ones((4096, 4096))}}  # 64 MiB: writing takes a while
    started = time.perf_counter()
    checkpointer.save(1, state, None)
    returned = time.perf_counter() - started
    assert checkpointer.saving_in_progress()  # the write goes on in the background
    checkpointer.wait()
    finished = time.perf_counter() - started
    assert not checkpointer.saving_in_progress() and finished > returned
    assert (tmp_path / "checkpoints" / "1" / "commit_success.txt").is_file()
    checkpointer.close()


def test_a_checkpoint_holds_state_config_and_pending_metric_sums(unbroken):
    _, _, workdir = unbroken
    step_dir = workdir / "checkpoints" / "60"
    assert {"state", "metric_sums", "config", "commit_success.txt"} <= {p.name for p in step_dir.iterdir()}
    saved_config = json.loads((step_dir / "config" / "metadata").read_text())
    assert saved_config == json.loads((workdir / "config.json").read_text())


def test_keep_best_keeps_the_best_k_beside_the_last_k(small_config, tmp_path):
    config = small_config(
        "--config.train.eval_every=10",
        "--config.train.keep_checkpoints=1",
        "--config.checkpoint.keep_best=2",
        "--config.checkpoint.best_metric=test/loss",
        "--config.checkpoint.best_mode=min",
    )
    train(config, tmp_path)
    losses = {r["step"]: r["test/loss"] for r in _log(tmp_path) if "test/loss" in r}
    best_two = sorted(losses, key=losses.get)[:2]
    assert set(_steps(tmp_path)) == {60, *best_two}
    checkpointer = Checkpointer.from_config(tmp_path, config, read_only=True)
    assert checkpointer.best_step() == best_two[0]
    checkpointer.close()
    assert export_params(tmp_path, tmp_path / "best", best=True)["step"] == best_two[0]


def test_an_unknown_best_metric_is_named_with_the_choices(tmp_path):
    checkpointer = Checkpointer(tmp_path, save_every=1, keep=1, keep_best=1, best_metric="test/acc")
    with pytest.raises(CheckpointError, match=r"'test/acc' is not a metric of this run.*test/accuracy"):
        checkpointer.save(1, {"w": jnp.ones(2)}, None, metrics={"test/accuracy": 0.5, "test/loss": 1.0})
    checkpointer.close()


# ---------------------------------------------------------------------------------------------- resuming


def test_a_dropout_model_stopped_and_resumed_equals_an_unbroken_run(small_config, tmp_path, capfd):
    config = functools.partial(small_config, *MLP_DROPOUT, "--config.data.loader=grain")
    trained = train(config(), tmp_path / "a")
    unbroken_state, unbroken_metrics = trained.state, trained.final
    stopped = train(config("--config.train.num_steps=30"), tmp_path / "b")  # stops at N/2
    warnings = []
    saved = _restore_latest(tmp_path / "b", stopped.state, warnings)  # as the resume below restores it
    assert saved.step == 30 and _leaves_equal(saved.state, stopped.state) and warnings == []
    logged_until_stop = (tmp_path / "b" / "metrics.jsonl").read_text()
    capfd.readouterr()
    trained = train(config(), tmp_path / "b")
    resumed_state, resumed_metrics = trained.state, trained.final
    assert _leaves_equal(unbroken_state, resumed_state)  # params, optimizer state, step
    assert unbroken_metrics == resumed_metrics
    assert _log(tmp_path / "a") == _log(tmp_path / "b")  # N/2 = 30 is an eval step in both runs
    # Training is deterministic, so a re-run that ignored the checkpoint would pass the checks above too.
    assert f"resumed from the checkpoint at step 30 in {tmp_path / 'b' / 'checkpoints'}" in capfd.readouterr().err
    # Rows 10..30 are kept as written, wall-clock rates included: steps 1..30 were not run again.
    assert (tmp_path / "b" / "metrics.jsonl").read_text().startswith(logged_until_stop)


def test_a_stop_between_log_steps_keeps_the_pending_metric_sums(
    small_config, tmp_path, unbroken, monkeypatch, compilation_cache_dir
):
    """Stopped at step 25 (as by SIGTERM there), halfway between the log steps 20 and 30: the checkpoint holds
    the sums of steps 21-25, and the resumed run's row at step 30 averages steps 21-30, as the unbroken run's."""
    _, unbroken_metrics, unbroken_workdir = unbroken
    with monkeypatch.context() as patch:
        patch.setattr(PreemptionGuard, "stop_at", lambda self, step, **_: step == 25)
        with pytest.raises(Preempted, match="at step 25"):
            train(small_config(), tmp_path)
    pending = json.loads((tmp_path / "checkpoints" / "25" / "metric_sums" / "metadata").read_text())
    assert pending["count"] == 5 * 100  # five steps of batch 100 since the row at step 20
    assert train(small_config(), tmp_path).final == unbroken_metrics
    assert _log(tmp_path) == _log(unbroken_workdir)


def _restore_latest(workdir: Path, like, warnings: list[str]):
    checkpointer = Checkpointer(workdir, save_every=20, keep=3)
    try:
        return checkpointer.restore_latest(abstract_like(like), None, None, warn=warnings.append)
    finally:
        checkpointer.close()


def test_a_partial_checkpoint_is_never_used(tmp_path, unbroken):
    state, _, workdir = unbroken
    shutil.copytree(workdir, tmp_path, dirs_exist_ok=True)
    checkpoints = tmp_path / "checkpoints"
    # What a crash during Orbax's save leaves: a temporary dir, renamed to `<step>` only once complete.
    (checkpoints / "100.orbax-checkpoint-tmp-1234" / "state").mkdir(parents=True)
    # A step dir without Orbax's commit marker (e.g. copied half-way, or a filesystem without atomic rename).
    shutil.copytree(checkpoints / "60", checkpoints / "80")
    (checkpoints / "80" / "commit_success.txt").unlink()
    warnings = []
    restored = _restore_latest(tmp_path, state, warnings)
    assert restored.step == 60 and _leaves_equal(restored.state, state)
    assert warnings == [
        f"warning: checkpoint {checkpoints / '80'} is incomplete (no commit_success.txt: a save was interrupted); "
        f"moved to {tmp_path / 'checkpoints.unusable' / '80'}; falling back to step 60"
    ]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["20", "40", "60"]  # the temporary dir is cleaned up


def test_a_corrupted_checkpoint_is_named_and_the_previous_one_used(small_config, tmp_path, unbroken, capfd):
    state, _, workdir = unbroken
    shutil.copytree(workdir, tmp_path, dirs_exist_ok=True)
    latest = tmp_path / "checkpoints" / "60"
    data_files = sorted((latest / "state").rglob("d/*"), key=lambda p: -p.stat().st_size)
    data = data_files[0].read_bytes()
    data_files[0].write_bytes(data[: len(data) // 2])  # truncated, as by a full disk

    step = load(tmp_path).step  # eval only reads: it falls back and moves nothing
    assert step == 40 and latest.is_dir()
    assert f"checkpoint {latest} is unreadable" in capfd.readouterr().err
    warnings = []
    restored = _restore_latest(tmp_path, state, warnings)
    assert restored.step == 40 and int(restored.state.step) == 40
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: checkpoint {latest} is unreadable (")
    assert (tmp_path / "checkpoints.unusable" / "60").is_dir() and not latest.exists()


def test_a_refused_checkpoint_leaves_config_json_alone(small_config, tmp_path, unbroken):
    _, _, workdir = unbroken
    shutil.copytree(workdir, tmp_path / "w")
    before = (tmp_path / "w" / "config.json").read_text()
    with pytest.raises(CheckpointError, match="does not fit this config, in its model parameters"):
        train(small_config("--config.model.name=mnist1d_mlp"), tmp_path / "w")
    assert (tmp_path / "w" / "config.json").read_text() == before  # still names the config that wrote it


# ------------------------------------------------------------------------------------ non-finite steps


def test_skip_leaves_the_state_as_it_was_and_counts_the_step():
    model, task = get_model("mnist1d_cnn"), Classify()
    tx = make_optimizer(_adam(), 10)
    batch = {"inputs": jax.random.normal(jax.random.key(0), (8, 40)), "label": np.arange(8)}
    state = create_train_state(model, task, tx, batch, jax.random.key(1))
    step = jax.jit(functools.partial(train_step, model=model, task=task, tx=tx, skip_nonfinite=True))
    poisoned = {**batch, "inputs": batch["inputs"].at[0, 0].set(jnp.nan)}
    skipped, metrics = step(state, poisoned, jax.random.key(2))
    assert int(skipped.step) == 1 and float(metrics["skipped_steps"]) == 1 and float(metrics["count"]) == 0
    assert _leaves_equal(skipped.replace(step=state.step), state)
    applied, metrics = step(state, batch, jax.random.key(2))
    assert float(metrics["skipped_steps"]) == 0 and not _leaves_equal(applied.params, state.params)


def test_skip_mode_trains_through_divergence_and_saves_only_finite_states(small_config, tmp_path):
    config = small_config(
        "--config.optimizer.name=sgd", "--config.optimizer.learning_rate=1e30", "--config.train.on_nonfinite=skip"
    )
    state = train(config, tmp_path).state
    assert sum(r["train/skipped_steps"] for r in _log(tmp_path)) > 0
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state))
    assert _steps(tmp_path) == [20, 40, 60]


def test_stop_mode_names_the_step_and_the_last_good_checkpoint(small_config, tmp_path):
    # The learning rate jumps to 1e28 at step 30 (a step schedule): finite until then, checkpoint at 20.
    config = small_config(
        "--config.optimizer.name=sgd",
        "--config.optimizer.schedule=step",
        "--config.optimizer.step_boundaries=(0.5,)",
        "--config.optimizer.step_factor=1e30",
    )
    with pytest.raises(JaxmodelsError, match=r"diverged.*up to 40; the last good checkpoint is step 20 in"):
        train(config, tmp_path)
    assert _steps(tmp_path) == [20]


# ------------------------------------------------------------------------------------- export / import


def test_load_partial_reports_loaded_new_skipped_and_unused():
    target = {"encoder": {"w": np.zeros((2, 3)), "b": np.zeros(3)}, "head": {"w": np.zeros((3, 4))}}
    source = {"encoder": {"w": np.ones((2, 3)), "b": np.ones(3)}, "head": {"w": np.ones((3, 5))}, "mlm": np.ones(1)}
    loaded, report = load_partial(target, source)
    assert report == LoadReport(
        loaded=["encoder/b", "encoder/w"],
        new=["head/w"],
        unused=["head/w", "mlm"],
        mismatched=["head/w (3, 5) vs (3, 4)"],
    )
    assert loaded["encoder"]["w"].sum() == 6 and loaded["head"]["w"].sum() == 0
    assert "loaded 2" in report.summary() and "skipped, other shape 1" in report.summary()
    only_encoder, report = load_partial(target, source, subtree="encoder", strict=True)
    assert report.new == ["head/w"] and only_encoder["head"]["w"].sum() == 0
    with pytest.raises(CheckpointError, match=r"head/w: checkpoint shape \(3, 5\) != model shape \(3, 4\)"):
        load_partial(target, source, subtree="head", strict=True)
    with pytest.raises(CheckpointError, match="has no 'decoder' parameters"):
        load_partial(target, source, subtree="decoder")


def test_export_then_init_from_loads_the_parameters(small_config, tmp_path, unbroken, capfd):
    state, _, workdir = unbroken
    info = export_params(workdir, tmp_path / "export")
    assert info["step"] == 60 and info["model"]["name"] == "mnist1d_cnn" and info["num_params"] == 5210
    variables, _ = load_params(tmp_path / "export")
    assert _leaves_equal(variables["params"], state.params)
    with pytest.raises(CheckpointError, match="not empty"):
        export_params(workdir, tmp_path / "export")

    # Fine-tuning start: only the first convolution, from the export; the rest freshly initialised.
    model, task = get_model("mnist1d_cnn"), Classify()
    batch = {"inputs": np.zeros((2, 40), np.float32), "label": np.zeros(2, np.int32)}
    fresh = create_train_state(model, task, make_optimizer(_adam(), 10), batch, jax.random.key(7))
    started = init_from_pretrained(fresh, tmp_path / "export", subtree="Conv_0", log=print)
    flat, saved = traverse_util.flatten_dict(started.params, sep="/"), traverse_util.flatten_dict(state.params, sep="/")
    for path, leaf in flat.items():
        assert np.array_equal(leaf, saved[path]) == path.startswith("Conv_0/"), path
    assert "loaded 2 (Conv_0/bias, Conv_0/kernel); newly initialised 6" in capfd.readouterr().out

    config = small_config(f"--config.checkpoint.init_from={tmp_path / 'export'}", "--config.train.num_steps=10")
    train(config, tmp_path / "finetune")  # the loop does the same and logs the report
    assert f"initialised from export {tmp_path / 'export'} (step 60" in capfd.readouterr().err


def test_fine_tuning_with_a_frozen_part_keeps_it_exactly_as_loaded(small_config, tmp_path, unbroken):
    """init_from + `optimizer.lr_multipliers='Conv_0:0'`: 10 steps later Conv_0 is the export's, bit for bit,
    weight decay on; the rest of the network has trained."""
    _, _, workdir = unbroken
    export_params(workdir, tmp_path / "export")
    loaded, _ = load_params(tmp_path / "export")
    config = small_config(
        f"--config.checkpoint.init_from={tmp_path / 'export'}",
        "--config.optimizer.lr_multipliers=Conv_0:0",
        "--config.optimizer.weight_decay=0.01",
        "--config.train.num_steps=10",
    )
    tuned = traverse_util.flatten_dict(train(config, tmp_path / "frozen").state.params, sep="/")
    source = traverse_util.flatten_dict(loaded["params"], sep="/")
    for path, leaf in tuned.items():
        assert np.array_equal(np.asarray(leaf), source[path]) == path.startswith("Conv_0/"), path


def _adam():
    from jaxmodels import config as config_lib

    return config_lib.base_config().optimizer


def test_metric_sums_of_the_earlier_array_layout_are_still_restored(tmp_path):
    w = np.arange(3, dtype=np.float32)
    state = {"params": {"w": w}, "opt_state": {"mu": w * 0}, "model_state": {"mean": w + 1}}
    sums = {"loss": np.float32(12.5), "count": np.float32(7.0)}
    items = {"state": ocp.StandardCheckpointHandler(), "loop": ocp.StandardCheckpointHandler()}
    with ocp.CheckpointManager(tmp_path / "checkpoints", item_handlers=items) as manager:  # as releases before wrote
        loop = ocp.args.StandardSave({"metric_sums": {key: np.asarray(value) for key, value in sums.items()}})
        manager.save(5, args=ocp.args.Composite(state=ocp.args.StandardSave(state), loop=loop))
    checkpointer = Checkpointer(tmp_path, save_every=5, keep=2)
    zeros = {key: np.zeros((), np.float32) for key in sums}
    restored_state, restored_sums = checkpointer.restore(5, abstract_like(state), None, zeros)
    checkpointer.close()
    np.testing.assert_array_equal(restored_state["params"]["w"], w)
    assert {key: float(value) for key, value in restored_sums.items()} == {"loss": 12.5, "count": 7.0}
