"""What the Checkpointer refuses to keep or rank (a diverged state, non-finite eval metrics), and `jaxmodels export`
of a chosen checkpoint (--step N, --best)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxmodels import config as config_lib
from jaxmodels.checkpoint import Checkpointer
from jaxmodels.cli import main
from jaxmodels.errors import JaxmodelsError
from jaxmodels.params_io import load_params
from tests.conftest import committed_steps

GOOD = {"params": {"w": jnp.arange(3.0)}}
DIVERGED = {"params": {"w": jnp.array([0.0, jnp.nan, 2.0])}}


def _step_dirs(workdir: Path) -> list[str]:
    return sorted(p.name for p in (workdir / "checkpoints").iterdir())


def test_a_state_holding_nan_is_refused_at_wait_and_not_written(tmp_path):
    checkpointer = Checkpointer(tmp_path, save_every=1, keep=3)
    assert checkpointer.save(1, GOOD, None)
    assert checkpointer.save(2, DIVERGED, None)  # only dispatched: the check runs on the writer thread
    with pytest.raises(JaxmodelsError, match=r"training diverged: the train state at step 2 holds NaN.*step 1 in"):
        checkpointer.wait()
    checkpointer.close()
    assert _step_dirs(tmp_path) == ["1"] and committed_steps(tmp_path) == [1]


def test_a_refused_save_is_raised_by_the_next_save(tmp_path):
    checkpointer = Checkpointer(tmp_path, save_every=1, keep=3)
    checkpointer.save(1, {"params": {"w": jnp.full(3, jnp.inf)}}, None)
    deadline = time.monotonic() + 60
    while checkpointer.saving_in_progress():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(JaxmodelsError, match=r"training diverged: the train state at step 1 .*no checkpoint exists"):
        checkpointer.save(2, GOOD, None)
    checkpointer.close()
    assert not (tmp_path / "checkpoints" / "1").exists() and not (tmp_path / "checkpoints" / "2").exists()


def test_a_refused_save_is_raised_by_close(tmp_path):
    checkpointer = Checkpointer(tmp_path, save_every=1, keep=3)
    checkpointer.save(5, GOOD, None)
    checkpointer.save(6, DIVERGED, None)
    with pytest.raises(JaxmodelsError, match=r"training diverged: the train state at step 6"):
        checkpointer.close()
    assert _step_dirs(tmp_path) == ["5"] and committed_steps(tmp_path) == [5]


def test_non_finite_eval_metrics_never_make_a_checkpoint_the_best(tmp_path):
    # In mode min, -inf would beat every loss if it were ranked; NaN in another metric disqualifies too.
    kwargs = {"save_every": 1, "keep": 1, "keep_best": 1, "best_metric": "test/loss", "best_mode": "min"}
    checkpointer = Checkpointer(tmp_path, **kwargs)
    checkpointer.save(1, GOOD, None, metrics={"test/loss": 2.0, "test/accuracy": 0.5})
    checkpointer.save(2, GOOD, None, metrics={"test/loss": -np.inf, "test/accuracy": 0.6})
    checkpointer.save(3, GOOD, None, metrics={"test/loss": 0.1, "test/accuracy": np.nan})
    checkpointer.save(4, GOOD, None, metrics={"test/loss": 3.0, "test/accuracy": 0.4})
    checkpointer.wait()
    assert checkpointer.best_step() == 1
    checkpointer.close()
    assert committed_steps(tmp_path) == [1, 4]  # the best and the latest; the unranked ones are not kept
    reader = Checkpointer(tmp_path, read_only=True, **kwargs)
    assert reader.best_step() == 1
    reader.close()


PARAMS = {"Dense_0": {"kernel": np.arange(6.0).reshape(2, 3), "bias": np.zeros(3)}}
LOSSES = {10: 1.5, 20: 2.5, 30: 0.5}  # with best_mode max the best is step 20: neither the first nor the latest


def _state_at(step: int) -> dict:
    """A train state as the loop saves it, different at every step (params and BatchNorm-like model state)."""
    params = jax.tree.map(lambda leaf: leaf + step, PARAMS)
    return {
        "step": np.int32(step),
        "params": params,
        "opt_state": {"mu": jax.tree.map(np.zeros_like, params)},
        "model_state": {"batch_stats": {"mean": np.full(3, step / 10)}},
    }


@pytest.fixture(scope="module")
def ranked_run(tmp_path_factory) -> Path:
    """A workdir with checkpoints at 10, 20 and 30, written as the train loop writes them (config.json, the
    checkpointer of its config, eval metrics ranking each), keeping the best by the highest test loss."""
    workdir = tmp_path_factory.mktemp("ranked")
    config = config_lib.lock(config_lib.base_config())
    overrides = ["train.checkpoint_every=10", "checkpoint.keep_best=1", "checkpoint.best_metric='test/loss'"]
    config = config_lib.apply_overrides(config, [*overrides, "checkpoint.best_mode=max"])
    (workdir / "config.json").write_text(config_lib.to_json(config))
    checkpointer = Checkpointer.from_config(workdir, config)
    for step, loss in LOSSES.items():
        checkpointer.save(step, _state_at(step), None, metrics={"test/loss": loss, "test/accuracy": 0.5})
    checkpointer.close()
    return workdir


def _export(workdir: Path, out: Path, *which: str, capsys) -> dict:
    assert main(["export", "--workdir", str(workdir), "--out", str(out), *which]) == 0
    return json.loads(capsys.readouterr().out)


def _saved_variables(workdir: Path, step: int) -> dict:
    """params and model_state of checkpoint `step`, read with Orbax directly."""
    with ocp.StandardCheckpointer() as reader:
        saved = reader.restore(workdir / "checkpoints" / str(step) / "state")
    return {"params": saved["params"], "model_state": saved["model_state"]}


def _trees_equal(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    same_structure = jax.tree.structure(a) == jax.tree.structure(b)
    return same_structure and len(leaves_a) > 0 and all(map(np.array_equal, leaves_a, leaves_b))


def test_export_step_writes_exactly_that_checkpoints_params(ranked_run, tmp_path, capsys):
    assert committed_steps(ranked_run) == [10, 20, 30]
    info = _export(ranked_run, tmp_path / "at10", "--step", "10", capsys=capsys)
    assert info["step"] == 10 and info["num_params"] == 9
    exported, _ = load_params(tmp_path / "at10")
    assert _trees_equal(exported, _saved_variables(ranked_run, 10))
    assert _trees_equal(exported["params"], jax.tree.map(lambda leaf: leaf + 10, PARAMS))
    assert not _trees_equal(exported, _saved_variables(ranked_run, 30))


def test_export_best_writes_the_params_of_the_best_checkpoint(ranked_run, tmp_path, capsys):
    info = _export(ranked_run, tmp_path / "best", "--best", capsys=capsys)
    assert info["step"] == 20
    exported, _ = load_params(tmp_path / "best")
    assert _trees_equal(exported, _saved_variables(ranked_run, 20))
    np.testing.assert_array_equal(exported["model_state"]["batch_stats"]["mean"], np.full(3, 2.0))
