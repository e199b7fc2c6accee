"""`UserDataset`: user files as the views see a prepared TFDS dataset, plus the helpers every source shares.

`match_files` turns the config's globs into files (folders give the files under them), `held_out` draws the
'test' split from the train records when no `data.eval_files` are given, and `class_ids` turns labels (ints or
strings) into class ids with their names.
"""

from __future__ import annotations

import dataclasses
import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxmodels.errors import DataError

HELD_OUT_SEED = 0  # the held-out draw is fixed, whatever config.seed, so every run of a sweep evaluates alike


@dataclasses.dataclass(frozen=True)
class SplitInfo:
    """What the views read of a split's TFDS `SplitInfo`."""

    num_examples: int
    num_bytes: int


@dataclasses.dataclass(frozen=True)
class UserInfo:
    """What the views read of a TFDS `DatasetInfo`: features, supervised keys and split sizes."""

    name: str
    features: dict[str, tfds.features.FeatureConnector]
    supervised_keys: tuple[str, str] | None
    splits: dict[str, SplitInfo]


@dataclasses.dataclass(frozen=True)
class UserDataset:
    """User files opened as random-access splits; offers the views the interface of a prepared TFDS builder."""

    name: str  # data.name, e.g. 'text'
    records: dict[str, Sequence[dict[str, Any]]]  # split name -> random-access records
    features: dict[str, tfds.features.FeatureConnector]
    files: list[Path]  # every file read, train and held-out: the dataset's fingerprint covers them
    supervised_keys: tuple[str, str] | None = None
    split_bytes: dict[str, int] = dataclasses.field(default_factory=dict)  # the loaders' size estimate

    @property
    def info(self) -> UserInfo:
        splits = {
            split: SplitInfo(len(records), self.split_bytes.get(split, 0)) for split, records in self.records.items()
        }
        return UserInfo(self.name, self.features, self.supervised_keys, splits)

    @property
    def class_names(self) -> list[str] | None:
        """The label's class names in id order (None for data without a ClassLabel label)."""
        label = self.features.get(self.supervised_keys[1]) if self.supervised_keys else None
        return list(label.names) if isinstance(label, tfds.features.ClassLabel) else None

    @property
    def data_dir(self) -> str:
        return str(self.files[0].parent)

    def as_data_source(self, split: str) -> Sequence[dict[str, Any]]:
        return self.records[split]


def match_files(patterns: str, key: str = "data.files") -> list[Path]:
    """The files named by comma-separated globs, in sorted order; a folder stands for the files under it.

    A glob matching nothing, or a folder holding no file, is a DataError naming it.
    """
    if not patterns.strip():
        raise DataError(f"config key {key!r} is empty; name your files, e.g. --config.{key}='corpus/*.txt'")
    files: list[Path] = []
    for pattern in (p.strip() for p in patterns.split(",") if p.strip()):
        matches = sorted(Path(match) for match in glob.glob(str(Path(pattern).expanduser()), recursive=True))
        if not matches:
            raise DataError(f"{key}: {pattern!r} matches no file; check the path (globs such as 'corpus/*.txt' work)")
        for match in matches:
            if match.is_dir():
                inside = sorted(p for p in match.rglob("*") if p.is_file() and not p.name.startswith("."))
                if not inside:
                    raise DataError(f"{key}: the folder {str(match)!r} holds no files; put your data in it")
                files += inside
            else:
                files.append(match)
    return list(dict.fromkeys(files))  # a file matched by two globs is read once


def held_out(num_records: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): a fixed random `fraction` of the records held out, both in stored order."""
    count = round(num_records * fraction)
    if not 0 < count < num_records:
        raise DataError(
            f"cannot hold out data.eval_fraction={fraction} of {num_records} records for evaluation (it leaves "
            "an empty split); give held-out files with data.eval_files or change data.eval_fraction"
        )
    order = np.random.default_rng(HELD_OUT_SEED).permutation(num_records)
    return np.sort(order[count:]), np.sort(order[:count])


class Subset(Sequence):
    """The records of `records` at `indices`: a split drawn from another, still random-access."""

    def __init__(self, records: Sequence[dict[str, Any]], indices: np.ndarray):
        self.records, self.indices = records, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.records[int(self.indices[index])]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        chosen = [int(self.indices[i]) for i in indices]
        if hasattr(self.records, "__getitems__"):
            return self.records.__getitems__(chosen)
        return [self.records[i] for i in chosen]


def class_ids(labels: dict[str, np.ndarray], where: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Labels of each split -> (int32 class ids of each split, class names).

    Integer labels are class ids already: they must be >= 0, the classes are 0..max of the train labels and the
    other splits must stay in that range. String labels become ids in sorted order of the train labels' names.
    A column mixing numbers and words, float labels or missing labels are DataErrors naming `where`.
    """
    kinds = {split: _label_kind(values, f"{where}, {split} split") for split, values in labels.items()}
    if len(set(kinds.values())) > 1:
        raise DataError(
            f"{where}: the labels are of mixed types across splits ({', '.join(f'{s}: {k}' for s, k in kinds.items())})"
            "; use one type: all integers or all names"
        )
    train = labels["train"]
    if kinds["train"] == "int":
        values = {split: np.asarray(v, np.int64) for split, v in labels.items()}
        lowest = min(int(v.min()) for v in values.values())
        if lowest < 0:
            raise DataError(f"{where}: a label is {lowest}, out of range; integer labels are class ids 0, 1, 2, ...")
        num_classes = int(values["train"].max()) + 1
        for split, v in values.items():
            if int(v.max()) >= num_classes:
                raise DataError(
                    f"{where}: a {split} label is {int(v.max())}, out of range: the train labels are class ids "
                    f"0..{num_classes - 1}; every class must have train examples"
                )
        return {split: v.astype(np.int32) for split, v in values.items()}, [str(i) for i in range(num_classes)]
    names = sorted(set(map(str, train)))
    index = {name: i for i, name in enumerate(names)}
    ids = {}
    for split, values in labels.items():
        unknown = sorted(set(map(str, values)) - index.keys())
        if unknown:
            raise DataError(
                f"{where}: the {split} labels include {unknown[0]!r}, which no train example has; every class "
                "must have train examples"
            )
        ids[split] = np.array([index[str(v)] for v in values], np.int32)
    return ids, names


def _label_kind(values: np.ndarray, where: str) -> str:
    """'int' or 'str' for a split's labels; DataError for floats, missing values or numbers mixed with words."""
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return "int"
    if values.dtype.kind == "f":
        whole = np.isfinite(values) & (values == np.round(values))
        if not whole.all():
            bad = values[~whole][0]
            raise DataError(
                f"{where}: a label is {bad}, not a class; labels must be integers or names (classification)"
            )
        return "int"
    texts = [value for value in values.tolist()]
    if any(value is None for value in texts):
        raise DataError(f"{where}: a label is missing; give every example a label")
    if all(isinstance(value, int) and not isinstance(value, bool) for value in texts):
        return "int"
    numbers = [value for value in texts if isinstance(value, int | float) or _is_number(value)]
    words = [value for value in texts if not (isinstance(value, int | float) or _is_number(value))]
    if numbers and words:
        raise DataError(
            f"{where}: the labels are of mixed types, numbers such as {numbers[0]!r} and names such as "
            f"{words[0]!r}; use one type: all integers or all names"
        )
    return "str"


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
