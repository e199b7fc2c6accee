"""TFDS builder directories: `data.name=tfds_dir`, a prepared dataset given by its folder, not by a catalog name.

    --config.data.name=tfds_dir --config.data.dir=prepared/photos
    --config.data.name=tfds_dir --config.data.dir=~/tensorflow_datasets/my_dataset/1.0.0

The folder holds `dataset_info.json`, `features.json` and the split shards, as `tfds build` writes them (with
`--file_format=array_record`) and as `jaxmodels prepare` writes them. It is opened with
`tfds.builder_from_directory` (no builder code, no TensorFlow) and read by random access through
`as_data_source`, so every view and both loaders use it as they use a catalog dataset; its files are
fingerprinted like other user files, so a run resumed on a changed directory is refused.
"""

from __future__ import annotations

from pathlib import Path

import ml_collections
import tensorflow_datasets as tfds

from jaxmodels.data import sources
from jaxmodels.data.user.dataset import UserDataset
from jaxmodels.errors import DataError
from jaxmodels.files import first_line

INFO_FILE = "dataset_info.json"


def open(data: ml_collections.ConfigDict) -> UserDataset:
    """The dataset in the TFDS builder directory `data.dir`, with its splits as random-access records."""
    builder = open_builder(data.dir)
    records = {split: sources.open_split(builder, split) for split in builder.info.splits}
    return UserDataset(
        name=builder.name,
        records=records,
        features=dict(builder.info.features.items()),
        files=sorted(path for path in Path(builder.data_dir).iterdir() if path.is_file()),
        supervised_keys=builder.info.supervised_keys,
        split_bytes={split: info.num_bytes for split, info in builder.info.splits.items()},
    )


def open_builder(directory: str) -> tfds.core.DatasetBuilder:
    """`tfds.builder_from_directory(directory)`; a folder that is not a TFDS builder directory is a DataError."""
    if not directory:
        raise DataError("config key 'data.dir' is empty; name the TFDS builder directory (the folder holding "
                        f"{INFO_FILE}), e.g. --config.data.dir=prepared/photos")  # fmt: skip
    path = Path(directory).expanduser()
    if not (path / INFO_FILE).is_file():
        inside = sorted(p.parent for p in path.glob(f"**/{INFO_FILE}"))[:1] if path.is_dir() else []
        hint = f" (did you mean {inside[0]}?)" if inside else ""
        raise DataError(
            f"{str(path)!r} is not a TFDS builder directory: it has no {INFO_FILE}{hint}; point data.dir at the "
            "folder `tfds build` or `jaxmodels prepare` wrote"
        )
    try:
        return tfds.builder_from_directory(path)
    except Exception as error:  # a damaged dataset_info.json or features.json: TFDS raises many kinds
        raise DataError(f"cannot open the TFDS builder directory {path}: {first_line(error)}") from None
