"""From TFDS records to the model's example dict, derived from the dataset's own metadata.

A classification example is `{'inputs': float32 array, 'label': int32}`; the input and label
features are the dataset's TFDS `supervised_keys` (('x', 'label') for MNIST-1D, ('image',
'label') for mnist or cifar10), so catalog datasets need no table of their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxmodels.data.pipeline import Example, read_records
from jaxmodels.errors import DataError


@dataclasses.dataclass(frozen=True)
class ClassificationFeatures:
    """Picks and normalises the (input, label) pair of a record; uint8 images are scaled to [0, 1]."""

    input_key: str
    label_key: str
    num_classes: int

    def __call__(self, record: dict[str, Any]) -> Example:
        inputs = np.asarray(record[self.input_key])
        inputs = inputs.astype(np.float32) / 255.0 if inputs.dtype == np.uint8 else inputs.astype(np.float32)
        return {"inputs": inputs, "label": np.asarray(record[self.label_key], np.int32)}


def classification_features(info: tfds.core.DatasetInfo) -> ClassificationFeatures:
    """The classification view of a dataset, from its supervised keys and label feature."""
    if not info.supervised_keys or len(info.supervised_keys) != 2:
        raise DataError(f"dataset {info.name!r} has no (input, label) supervised keys, so it cannot be classified")
    input_key, label_key = info.supervised_keys
    label_feature = info.features[label_key]
    if not isinstance(label_feature, tfds.features.ClassLabel):
        raise DataError(f"dataset {info.name!r}: label feature {label_key!r} is not a ClassLabel")
    return ClassificationFeatures(input_key, label_key, label_feature.num_classes)


@dataclasses.dataclass(frozen=True, eq=False)
class PermutedInputs:
    """Applies one fixed permutation to the flattened input features of every example (train and eval alike).

    The "shuffled" control of MNIST-1D (Greydanus 2020, Table 1): a model with a spatial prior (a CNN, an RNN)
    loses it when neighbouring positions are no longer neighbours, a model without one (an MLP) does not care.
    """

    preprocess: Callable[[dict[str, Any]], Example]
    permutation: np.ndarray

    def __call__(self, record: dict[str, Any]) -> Example:
        example = self.preprocess(record)
        inputs = example["inputs"]
        return {**example, "inputs": inputs.reshape(-1)[self.permutation].reshape(inputs.shape)}


class RecordSubset(Sequence):
    """A fixed random `fraction` of `records` (at least one), kept in stored order: `data.train_fraction`.

    Drawn without replacement by `seed` (the run's `config.seed`), so each seed of a sweep trains on its own
    subset, and runs with the same seed and fraction on the same one whatever else differs (e.g. the model).
    """

    def __init__(self, records: Sequence[dict[str, Any]], fraction: float, seed: int):
        self.records = records
        size = max(1, round(fraction * len(records)))
        self.indices = np.sort(np.random.default_rng(seed).choice(len(records), size, replace=False))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.records[int(self.indices[index])]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        return read_records(self.records, [int(self.indices[i]) for i in indices])


class NoisyLabels(Sequence):
    """Train records whose labels are, for a fixed random `fraction` of them, a uniformly drawn class instead.

    Label noise as in the deep double descent experiments (Nakkiran et al. 2020): the same records are noisy
    in every epoch and run (seeded), and the drawn class may happen to be the true one.
    """

    def __init__(self, records: Sequence[dict[str, Any]], label_key: str, num_classes: int, fraction: float):
        self.records, self.label_key = records, label_key
        rng = np.random.default_rng(0)
        noisy = rng.random(len(records)) < fraction
        self.labels = np.where(noisy, rng.integers(0, num_classes, len(records)), -1)  # -1: keep the record's own

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._relabelled(index, self.records[index])

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        records = read_records(self.records, indices)
        return [self._relabelled(i, record) for i, record in zip(indices, records, strict=True)]

    def _relabelled(self, index: int, record: dict[str, Any]) -> dict[str, Any]:
        label = self.labels[index]
        return record if label < 0 else {**record, self.label_key: label}
