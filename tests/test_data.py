"""The MNIST-1D TFDS builder, sources, Grain pipeline, resident gathering and eval padding."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from mnist1d.data import get_dataset_args, make_dataset

from jaxmodels.data import features, pipeline, sources
from jaxmodels.errors import DataError


@pytest.fixture(scope="module")
def mnist1d(data_dir):
    builder = sources.open_dataset("mnist1d", data_dir)
    return builder, features.classification_features(builder.info)


def test_builder_yields_exactly_the_arrays_mnist1d_generates(mnist1d):
    builder, _ = mnist1d
    expected = make_dataset(get_dataset_args())
    for split, x_key, y_key in (("train", "x", "y"), ("test", "x_test", "y_test")):
        source = sources.open_split(builder, split)
        records = source.__getitems__(list(range(len(source))))
        xs = np.stack([r["x"] for r in records])
        ys = np.array([r["label"] for r in records])
        np.testing.assert_array_equal(xs, expected[x_key].astype(np.float32))
        np.testing.assert_array_equal(ys, expected[y_key])


def test_builder_sizes_dtypes_and_version(mnist1d):
    builder, feature_view = mnist1d
    assert builder.info.splits["train"].num_examples == 4000
    assert builder.info.splits["test"].num_examples == 1000
    assert str(builder.info.version) == "1.0.0"
    assert builder.info.features["x"].shape == (40,)
    assert feature_view == features.ClassificationFeatures("x", "label", 10)
    example = feature_view(sources.open_split(builder, "test")[0])
    assert example["inputs"].dtype == np.float32 and example["inputs"].shape == (40,)
    assert example["label"].dtype == np.int32


def test_data_dir_comes_from_config_then_environment(monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", "/from/env")
    assert sources.resolve_data_dir("/from/config") == "/from/config"
    assert sources.resolve_data_dir("") == "/from/env"


def test_unknown_dataset_suggests_a_name(data_dir):
    with pytest.raises(DataError, match=r"unknown dataset 'mnist1dd'.*'mnist1d'"):
        sources.open_dataset("mnist1dd", data_dir)


def test_missing_catalog_dataset_says_how_to_prepare_it(tmp_path):
    with pytest.raises(DataError, match=r"'cifar10' is not prepared in the TFDS data dir .*tfds build cifar10"):
        sources.open_dataset("cifar10", str(tmp_path))


def test_unknown_split_lists_the_splits(mnist1d):
    with pytest.raises(DataError, match=r"no split 'validation'; its splits are train, test"):
        sources.open_split(mnist1d[0], "validation")


def test_catalog_dataset_reads_through_tfds_mock(tmp_path):
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        builder = tfds.builder("mnist", data_dir=str(tmp_path))
        view = features.classification_features(builder.info)
        source = tfds.data_source("mnist", split="train", data_dir=str(tmp_path))
        records = [source[i] for i in range(len(source))]  # the mock's batched __getitems__ is broken
    arrays = pipeline.load_arrays(records, view, np.arange(len(records)))
    assert arrays["inputs"].shape == (12, 28, 28, 1)
    assert arrays["inputs"].dtype == np.float32 and arrays["inputs"].max() <= 1.0
    assert arrays["label"].shape == (12,)


@pytest.mark.parametrize("process_count", [1, 2, 3])
def test_process_shards_are_disjoint_and_cover_everything(process_count):
    shards = [pipeline.shard_indices(10, index, process_count) for index in range(process_count)]
    merged = np.concatenate(shards)
    assert len(merged) == len(set(merged.tolist())) == 10


class _Records:
    """A random-access source of `n` records whose input is their own index."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        return {"x": np.full((2,), index, np.float32), "label": index % 10}


_VIEW = features.ClassificationFeatures("x", "label", 10)


def _ids(batch) -> list[int]:
    return batch["inputs"][:, 0].astype(int).tolist()


def test_grain_epochs_are_shuffled_differently_and_drop_the_ragged_tail():
    dataset = pipeline.grain_train_dataset(_Records(25), _VIEW, batch_size=10, data_key=jax.random.key(3), threads=0)
    iterator = iter(dataset)
    epochs = [_ids(next(iterator)) + _ids(next(iterator)) for _ in range(3)]  # 25 // 10 = 2 batches/epoch
    for epoch in epochs:
        assert len(set(epoch)) == 20  # no repeats within an epoch; 5 of 25 dropped
    assert epochs[0] != epochs[1] != epochs[2]


def test_grain_order_depends_only_on_the_data_key():
    def first_batches(seed):
        dataset = pipeline.grain_train_dataset(_Records(50), _VIEW, batch_size=5, data_key=jax.random.key(seed))
        iterator = iter(dataset)
        return [_ids(next(iterator)) for _ in range(12)]

    assert first_batches(1) == first_batches(1)
    assert first_batches(1) != first_batches(2)


def test_grain_shards_per_process_are_disjoint():
    seen = []
    for index in range(2):
        dataset = pipeline.grain_train_dataset(
            _Records(40), _VIEW, batch_size=5, data_key=jax.random.key(0), process_index=index, process_count=2,
            threads=0,
        )  # fmt: skip
        iterator = iter(dataset)
        seen.append({i for _ in range(4) for i in _ids(next(iterator))})
    assert seen[0].isdisjoint(seen[1])
    assert seen[0] | seen[1] == set(range(40))


def test_grain_iterator_state_restores_exactly_the_remaining_sequence():
    dataset = pipeline.grain_train_dataset(_Records(30), _VIEW, batch_size=4, data_key=jax.random.key(7), threads=2)
    iterator = iter(dataset)
    for _ in range(9):  # past an epoch boundary (7 batches per epoch)
        next(iterator)
    state = iterator.get_state()
    expected = [_ids(next(iterator)) for _ in range(10)]
    fresh = iter(dataset)
    fresh.set_state(state)
    assert [_ids(next(fresh)) for _ in range(10)] == expected


def test_resident_gather_walks_each_epoch_permutation():
    arrays = {"inputs": np.arange(23, dtype=np.float32)[:, None], "label": np.arange(23) % 10}
    key = jax.random.key(0)
    for epoch in range(2):
        permutation = pipeline.epoch_permutation(key, epoch, 23)
        ids = []
        for step in range(epoch * 4, epoch * 4 + 4):  # 23 // 5 = 4 steps per epoch
            batch = pipeline.gather_batch(arrays, permutation, step, 5)
            ids += np.asarray(batch["inputs"][:, 0]).astype(int).tolist()
        assert ids == np.asarray(permutation[:20]).tolist()
    assert not np.array_equal(pipeline.epoch_permutation(key, 0, 23), pipeline.epoch_permutation(key, 1, 23))


@pytest.mark.parametrize("num_examples", [1, 2, 23, 1625, 1626, 4000, 70000])
def test_epoch_permutation_is_jax_random_permutation(num_examples):
    # Computed on the host with numpy, it must stay JAX's permutation of the fold-in key (one sort round up to
    # 1,625 examples, two from 1,626; at 70,000 some sort keys collide, where only a stable sort agrees), so the
    # data order of existing runs and checkpoints does not change.
    key = jax.random.key(11)
    for epoch in (0, 1, 7):
        expected = jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)
        np.testing.assert_array_equal(pipeline.epoch_permutation(key, epoch, num_examples), np.asarray(expected))


def test_eval_batches_cover_every_example_once_with_a_padding_mask():
    arrays = {"inputs": np.arange(23, dtype=np.float32)[:, None], "label": np.arange(23) % 10}
    batches = list(pipeline.padded_eval_batches(arrays, 10))
    assert [b["inputs"].shape[0] for b in batches] == [10, 10, 10]
    assert [int(b["valid"].sum()) for b in batches] == [10, 10, 3]
    real = np.concatenate([b["inputs"][b["valid"], 0] for b in batches])
    np.testing.assert_array_equal(real, np.arange(23))


def test_eval_batches_pad_to_a_common_count_across_processes():
    arrays = {"inputs": np.zeros((3, 1), np.float32), "label": np.zeros(3, np.int32)}
    batches = list(pipeline.padded_eval_batches(arrays, 2, num_batches=3))
    assert [int(b["valid"].sum()) for b in batches] == [2, 1, 0]


def test_a_split_smaller_than_a_batch_is_a_clear_error():
    with pytest.raises(DataError, match=r"fewer than data\.batch_size=10"):
        pipeline.steps_per_epoch(7, 10)


def test_without_shuffle_every_epoch_reads_the_stored_order():
    dataset = pipeline.grain_train_dataset(
        _Records(20), _VIEW, batch_size=10, data_key=jax.random.key(3), shuffle=False, threads=0
    )
    iterator = iter(dataset)
    assert [_ids(next(iterator)) for _ in range(4)] == [list(range(10)), list(range(10, 20))] * 2
    for epoch in range(2):
        order = pipeline.epoch_permutation(jax.random.key(0), epoch, 20, shuffle=False)
        np.testing.assert_array_equal(order, np.arange(20))


def _prepared_catalog_metadata(data_dir: Path, name: str, num_examples: int) -> None:
    """What `tfds build` leaves in `data_dir` besides the records: the dataset_info.json of `name`, with its splits."""
    builder = tfds.builder(name, data_dir=str(data_dir))
    splits = [tfds.core.SplitInfo(name=split, shard_lengths=[num_examples], num_bytes=1) for split in ("train", "test")]
    builder.info.set_splits(tfds.core.SplitDict(splits))
    Path(builder.data_dir).mkdir(parents=True)
    builder.info.write_to_directory(builder.data_dir)


def test_a_prepared_catalog_dataset_opens_through_open_dataset(tmp_path):
    """The catalog path (not an embedded builder): a prepared dataset's builder, its splits as data sources."""
    _prepared_catalog_metadata(tmp_path, "mnist", 12)
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_FILES, data_dir=str(tmp_path)):
        builder = sources.open_dataset("mnist", str(tmp_path))
        assert builder.name == "mnist" and builder.is_prepared()
        source = sources.open_split(builder, "test")
        view = features.classification_features(builder.info)
        records = [source[i] for i in range(len(source))]  # the mock's batched __getitems__ is broken
        with pytest.raises(DataError, match=r"'mnist' has no split 'validation'; its splits are train, test"):
            sources.open_split(builder, "validation")
    assert len(source) == 12 and view == features.ClassificationFeatures("image", "label", 10)
    arrays = pipeline.load_arrays(records, view, np.arange(12))
    assert arrays["inputs"].shape == (12, 28, 28, 1) and arrays["inputs"].dtype == np.float32
    assert arrays["label"].shape == (12,) and set(arrays["label"].tolist()) <= set(range(10))
