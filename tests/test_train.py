"""The pure train step and the loop around it: determinism, exact resume, errors that protect checkpoints."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxmodels.checkpoint import Checkpointer, abstract_like
from jaxmodels.errors import CheckpointError, JaxmodelsError
from jaxmodels.experiment import build_experiment
from jaxmodels.models import get_model
from jaxmodels.optim import make_optimizer
from jaxmodels.run import evaluate, load, train
from jaxmodels.steps import create_train_state, train_step
from jaxmodels.tasks import Classify


def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _log(workdir: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock rate, which legitimately differs between runs."""
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "train/steps_per_second"} for r in records]


def _latest_checkpoint(workdir: Path, like):
    """The newest checkpoint in `workdir` (`.step`, `.state`), read by the restore a resume uses."""
    checkpointer = Checkpointer(workdir, save_every=1, keep=1, read_only=True)
    try:
        return checkpointer.restore_latest(abstract_like(like), None, None, warn=pytest.fail)
    finally:
        checkpointer.close()


def _tree_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        digest.update(str(path.relative_to(directory)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_train_step_is_pure_and_lowers_the_loss(small_config):
    config = small_config()
    model, task = get_model("mnist1d_cnn"), Classify()
    tx = make_optimizer(config.optimizer, 100)
    batch = {"inputs": jax.random.normal(jax.random.key(0), (16, 40)), "label": np.arange(16) % 10}
    state = create_train_state(model, task, tx, batch, jax.random.key(1))
    step = jax.jit(functools.partial(train_step, model=model, task=task, tx=tx))
    rng = jax.random.key(2)
    first_state, first_metrics = step(state, batch, rng)
    again_state, again_metrics = step(state, batch, rng)
    assert _leaves_equal(first_state, again_state) and _leaves_equal(first_metrics, again_metrics)
    assert int(first_state.step) == 1 and int(state.step) == 0  # the input state is untouched
    losses = []
    for _ in range(20):
        state, metrics = step(state, batch, rng)
        losses.append(float(metrics["loss"] / metrics["count"]))
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("loader", ["resident", "grain"])
def test_same_seed_gives_bitwise_identical_parameters(small_config, tmp_path, loader):
    config = small_config(f"--config.data.loader={loader}", "--config.train.num_steps=30")
    trained = train(config, tmp_path / "a")
    state_a, metrics_a = trained.state, trained.final
    trained = train(config, tmp_path / "b")
    state_b, metrics_b = trained.state, trained.final
    assert _leaves_equal(state_a, state_b)
    assert metrics_a == metrics_b
    other = train(
        small_config(f"--config.data.loader={loader}", "--config.train.num_steps=30", "--config.seed=1"), tmp_path / "c"
    ).state
    assert not _leaves_equal(state_a.params, other.params)


@pytest.mark.parametrize("loader", ["resident", "grain"])
def test_the_step_compiled_ahead_is_the_one_its_first_call_runs(small_config, loader):
    """The loop compiles its step on a background thread while the state is created; the first call then
    compiles nothing, and the Grain feed's first batch is still the first the loop gets."""
    experiment = build_experiment(small_config(f"--config.data.loader={loader}"))
    compiles = []

    def count(event: str, duration: float, **kwargs) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    jax.monitoring.register_event_duration_secs_listener(count)
    try:
        compiling = experiment.compile_step_ahead()
        state = experiment.initial_state
        compiling.result()
        sums = experiment.strategy.put_replicated(experiment.zero_metrics)
        feed_args = jax.block_until_ready(experiment.feed.args_for_step(0))  # may compile the epoch's order
        ahead = len(compiles)
        jax.block_until_ready(experiment.loop_step(state, sums, *feed_args))
    finally:
        jax.monitoring.unregister_event_duration_listener(count)
    assert ahead >= 2  # at least the initialiser and the step
    assert len(compiles) == ahead
    if loader == "grain":
        first = experiment.feed.example_batch
        assert all(np.array_equal(np.asarray(feed_args[0][key]), first[key]) for key in first)


@pytest.mark.parametrize("loader", ["resident", "grain"])
def test_stopped_and_resumed_run_equals_an_unbroken_run(small_config, tmp_path, loader, capfd):
    trained = train(small_config(f"--config.data.loader={loader}"), tmp_path / "a")
    unbroken_state, unbroken_metrics = trained.state, trained.final
    # Stop at step 50 (past the epoch boundary at 40 = 4000 / 100 examples), then re-run the full command.
    stopped = train(small_config(f"--config.data.loader={loader}", "--config.train.num_steps=50"), tmp_path / "b")
    saved = _latest_checkpoint(tmp_path / "b", stopped.state)
    assert saved.step == 50 and _leaves_equal(saved.state, stopped.state)
    logged_until_stop = (tmp_path / "b" / "metrics.jsonl").read_text()
    capfd.readouterr()
    trained = train(small_config(f"--config.data.loader={loader}"), tmp_path / "b")
    resumed_state, resumed_metrics = trained.state, trained.final
    assert _leaves_equal(unbroken_state, resumed_state)
    assert unbroken_metrics == resumed_metrics

    def without_stop_eval(records):  # the stopped run also evaluated at its last step, 50
        return [
            {k: v for k, v in r.items() if r["step"] != 50 or k.startswith("train/") or k == "step"} for r in records
        ]

    assert without_stop_eval(_log(tmp_path / "a")) == without_stop_eval(_log(tmp_path / "b"))
    # Training is deterministic, so a re-run that ignored the checkpoint would pass the checks above too.
    assert f"resumed from the checkpoint at step 50 in {tmp_path / 'b' / 'checkpoints'}" in capfd.readouterr().err
    # Rows 10..50 are kept as written, wall-clock rates included: steps 1..50 were not run again.
    assert (tmp_path / "b" / "metrics.jsonl").read_text().startswith(logged_until_stop)


def test_rerunning_a_finished_run_only_evaluates(small_config, tmp_path, capfd):
    trained = train(small_config("--config.train.num_steps=20"), tmp_path)
    state, metrics = trained.state, trained.final
    logged, checkpoints = (tmp_path / "metrics.jsonl").read_text(), _tree_digest(tmp_path / "checkpoints")
    capfd.readouterr()
    trained = train(small_config("--config.train.num_steps=20"), tmp_path)
    again, again_metrics = trained.state, trained.final
    assert _leaves_equal(state, again) and metrics == again_metrics
    # Training is deterministic, so a re-run that trained again would end equal too: check that it did not.
    assert f"resumed from the checkpoint at step 20 in {tmp_path / 'checkpoints'}" in capfd.readouterr().err
    assert (tmp_path / "metrics.jsonl").read_text() == logged  # no row re-written (rows hold wall-clock rates)
    assert _tree_digest(tmp_path / "checkpoints") == checkpoints  # nothing saved again


def test_workdir_outputs(small_config, tmp_path):
    train(small_config(), tmp_path)
    records = _log(tmp_path)
    assert [r["step"] for r in records] == [10, 20, 30, 40, 50, 60]
    assert {"train/loss", "train/accuracy", "train/learning_rate"} <= set(records[0])
    assert "test/accuracy" in records[2] and "test/accuracy" not in records[1]
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [20, 40, 60]
    assert json.loads((tmp_path / "config.json").read_text())["model"]["name"] == "mnist1d_cnn"
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_keep_checkpoints_keeps_the_last_k(small_config, tmp_path):
    train(small_config("--config.train.checkpoint_every=10", "--config.train.keep_checkpoints=2"), tmp_path)
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [50, 60]


def test_eval_of_a_workdir_reproduces_the_final_metrics(small_config, tmp_path):
    metrics = train(small_config(), tmp_path).final
    loaded = load(tmp_path)
    step, evaluated = loaded.step, evaluate(loaded)
    assert step == 60 and evaluated == metrics


def test_a_checkpoint_of_another_model_is_refused_and_left_untouched(small_config, tmp_path):
    train(small_config("--config.train.num_steps=20"), tmp_path)
    before = _tree_digest(tmp_path / "checkpoints")
    with pytest.raises(
        CheckpointError, match=r"in its model parameters .*Dense_0/kernel \(125, 10\) in the checkpoint vs"
    ):
        train(small_config("--config.model.name=mnist1d_mlp"), tmp_path)
    with pytest.raises(CheckpointError, match=r"Conv_0/kernel \(5, 1, 25\) in the checkpoint vs \(5, 1, 8\) now"):
        train(small_config("--config.model.channels=8"), tmp_path)
    assert _tree_digest(tmp_path / "checkpoints") == before


def test_divergence_is_a_clear_error_and_saves_nothing_bad(small_config, tmp_path):
    config = small_config("--config.optimizer.name=sgd", "--config.optimizer.learning_rate=1e30")
    with pytest.raises(JaxmodelsError, match=r"training diverged.*up to 10; no checkpoint was saved.*learning_rate"):
        train(config, tmp_path)
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]


def test_model_and_dataset_class_counts_must_agree(small_config):
    with pytest.raises(
        JaxmodelsError, match=r"model.num_classes=7 does not match the data: 'mnist1d' .*num_classes=10"
    ):
        build_experiment(small_config("--config.model.num_classes=7"))
