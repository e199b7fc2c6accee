"""An eval split over `data.resident_max_mb` is read a batch at a time at each evaluation, never held whole: it gives
the resident split's metrics bit for bit, and `run.eval_examples`, `run.apply` and `explain` read it as arrays."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import jax
import numpy as np
import pytest

import jaxmodels as jm
from jaxmodels import explain
from jaxmodels.data import feeds, pipeline, views
from jaxmodels.errors import ConfigError
from jaxmodels.experiment import build_experiment
from tests.conftest import EXPERIMENTS

BENCHMARKS = EXPERIMENTS.parent / "benchmarks"

pytestmark = pytest.mark.usefixtures("compilation_cache_dir")

# 1,000 test signals in batches of 300: three full batches and one padded; the train split stays resident either way.
SHORT = ["train.num_steps=20", "train.eval_every=10", "train.log_every=10", "train.checkpoint_every=20",
         "train.progress_bar=False", "data.loader='resident'", "data.eval_batch_size=300"]  # fmt: skip
STREAMED = "data.resident_max_mb=0"


def mnist1d_config(data_dir: str, *overrides: str):
    return jm.load_config(EXPERIMENTS / "mnist1d_cnn.py", [f"data.data_dir={data_dir}", *SHORT, *overrides])


@pytest.fixture(scope="module")
def streamed_run(data_dir: str, tmp_path_factory: pytest.TempPathFactory) -> jm.Run:
    return jm.train(mnist1d_config(data_dir, STREAMED), tmp_path_factory.mktemp("streamed") / "run")


@pytest.fixture(scope="module")
def resident_view(data_dir: str) -> views.DataView:
    return views.build(mnist1d_config(data_dir), None, view="records")


def test_a_split_over_the_budget_streams_and_one_under_it_stays_in_memory(streamed_run, resident_view):
    assert isinstance(streamed_run.eval_examples, pipeline.StreamedExamples)
    assert isinstance(streamed_run.experiment.eval_batches, feeds.StreamedEvalBatches)
    assert all(isinstance(array, np.ndarray) for array in resident_view.eval_examples.values())
    assert set(streamed_run.eval_examples) == set(resident_view.eval_examples) == {"inputs", "label"}


def test_streamed_and_resident_evaluations_give_bitwise_equal_metrics(streamed_run, data_dir):
    resident = build_experiment(mnist1d_config(data_dir))
    assert isinstance(resident.eval_batches, list)
    metrics = resident.evaluate(streamed_run.state)
    assert metrics == streamed_run.experiment.evaluate(streamed_run.state)
    assert metrics == streamed_run.final  # what the train loop logged from the streamed split
    untrained = resident.initial_state
    assert resident.evaluate(untrained) == streamed_run.experiment.evaluate(untrained) != metrics


def test_streamed_columns_index_as_the_resident_arrays(streamed_run, resident_view):
    streamed, resident = streamed_run.eval_examples, resident_view.eval_examples
    for key in resident:
        column, array = streamed[key], resident[key]
        assert (len(column), column.shape, column.dtype) == (len(array), array.shape, array.dtype)
        for index in (
            0,
            7,
            -1,
            slice(None, 3),
            slice(995, None),
            [4, 2, 999],
            array[:, 0] > 0 if key == "inputs" else 5,
        ):
            np.testing.assert_array_equal(column[index], array[index])
    with pytest.raises(KeyError):
        streamed["image"]


def test_explain_and_apply_read_one_example_of_a_streamed_split(streamed_run, resident_view):
    inputs, attribution = explain.explain(streamed_run, 998, "saliency")
    np.testing.assert_array_equal(inputs, resident_view.eval_examples["inputs"][998])
    assert attribution.shape == inputs.shape
    with pytest.raises(ConfigError, match="--index 1000 is outside the eval split, which has 1000 examples"):
        explain.explain(streamed_run, 1000, "saliency")
    with pytest.raises(
        ValueError, match=r"apply expects inputs of shape \(batch, 40\), as the eval split's; got \(2, 40, 3\)"
    ):
        streamed_run.apply(np.zeros((2, 40, 3), np.float32))


def test_a_streamed_split_preprocesses_one_batch_of_records_at_a_time(resident_view):
    records, preprocess, calls = resident_view.train_records, resident_view.preprocess, []  # 4,000 records

    def counted(record):
        calls.append(1)
        return preprocess(record)

    examples = pipeline.StreamedExamples(records, counted, np.arange(1, 1001))
    assert len(calls) == 1  # one record, for the keys, shapes and dtypes
    expected = pipeline.load_arrays(records, preprocess, np.arange(1, 1001))
    for number, batch in enumerate(pipeline.padded_eval_batches(examples, 300, num_batches=5), start=1):
        assert len(calls) == 1 + min(number * 300, 1000)  # this batch's records only, when it is asked for
        real = int(batch["valid"].sum())
        start = (number - 1) * 300
        assert real == max(0, min(300, 1000 - start))
        for key, array in expected.items():
            np.testing.assert_array_equal(batch[key][:real], array[start : start + real])
            assert not batch[key][real:].any()  # padding rows are zeros, as the resident split's


def test_streamed_eval_batches_read_one_batch_ahead_and_place_each_as_it_is_used():
    read, placed = [], []
    gate = threading.Event()

    def read_batches():
        for i in range(5):
            read.append(i)
            yield {"x": np.full((2,), i)}

    def place(batch):
        placed.append(int(batch["x"][0]))
        return jax.device_put(batch)

    for i, batch in enumerate(feeds.StreamedEvalBatches(read_batches, place)):
        gate.wait(0.01)  # the reader may run ahead meanwhile, by one batch at most
        assert int(batch["x"][0]) == i and placed == list(range(i + 1)) and len(read) <= i + 2
    assert read == placed == list(range(5))


def test_the_eval_memory_benchmark_shows_the_streamed_split_holding_far_less():
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "eval_memory.py"), "--records", "1000", "--batch", "100"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    resident, streamed = (json.loads(line) for line in done.stdout.splitlines())
    assert (resident["mode"], streamed["mode"]) == ("resident", "streamed")
    assert resident["split_mb"] == streamed["split_mb"] == round(1000 * 64 * 64 * 3 * 4 / 2**20, 1)
    assert resident["peak_rss_mb"] > resident["split_mb"] > 2 * streamed["peak_rss_mb"]  # a few batches at most
    assert resident["seconds"] > 0 and streamed["seconds"] > 0
