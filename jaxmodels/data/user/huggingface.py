"""Hugging Face datasets: `data.name=huggingface`, a dataset saved with `save_to_disk`, or Parquet/Arrow files.

    --config.data.name=huggingface --config.data.files=my_dataset --config.data.label_key=label

`data.files` is the folder `Dataset.save_to_disk` or `DatasetDict.save_to_disk` wrote, or Parquet/Arrow files
(as `datasets` caches and the Hub store them). A `DatasetDict` gives its splits `data.train_split` and, if it
has it, `data.eval_split` (else a fixed `data.eval_fraction` of the train rows is held out). Its Arrow files
are memory-mapped and read a batch of rows at a time, so a dataset larger than memory trains without being
loaded, and without the `datasets` library. Columns are read as `data.name=table` reads them (`data.input_keys`,
`data.label_key`, `data.text_key`); a `ClassLabel` column keeps its class names.
"""

from __future__ import annotations

import json
from pathlib import Path

import ml_collections

from jaxmodels.data.user import tables
from jaxmodels.data.user.dataset import UserDataset
from jaxmodels.errors import DataError
from jaxmodels.files import read_json_object


def open(data: ml_collections.ConfigDict) -> UserDataset:
    """The dataset saved in the folder `data.files`, or the rows of Parquet/Arrow files."""
    folders = [Path(p.strip()).expanduser() for p in data.files.split(",") if p.strip()]
    if len(folders) != 1 or not folders[0].is_dir() or not _saved(folders[0]):
        return tables.open(data, name="huggingface")
    folder = folders[0]
    if data.eval_files:
        raise DataError(
            f"data.eval_files is set, but {folder} is a dataset saved with save_to_disk, whose splits are its own: "
            "name its eval split with data.eval_split, or leave data.eval_files empty to hold out data.eval_fraction"
        )
    if (folder / "dataset_dict.json").is_file():
        splits = read_json_object(folder / "dataset_dict.json", DataError).get("splits", [])
        if data.train_split not in splits:
            raise DataError(
                f"the dataset in {folder} has no split {data.train_split!r}; its splits are {', '.join(splits)} "
                "(config keys data.train_split / data.eval_split)"
            )
        chosen = {"train": folder / data.train_split}
        if data.eval_split in splits and data.eval_split != data.train_split:
            chosen["test"] = folder / data.eval_split
    else:
        chosen = {"train": folder}
    arrow_files = {split: _arrow_files(path) for split, path in chosen.items()}
    table_of = {split: tables.read_tables(files) for split, files in arrow_files.items()}
    files = [path for paths in arrow_files.values() for path in paths]
    return tables.table_dataset("huggingface", table_of, data, files, _class_names(chosen["train"], data.label_key))


def _saved(folder: Path) -> bool:
    """Whether `folder` holds a dataset written by `save_to_disk`."""
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def _arrow_files(folder: Path) -> list[Path]:
    """The Arrow files of one saved split, in shard order (its state.json lists them)."""
    state = read_json_object(folder / "state.json", DataError)
    names = [entry.get("filename") for entry in state.get("_data_files", []) if isinstance(entry, dict)]
    files = [folder / name for name in names if isinstance(name, str)]
    missing = [path for path in files if not path.is_file()]
    if not files or missing:
        raise DataError(
            f"the dataset saved in {folder} is incomplete ({missing[0] if missing else 'no data files listed'}); "
            "save it again with save_to_disk"
        )
    return files


def _class_names(folder: Path, label_key: str) -> list[str] | None:
    """The names of the label column's ClassLabel feature in the saved dataset_info.json (None if it has none)."""
    try:
        features = json.loads((folder / "dataset_info.json").read_text()).get("features", {})
    except (OSError, ValueError):
        return None
    label = features.get(label_key) if isinstance(features, dict) else None
    if isinstance(label, dict) and label.get("_type") == "ClassLabel" and isinstance(label.get("names"), list):
        return [str(name) for name in label["names"]]
    return None
