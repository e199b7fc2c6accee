"""Random-access dataset splits through `tfds.data_source`, with errors that say how to fix them.

Datasets jaxmodels generates itself (MNIST-1D) are prepared on first use into the TFDS data
dir as array_record files. Catalog datasets (mnist, cifar10, ...) are read when the user has
prepared them; when missing we say which data dir was searched and how to prepare them.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tensorflow_datasets as tfds

from jaxmodels.errors import DataError

# Name -> module whose import registers the TFDS builder that generates the data offline.
EMBEDDED_BUILDERS = {
    "mnist1d": "jaxmodels.data.builders.mnist1d",
    "digits": "jaxmodels.data.builders.digits",
    "shakespeare": "jaxmodels.data.builders.shakespeare",
    "synthetic": "jaxmodels.data.builders.synthetic",
}


def resolve_data_dir(configured: str = "") -> str:
    """The TFDS data dir: the config value, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return configured or os.environ.get("TFDS_DATA_DIR") or str(Path("~/tensorflow_datasets").expanduser())


def open_dataset(name: str, data_dir: str = "") -> tfds.core.DatasetBuilder:
    """The prepared TFDS builder of dataset `name` (generating embedded datasets on first use)."""
    data_dir = resolve_data_dir(data_dir)
    family = name.split("/")[0]  # "shakespeare/passages" is builder "shakespeare", config "passages"
    if family not in EMBEDDED_BUILDERS:
        return _catalog_builder(name, data_dir)
    embedded = embedded_names()
    if name not in embedded:
        raise DataError(f"unknown dataset {name!r} (config key data.name).{_hint(name, embedded)}")
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
    if not builder.is_prepared():
        builder.download_and_prepare()
    return builder


def embedded_names() -> list[str]:
    """The names of the datasets jaxmodels generates: each builder, and builder/config for each of its configs."""
    names = []
    for family, module in EMBEDDED_BUILDERS.items():
        importlib.import_module(module)  # registers the builder
        configs = tfds.builder_cls(family).BUILDER_CONFIGS
        names += [family, *(f"{family}/{config.name}" for config in configs)]
    return sorted(names)


def _hint(name: str, known: list[str]) -> str:
    """' Did you mean ...?' for close names, then the offline datasets, which always work."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    did_you_mean = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    offline = ", ".join(embedded_names())
    return f"{did_you_mean} The offline datasets are {offline}; TFDS catalog datasets are NAME or NAME/CONFIG"


def open_split(builder: tfds.core.DatasetBuilder, split: str) -> Sequence[dict[str, Any]]:
    """Opens `split` of a prepared dataset as a random-access sequence of decoded records."""
    name, data_dir = builder.name, builder.data_dir
    if split not in builder.info.splits:
        raise DataError(
            f"dataset {name!r} has no split {split!r}; its splits are {', '.join(builder.info.splits)} "
            "(config keys data.train_split / data.eval_split)"
        )
    try:
        return builder.as_data_source(split=split)
    except NotImplementedError as error:
        raise DataError(
            f"dataset {name!r} in {data_dir} is stored as {builder.info.file_format}, which needs TensorFlow to read; "
            f"re-prepare it with `tfds build {name} --file_format=array_record --data_dir={data_dir}` ({error})"
        ) from None


def _catalog_builder(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError):  # ValueError: a malformed name or config
        known = sorted(set(embedded_names()) | set(tfds.list_builders(with_community_datasets=False)))
        raise DataError(f"unknown dataset {name!r} (config key data.name).{_hint(name, known)}") from None
    if not builder.is_prepared():
        raise DataError(
            f"dataset {name!r} is not prepared in the TFDS data dir {data_dir}; jaxmodels never downloads at run "
            f"time: prepare it with `tfds build {name} --file_format=array_record --data_dir={data_dir}` "
            "where there is internet, or point data.data_dir / $TFDS_DATA_DIR at a dir that has it"
        )
    return builder
