"""From TFDS records to the model's example dict, derived from the dataset's own metadata.

A classification example is `{'inputs': float32 array, 'label': int32}`; the input and label
features are the dataset's TFDS `supervised_keys` (('x', 'label') for MNIST-1D, ('image',
'label') for mnist or cifar10), so catalog datasets need no table of their own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxmodels.data.pipeline import Example
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
