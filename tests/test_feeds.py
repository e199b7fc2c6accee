"""Both train feeds read the same data in the same order: resident (gathered on the device) and Grain (streamed).

A run's data must not depend on `data.loader`, so the Grain pipeline uses the resident feed's
per-epoch permutation of this process's shard, and resumes from a checkpointed iterator at the
batch it stopped at.
"""

from __future__ import annotations

import threading

import grain
import jax
import numpy as np
import pytest
from absl import flags as absl_flags

from jaxmodels import parallel
from jaxmodels.config import base_config
from jaxmodels.data import features, pipeline, views
from jaxmodels.data.feeds import GrainFeed, OneEpochAhead, ResidentFeed
from jaxmodels.experiment import make_feed
from tests.conftest import small_config_factory

NUM_RECORDS, BATCH_SIZE = 23, 5  # 4 batches per epoch on one process, 2 on each of two; ragged tails dropped
PREPROCESS = features.ClassificationFeatures("x", "label", 10)


class _Records:
    """A random-access source of records whose input is their own index."""

    def __len__(self) -> int:
        return NUM_RECORDS

    def __getitem__(self, index: int) -> dict:
        return {"x": np.full((3,), index, np.float32), "label": index % 10}


class _HostBatches:
    """What a multi-process jit strategy tells `ResidentFeed`: gather each batch on the host, place it as is."""

    host_batches, num_parts = True, 1

    @staticmethod
    def place_batch(batch: dict) -> dict:
        return batch


def _local_arrays(process_index: int, process_count: int) -> dict[str, np.ndarray]:
    indices = pipeline.shard_indices(NUM_RECORDS, process_index, process_count)
    return pipeline.load_arrays(_Records(), PREPROCESS, indices)


def _resident_batches(feed: ResidentFeed, steps: range) -> list[dict[str, np.ndarray]]:
    select = jax.jit(feed.select_batch)  # traced, as inside the compiled train step
    return [jax.device_get(select(step, *feed.args_for_step(step))) for step in steps]


def _grain_dataset(cached: bool, key: jax.Array, process_index: int, process_count: int, **options):
    """The Grain pipeline as `data.loader=grain` builds it: cached arrays hold this process's shard only."""
    if cached:
        source = pipeline.ExampleArrays(_local_arrays(process_index, process_count))
        return pipeline.grain_train_dataset(source, None, batch_size=BATCH_SIZE, data_key=key, **options)
    return pipeline.grain_train_dataset(
        _Records(), PREPROCESS, batch_size=BATCH_SIZE, data_key=key,
        process_index=process_index, process_count=process_count, **options,
    )  # fmt: skip


def _grain_batches(feed: GrainFeed, steps: range) -> list[dict[str, np.ndarray]]:
    return [feed.select_batch(step, *feed.args_for_step(step)) for step in steps]


def _assert_same(batches: list[dict], expected: list[dict]) -> None:
    assert len(batches) == len(expected)
    for batch, reference in zip(batches, expected, strict=True):
        assert batch.keys() == reference.keys()
        for key in reference:
            np.testing.assert_array_equal(batch[key], reference[key])


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("cached", [False, True], ids=["records", "cached"])
def test_grain_feed_serves_the_resident_feeds_batches(cached, shuffle):
    key = jax.random.split(jax.random.key(4), 3)[2]  # as the loop derives its data key
    resident = ResidentFeed(_local_arrays(0, 1), BATCH_SIZE, key, shuffle=shuffle)
    steps = range(2 * resident.steps_per_epoch)
    expected = _resident_batches(resident, steps)
    streamed = GrainFeed(_grain_dataset(cached, key, 0, 1, shuffle=shuffle))
    _assert_same(_grain_batches(streamed, steps), expected)
    first_epoch = np.concatenate([batch["inputs"][:, 0] for batch in expected[: resident.steps_per_epoch]])
    assert shuffle != np.array_equal(first_epoch, np.arange(len(first_epoch)))  # not trivially the stored order


def test_on_one_cpu_device_the_resident_feed_gathers_on_the_host_the_same_batches():
    strategy = parallel.make_strategy(base_config())  # this process has one CPU device
    assert strategy.host_batches
    key = jax.random.key(3)
    on_host = ResidentFeed(_local_arrays(0, 1), BATCH_SIZE, key, strategy=strategy)
    in_step = ResidentFeed(_local_arrays(0, 1), BATCH_SIZE, key)
    (batch,) = on_host.args_for_step(0)
    assert all(isinstance(array, np.ndarray) for array in batch.values())  # the step's dispatch copies them in
    steps = range(2 * in_step.steps_per_epoch)
    _assert_same(_resident_batches(on_host, steps), _resident_batches(in_step, steps))


def test_the_next_epochs_order_is_drawn_ahead_on_a_background_thread():
    computed_on = {}

    def epoch_value(epoch: int) -> int:
        computed_on[epoch] = threading.current_thread().name
        return 10 * epoch

    orders = OneEpochAhead(epoch_value)
    assert [orders(0), orders(1), orders(2), orders(7), orders(5), orders(6)] == [0, 10, 20, 70, 50, 60]  # 7, 5: jumps
    main = threading.current_thread().name
    assert computed_on[0] == computed_on[7] == computed_on[5] == main
    assert all(computed_on[epoch].startswith("jaxmodels-next-epoch") for epoch in (1, 2, 6))


@pytest.mark.parametrize("cached", [False, True], ids=["records", "cached"])
def test_each_process_reads_the_same_rows_from_either_feed(cached):
    key = jax.random.key(0)
    seen = []
    for process_index in range(2):
        resident = ResidentFeed(_local_arrays(process_index, 2), BATCH_SIZE, key, strategy=_HostBatches())
        steps = range(2 * resident.steps_per_epoch)
        expected = _resident_batches(resident, steps)
        _assert_same(_grain_batches(GrainFeed(_grain_dataset(cached, key, process_index, 2)), steps), expected)
        seen.append({int(i) for batch in expected[:2] for i in batch["inputs"][:, 0]})  # one epoch
    assert seen[0].isdisjoint(seen[1])


@pytest.mark.parametrize("cached", [False, True], ids=["records", "cached"])
def test_a_restored_grain_iterator_resumes_at_the_resident_feeds_batch(cached):
    key = jax.random.key(1)
    resident = ResidentFeed(_local_arrays(0, 1), BATCH_SIZE, key)
    expected = _resident_batches(resident, range(12))
    dataset = _grain_dataset(cached, key, 0, 1)
    feed = GrainFeed(dataset)
    _grain_batches(feed, range(6))  # into the second epoch
    state = feed.checkpoint_item.get_state()
    resumed = GrainFeed(dataset)
    resumed.checkpoint_item.set_state(state)
    _assert_same(_grain_batches(resumed, range(6, 12)), expected[6:])


def test_grain_worker_processes_serve_the_same_batches():
    if not absl_flags.FLAGS.is_parsed():  # Grain's workers read absl flags; pytest parses none (as the loop does)
        absl_flags.FLAGS.mark_as_parsed()
    key = jax.random.key(2)
    resident = ResidentFeed(_local_arrays(0, 1), BATCH_SIZE, key)
    expected = _resident_batches(resident, range(8))
    dataset = _grain_dataset(False, key, 0, 1, threads=0).mp_prefetch(
        grain.MultiprocessingOptions(num_workers=2), worker_init_fn=pipeline.cpu_only_worker
    )
    iterator = iter(dataset)
    try:
        _assert_same([next(iterator) for _ in range(8)], expected)
    finally:
        iterator.close()


# ------------------------------------------------------------------ the loaders a config chooses, on MNIST-1D

GRAIN_SETTINGS = {
    "cached": (),  # the split decoded once into host memory (it fits data.host_cache_max_mb)
    "records": ("--config.data.host_cache_max_mb=0",),  # TFDS records read and decoded batch by batch
}


def _config_feed(data_dir: str, *overrides: str):
    """The train feed `build_experiment` makes for the small MNIST-1D config: 4 batches of 1000 per epoch."""
    config = small_config_factory(data_dir)("--config.data.batch_size=1000", "--config.seed=5", *overrides)
    view = views.build(config, None, view="records")
    data_key = jax.random.split(jax.random.key(config.seed), 3)[2]  # as build_experiment derives it
    return make_feed(config, view, data_key, None)


@pytest.fixture(scope="module")
def resident_mnist1d_batches(data_dir) -> list[dict[str, np.ndarray]]:
    feed = _config_feed(data_dir, "--config.data.loader=resident")
    assert isinstance(feed, ResidentFeed) and feed.steps_per_epoch == 4
    return _resident_batches(feed, range(6))  # into the second epoch


@pytest.mark.parametrize("setting", GRAIN_SETTINGS)
def test_data_loader_grain_with_or_without_the_host_cache_feeds_the_resident_batches(
    data_dir, resident_mnist1d_batches, setting
):
    feed = _config_feed(data_dir, "--config.data.loader=grain", *GRAIN_SETTINGS[setting])
    assert isinstance(feed, GrainFeed)
    _assert_same(_grain_batches(feed, range(6)), resident_mnist1d_batches)


def test_data_workers_feed_the_resident_batches_from_the_host_cache(data_dir, resident_mnist1d_batches):
    """data.workers moves the cached pipeline into a Grain worker process (one: each costs seconds to start); the
    batches stay the same."""
    feed = _config_feed(data_dir, "--config.data.loader=grain", "--config.data.workers=1")
    try:
        _assert_same(_grain_batches(feed, range(6)), resident_mnist1d_batches)
    finally:
        feed.checkpoint_item.close()
