"""The Python API (`import jaxmodels as jm`): the same runs as the command line, from a notebook."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import jaxmodels as jm
from jaxmodels.cli import main
from jaxmodels.errors import CheckpointError, ConfigError
from tests.conftest import EXPERIMENTS


def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """A 60-step run of the default experiment, trained through `jm.train`, keeping its two best checkpoints."""
    config = jm.load_config(
        EXPERIMENTS / "mnist1d_cnn.py",
        [
            f"data.data_dir={data_dir}",
            "train.num_steps=60",
            "train.eval_every=20",
            "train.log_every=10",
            "--config.train.checkpoint_every=20",  # the CLI's spelling works too
            "train.progress_bar=False",
            "checkpoint.keep_best=1",
            "checkpoint.best_metric='test/loss'",
            "checkpoint.best_mode=min",
        ],
    )
    return jm.train(config, tmp_path_factory.mktemp("api") / "run")


def test_load_config_applies_and_validates_overrides():
    config = jm.load_config(EXPERIMENTS / "mnist1d_cnn.py", ["optimizer.learning_rate=3e-3", "--config.seed=4"])
    assert (config.optimizer.learning_rate, config.seed) == (3e-3, 4)
    with pytest.raises(ConfigError, match=r"Did you mean 'optimizer\.learning_rate'"):
        jm.load_config(EXPERIMENTS / "mnist1d_cnn.py", ["optimizer.learnin_rate=1"])


def test_train_returns_the_run_with_its_history_and_final_metrics(trained):
    assert trained.step == 60 and int(trained.state.step) == 60
    assert [row["step"] for row in trained.history] == [10, 20, 30, 40, 50, 60]
    assert set(trained.final) == {"test/accuracy", "test/loss"}
    assert trained.final == {key: trained.history[-1][key] for key in trained.final}
    assert trained.config.train.num_steps == 60 and type(trained.model).__name__ == "MNIST1DCNN"
    assert set(trained.variables) == {"params"}


@pytest.fixture(scope="module")
def mnist1d_test_split() -> tuple[np.ndarray, np.ndarray]:
    """The MNIST-1D test split as the mnist1d package generates it (signals, labels): the reference."""
    from mnist1d.data import get_dataset_args, make_dataset

    dataset = make_dataset(get_dataset_args())
    return dataset["x_test"].astype(np.float32), dataset["y_test"]


def test_the_eval_examples_are_the_whole_test_split_in_its_order(trained, mnist1d_test_split):
    signals, labels = mnist1d_test_split
    np.testing.assert_array_equal(trained.eval_examples["inputs"], signals)
    np.testing.assert_array_equal(trained.eval_examples["label"], labels)


@pytest.mark.parametrize("eval_batch_size", [1000, 300])  # 300: the last batch is padded, and the padding ignored
def test_evaluate_scores_every_test_example_once(trained, mnist1d_test_split, eval_batch_size):
    signals, labels = mnist1d_test_split
    logits = np.asarray(trained.apply(signals), np.float64)
    accuracy = float(np.mean(np.argmax(logits, -1) == labels))
    shifted = logits - logits.max(axis=-1, keepdims=True)
    losses = np.log(np.exp(shifted).sum(axis=-1)) - shifted[np.arange(len(labels)), labels]
    run = jm.load(trained.workdir, overrides=[f"data.eval_batch_size={eval_batch_size}"])
    metrics = jm.evaluate(run)
    assert metrics["test/accuracy"] == accuracy == trained.final["test/accuracy"]
    assert metrics["test/loss"] == pytest.approx(float(losses.mean()), rel=1e-5)


def test_load_restores_the_trained_state_and_evaluate_reproduces_the_final_metrics(trained):
    loaded = jm.load(trained.workdir)
    assert loaded.step == 60 and _leaves_equal(loaded.state, trained.state)
    assert loaded.final == trained.final
    assert jm.evaluate(loaded) == trained.final


def test_load_picks_a_step_or_the_best_checkpoint(trained):
    at_40 = jm.load(trained.workdir, step=40)
    assert at_40.step == 40 and int(at_40.state.step) == 40
    assert at_40.final == {key: trained.history[3][key] for key in ("test/accuracy", "test/loss")}
    losses = {row["step"]: row["test/loss"] for row in trained.history if "test/loss" in row}
    assert sorted(losses) == [20, 40, 60]  # every evaluated step is kept (the last 3 checkpoints)
    assert jm.load(trained.workdir, best=True).step == min(losses, key=losses.get)
    with pytest.raises(CheckpointError, match=r"no checkpoint at step 999 .*it has"):
        jm.load(trained.workdir, step=999)


def test_evaluate_equals_the_eval_command(trained, capsys):
    assert main(["eval", "--workdir", str(trained.workdir)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"workdir": str(trained.workdir), "step": 60, **jm.evaluate(jm.load(trained.workdir))}


def test_the_package_exposes_only_the_documented_api():
    assert sorted(jm.__all__) == [
        "Run",
        "compile",
        "evaluate",
        "fill_mask",
        "from_pretrained",
        "load",
        "load_config",
        "load_export",
        "provenance",
        "sample",
        "sweep",
        "train",
    ]
    with pytest.raises(AttributeError):
        jm.nonexistent  # noqa: B018
