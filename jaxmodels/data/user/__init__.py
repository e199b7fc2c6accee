"""Your own data: files on disk read as random-access records, which every data view consumes unchanged.

The seam. A user source is one module here, registered by name in `SOURCES` (the value of `data.name`), with a
function `open(data: ml_collections.ConfigDict) -> UserDataset` that reads `config.data` (its keys `files`,
`eval_files`, ...), checks the files and returns a `UserDataset` (jaxmodels/data/user/dataset.py):

    splits       {'train': records, 'test': records}: random-access sequences (`len`, `[i]`, optionally
                 `__getitems__`) of dicts, read lazily where the format allows (memory-mapped Arrow, .npy,
                 seekable text), so Grain shards, shuffles, prefetches and checkpoints them like TFDS sources
    features     the record keys as TFDS feature objects: `Text()` for text, `ClassLabel(names=...)` for a
                 label, `Tensor(shape, dtype)` for inputs; `supervised_keys` = (input key, label key)
    files        the files read, whose fingerprint (`fingerprint.py`) is kept in the workdir and checked when
                 a run resumes: a dataset changed on disk is refused

A `UserDataset` offers the views (jaxmodels/data/views.py) what a prepared TFDS builder offers them (`info`
with features, supervised keys and split sizes; `as_data_source(split)`), so `records`, `lm_windows`,
`mlm_windows` and `word2vec` work on it, with both loaders, and `num_classes`, `vocab_size` and input shapes come
from the data as they do for TFDS datasets. The held-out split is named 'test' (`data.eval_split`); with no
`data.eval_files` it is drawn from the train files. Every bad input is a `DataError` naming the file and the fix.
"""

from __future__ import annotations

import importlib

import ml_collections

from jaxmodels.data.user.dataset import UserDataset

# data.name -> module whose `open(config.data)` reads that kind of files.
SOURCES = {
    "text": "jaxmodels.data.user.text",
    "arrays": "jaxmodels.data.user.arrays",
    "table": "jaxmodels.data.user.tables",
    "huggingface": "jaxmodels.data.user.huggingface",
    "images": "jaxmodels.data.user.image_folder",
    "tfds_dir": "jaxmodels.data.user.tfds_dir",
}


def is_user_source(name: str) -> bool:
    """Whether `data.name` names a kind of user files rather than a TFDS dataset."""
    return name in SOURCES


def open_user_dataset(data: ml_collections.ConfigDict) -> UserDataset:
    """The files `data` (the config's data section) names, opened by the source module of `data.name`."""
    return importlib.import_module(SOURCES[data.name]).open(data)
