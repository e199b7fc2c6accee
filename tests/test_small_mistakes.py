"""Small mistakes, each named where it is made: non-finite numbers, a directory as --config, a misspelt section in
get_config, a bad model size, a resume past train.num_steps, and the Python API given the wrong kind of argument
or inputs of the wrong shape. Each CLI case is one `jaxmodels: error:` line (exit 2) that leaves the workdir as it
was; each API case is a TypeError or ValueError that says what to pass."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import jaxmodels as jm
from jaxmodels.files import first_line
from tests import test_bad_inputs
from tests.conftest import EXPERIMENTS, assert_one_error_line, run_cli
from tests.test_bad_inputs import MLP, MLP_RUN, assert_refused, mlp_experiment, snapshot

CNN = str(EXPERIMENTS / "mnist1d_cnn.py")
pytestmark = pytest.mark.usefixtures("compilation_cache_dir")
mlp_workdir = test_bad_inputs.mlp_workdir  # the MLP trained 20 steps, checkpoints at 10 and 20 (once per module)


@pytest.fixture
def workdir(mlp_workdir: Path, tmp_path: Path) -> Path:
    """A copy of the trained MLP's workdir, which a case may resume."""
    copy = tmp_path / "workdir"
    shutil.copytree(mlp_workdir, copy)
    return copy


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optimizer.learning_rate=nan", "optimizer.learning_rate"),
        ("optimizer.learning_rate=inf", "optimizer.learning_rate"),
        ("optimizer.weight_decay=-Infinity", "optimizer.weight_decay"),
        ("optimizer.step_boundaries=(0.5, 1e999)", "optimizer.step_boundaries"),  # a float too large is inf
    ],
)
def test_a_non_finite_number_is_refused_as_not_finite(override: str, key: str, workdir: Path) -> None:
    before = snapshot(workdir)
    result = run_cli("train", "--config", MLP, "--workdir", str(workdir), *MLP_RUN, f"--config.{override}")
    line = assert_one_error_line(result.status, result.stderr, f"config key {key!r} must be a finite number")
    assert "expects a value of type" not in line
    assert snapshot(workdir) == before


def test_a_directory_as_config_is_refused_naming_the_file_to_pass(tmp_path: Path) -> None:
    result = run_cli("train", "--config", str(EXPERIMENTS), "--workdir", str(tmp_path / "w"))
    assert_refused(result, f"config file {str(EXPERIMENTS)!r} is a directory; pass the experiment .py file")
    assert not (tmp_path / "w").exists()


def test_a_misspelt_section_in_get_config_is_one_readable_line(tmp_path: Path) -> None:
    config = mlp_experiment(tmp_path, "config.optimiser.learning_rate = 1e-3")
    result = run_cli("train", "--config", config, "--workdir", str(tmp_path / "w"))
    assert_refused(result, "experiment.py', line 7", "'optimiser'", 'Did you mean "optimizer"')
    assert "\\n" not in result.stderr  # the line break of ml_collections' message is not shown escaped
    assert not (tmp_path / "w").exists()


def test_first_line_shows_an_exceptions_text_with_its_hint() -> None:
    wrapped = AttributeError(KeyError("'optimiser'\nDid you mean \"optimizer\"?"))
    assert first_line(wrapped) == "'optimiser'. Did you mean \"optimizer\"?"
    assert first_line(KeyError("plain")) == "'plain'"  # a one-line KeyError keeps Python's quotes
    assert first_line(ValueError("first\nsecond")) == "first"


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("model.channels=-3", "config key 'model.channels' must be >= 0 (it is a size or a count), got -3"),
        ("model.channels=2.5", "config key 'model.channels' must be an integer, got 2.5"),
        ("model.torch_init=1", "config key 'model.torch_init' must be True or False, got 1"),
    ],
)
def test_a_bad_model_argument_is_named_by_its_key_not_blamed_on_the_data(
    override: str, problem: str, tmp_path: Path
) -> None:
    result = run_cli("compile", "--config", CNN, f"--config.{override}")
    line = assert_one_error_line(result.status, result.stderr, problem)
    assert "does not fit the data" not in line


@pytest.mark.parametrize("experiment", ["digits_mlp.py", "digits_vit.py"])  # dropout in its config, or not
def test_a_model_float_argument_must_be_finite(experiment: str, data_dir: str) -> None:
    result = run_cli("compile", "--config", str(EXPERIMENTS / experiment), "--config.model.dropout=nan")
    assert_refused(result, "config key 'model.dropout' must be a finite number, got 'nan'")


def test_resuming_past_num_steps_says_why_it_only_evaluates(workdir: Path) -> None:
    history = (workdir / "metrics.jsonl").read_bytes()
    result = run_cli("train", "--config", MLP, "--workdir", str(workdir), *MLP_RUN, "--config.train.num_steps=10")
    assert result.status == 0, result.stderr
    assert "nothing to train: the checkpoint's step 20 is past train.num_steps=10; evaluating step 20" in result.stderr
    final = json.loads(result.stdout)
    last_row = json.loads(history.splitlines()[-1])
    assert final["test/accuracy"] == last_row["test/accuracy"]  # step 20's evaluation, again
    assert (workdir / "metrics.jsonl").read_bytes() == history


# ------------------------------------------------------------------------------------------ the Python API


@pytest.mark.parametrize("config", [{"model": {"name": "mnist1d_mlp"}}, None, MLP, Path(MLP)])
def test_train_given_no_config_says_to_load_one(config: object, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"jm\.train expects a config \(an ml_collections\.ConfigDict\)") as raised:
        jm.train(config, tmp_path / "w")
    assert "jm.load_config(" in str(raised.value)
    if isinstance(config, str | Path):
        assert f"jm.train(jm.load_config({str(config)!r}), ...)" in str(raised.value)
    assert not (tmp_path / "w").exists()
    with pytest.raises(TypeError, match=r"jm\.compile expects a config"):
        jm.compile(config)


def test_sweep_given_a_dict_as_its_config_says_what_to_pass(tmp_path: Path) -> None:
    space = {"optimizer.learning_rate": {"type": "float", "low": 0.1, "high": 1.0}}
    with pytest.raises(TypeError, match=r"jm\.sweep expects an experiment file or a config .* got a dict"):
        jm.sweep(tmp_path / "sweep", {"model": {"name": "mnist1d_mlp"}}, space, num_trials=1)
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("function", [jm.evaluate, lambda run: jm.sample(run, "a", 1)])
def test_evaluate_and_sample_given_a_path_say_to_load_the_workdir(function, mlp_workdir: Path) -> None:
    expected = r"expects a Run( or an export's model \(.*\))?, got str .*load the workdir first: jm\.\w+\(jm\.load\("
    with pytest.raises(TypeError, match=expected):
        function(str(mlp_workdir))


def test_sample_given_an_export_path_says_to_load_the_export(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "jaxmodels_export.json").write_text("{}")
    with pytest.raises(TypeError, match=r"load the export first: jm\.sample\(jm\.load_export\("):
        jm.sample(str(export), "a", 1)


def test_apply_with_inputs_of_the_wrong_shape_says_which_shapes_it_takes(mlp_workdir: Path) -> None:
    run = jm.load(mlp_workdir)
    signals = np.asarray(run.eval_examples["inputs"][:2])
    assert signals.shape == (2, 40)
    # The MLP flattens what it is given, so a trailing channel axis of 1 works too, with the same logits.
    np.testing.assert_array_equal(run.apply(signals[..., None]), run.apply(signals))
    for wrong in (signals[:, :7], signals[0], np.stack([signals] * 3, axis=-1)):
        expected = (
            f"apply expects inputs of shape (batch, 40) or (batch, 40, 1), as the eval split's; got {wrong.shape}"
        )
        with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            run.apply(wrong)
