"""NumPy arrays: `data.name=arrays`, inputs and labels by key from `.npz` files or `.npy` files.

    --config.data.name=arrays --config.data.files=train.npz --config.data.input_keys=x --config.data.label_key=y

An `.npz` file's arrays are named by their keys; an `.npy` file is one array named by its file's stem
(`x.npy,y.npy` = an .npz holding x and y). Several files are shards: their arrays are concatenated along the
first axis. Row i of the input array and of the label array is example i; `.npy` files are memory-mapped, so
an input array larger than memory is read a batch at a time. Labels are integer class ids or names (sorted names
become ids 0, 1, ...). The held-out split is `data.eval_files` read the same way, else a fixed
`data.eval_fraction` of the rows.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from jaxmodels.data.user.dataset import Subset, UserDataset, class_ids, held_out, match_files
from jaxmodels.errors import DataError
from jaxmodels.files import first_line

SUFFIXES = (".npz", ".npy")


def open(data: ml_collections.ConfigDict) -> UserDataset:
    """The arrays of `data.files` (and `data.eval_files`), keys `data.input_keys` and `data.label_key`."""
    files = {"train": match_files(data.files)}
    if data.eval_files:
        files["test"] = match_files(data.eval_files, "data.eval_files")
    arrays = {split: _read_arrays(paths) for split, paths in files.items()}
    input_key = _input_key(data, arrays["train"], files["train"])
    columns = {split: _columns(found, input_key, data.label_key, files[split]) for split, found in arrays.items()}
    labels, names = class_ids({split: label for split, (_, label) in columns.items()}, _where(files["train"]))
    records = {split: ArrayRecords(inputs, labels[split], input_key) for split, (inputs, _) in columns.items()}
    if "test" not in records:
        train, test = held_out(len(records["train"]), data.eval_fraction)
        records = {"train": Subset(records["train"], train), "test": Subset(records["train"], test)}
    inputs = columns["train"][0]
    return UserDataset(
        name="arrays",
        records=records,
        features={
            input_key: tfds.features.Tensor(shape=inputs.shape[1:], dtype=inputs.dtype),
            "label": tfds.features.ClassLabel(names=names),
        },
        supervised_keys=(input_key, "label"),
        files=[path for paths in files.values() for path in paths],
        split_bytes={split: len(r) * inputs[0].nbytes for split, r in records.items()},
    )


class ArrayRecords(Sequence):
    """Row i of `inputs` with class id `labels[i]`; a batch is read with one fancy index."""

    def __init__(self, inputs: np.ndarray, labels: np.ndarray, input_key: str):
        self.inputs, self.labels, self.input_key = inputs, labels, input_key

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {self.input_key: np.asarray(self.inputs[index]), "label": self.labels[index]}

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, np.ndarray]]:
        order = np.asarray(indices, np.int64)
        inputs = np.asarray(self.inputs[order])
        return [{self.input_key: row, "label": label} for row, label in zip(inputs, self.labels[order], strict=True)]


def _where(paths: list[Path]) -> str:
    return str(paths[0]) if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more files)"


def _read_arrays(paths: list[Path]) -> dict[str, np.ndarray]:
    """The arrays of the files by key; several files' arrays of one key are concatenated in file order."""
    parts: dict[str, list[np.ndarray]] = {}
    for path in paths:
        for key, array in _load(path).items():
            parts.setdefault(key, []).append(array)
    return {key: chunks[0] if len(chunks) == 1 else np.concatenate(chunks) for key, chunks in parts.items()}


def _load(path: Path) -> dict[str, np.ndarray]:
    """The arrays of one .npz (by key) or .npy (by file stem) file; object arrays (pickles) are refused."""
    if path.suffix not in SUFFIXES:
        raise DataError(f"{path} is not an .npz or .npy file; data.name=arrays reads NumPy's .npz and .npy files")
    try:
        if path.suffix == ".npy":
            return {path.stem: np.load(path, mmap_mode="r", allow_pickle=False)}
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(
            f"{path} cannot be read as a NumPy file ({first_line(error)}); save it with np.savez or np.save "
            "(arrays of numbers or strings, not Python objects)"
        ) from None


def _input_key(data: ml_collections.ConfigDict, arrays: dict[str, np.ndarray], paths: list[Path]) -> str:
    """`data.input_keys` (one key), or the one array that is not the label."""
    keys = [key.strip() for key in data.input_keys.split(",") if key.strip()]
    if len(keys) > 1:
        raise DataError(
            f"data.input_keys names {len(keys)} arrays ({', '.join(keys)}); data.name=arrays reads one input "
            "array: stack them into one, or save them as a table (data.name=table)"
        )
    if keys:
        return keys[0]
    others = [key for key in arrays if key != data.label_key]
    if len(others) != 1:
        raise DataError(
            f"{_where(paths)} holds the arrays {', '.join(sorted(arrays))}; name the input array with "
            "--config.data.input_keys=KEY (and the labels with --config.data.label_key=KEY)"
        )
    return others[0]


def _columns(
    arrays: dict[str, np.ndarray], input_key: str, label_key: str, paths: list[Path]
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) of one split, checked: both present, one row per example in each."""
    for key, config_key in ((input_key, "data.input_keys"), (label_key, "data.label_key")):
        if key not in arrays:
            raise DataError(
                f"{_where(paths)} has no array {key!r}; its arrays are {', '.join(sorted(arrays))}: set "
                f"--config.{config_key} to one of them"
            )
    inputs, labels = arrays[input_key], arrays[label_key]
    if labels.ndim != 1 or inputs.ndim < 1 or len(inputs) != len(labels):
        raise DataError(
            f"{_where(paths)}: the inputs {input_key!r} (shape {inputs.shape}) and the labels {label_key!r} (shape "
            f"{labels.shape}) must have one row per example: give {len(inputs)} labels, one per input row"
        )
    if inputs.dtype.kind not in "iufb":
        raise DataError(f"{_where(paths)}: the inputs {input_key!r} are {inputs.dtype}, not numbers")
    return inputs, labels
