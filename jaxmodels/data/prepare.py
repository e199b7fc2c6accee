"""`jaxmodels prepare`: your own data converted once into a TFDS builder directory of ArrayRecord shards.

    jaxmodels prepare --out prepared/photos --config.data.name=images --config.data.dir=photos/
    jaxmodels train --config experiments/digits_cifar_resnet20.py --workdir runs/photos \\
        --config.data.name=tfds_dir --config.data.dir=prepared/photos

Any user source (`jaxmodels.data.user.SOURCES`: images, text, arrays, tables, huggingface) is read record by
record, a window of `READ_WINDOW` records at a time (an image folder's images decoded in threads), each record
serialised with the source's TFDS features and appended to the current shard, so memory does not grow with the
dataset. The output is what `tfds build --file_format=array_record` writes (`dataset_info.json`,
`features.json`, `NAME-SPLIT.array_record-0000X-of-0000Y`): `data.name=tfds_dir` reads it by random access,
Grain streams it with `data.workers` processes and checkpoints its position, and the records are the source's,
so a run gives the same batches from either. It is written into a temporary sibling folder that is renamed to
`--out` at the end: a failed conversion leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import tensorflow_datasets as tfds
from array_record.python.array_record_module import ArrayRecordWriter
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from jaxmodels.data import prepared_text, user
from jaxmodels.errors import DataError, UnreadableFile

SHARD_BYTES = 128 * 2**20  # a new shard after this many serialised bytes
READ_WINDOW = 256  # records read (and decoded) together
VERSION = "1.0.0"
FILE_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What `prepare` wrote: the directory, the records of each split and the unreadable files it left out."""

    out: Path
    num_records: dict[str, int]
    skipped: list[Path]
    seconds: float


def prepare(data: ml_collections.ConfigDict, out: str | Path, progress: bool = True) -> Prepared:
    """Converts the user data `data` (the config's data section) into a TFDS builder directory at `out`."""
    if not user.is_user_source(data.name):
        raise DataError(
            f"jaxmodels prepare converts your own files; data.name={data.name!r} is none of "
            f"{', '.join(user.SOURCES)} (a TFDS catalog dataset is prepared with `tfds build`)"
        )
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"--out {str(out)!r} already exists and is not an empty folder; choose a new one")
    start = time.perf_counter()
    data = ml_collections.ConfigDict(data.to_dict())
    data.host_cache_max_mb = 0  # read records as they are written: never decode a whole image folder into memory
    dataset = user.open_user_dataset(data)
    features = tfds.features.FeaturesDict(dict(dataset.features))
    skipped: list[Path] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp's folder is private; the dataset is not
    try:
        with _progress(progress) as bar:
            if prepared_text.is_text(dataset.features):
                features, splits = _write_text(staging, dataset, data, bar)
            else:
                splits = [
                    _write_split(staging, dataset.name, split, _readable(records, data.skip_bad_files, skipped,
                                 _advancing(bar, f"{data.name} {split}", len(records))), features)
                    for split, records in dataset.records.items()
                ]  # fmt: skip
        tfds.folder_dataset.write_metadata(
            data_dir=staging,
            features=features,
            split_infos=splits,
            filename_template=_template(staging, dataset.name),
            version=VERSION,
            supervised_keys=dataset.supervised_keys,
            check_data=False,
        )
        if out.exists():
            out.rmdir()  # empty, checked above
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Prepared(out, {s.name: s.num_examples for s in splits}, skipped, time.perf_counter() - start)


def _template(directory: Path, name: str, split: str | None = None) -> tfds.core.ShardedFileTemplate:
    return tfds.core.ShardedFileTemplate(
        data_dir=directory, template=FILE_TEMPLATE, dataset_name=name, split=split, filetype_suffix="array_record"
    )


def _write_split(
    directory: Path, name: str, split: str, records: Iterable[dict[str, Any]], features: tfds.features.FeaturesDict
) -> tfds.core.SplitInfo:
    """Writes one split's records as shards of about `SHARD_BYTES`, one record at a time; returns its SplitInfo."""
    lengths, total, writer = [], 0, None
    for record in records:
        if writer is None:
            writer = ArrayRecordWriter(str(directory / f".shard-{split}-{len(lengths)}"), "group_size:1")  # as TFDS
            lengths.append(0)
        example = features.serialize_example(features.encode_example(record))
        writer.write(example)
        lengths[-1] += 1
        total += len(example)
        if total >= SHARD_BYTES * len(lengths):  # this shard is full
            writer.close()
            writer = None
    if writer is not None:
        writer.close()
    if not lengths:
        raise DataError(f"the {split!r} split of {name!r} has no readable record; nothing to prepare")
    template = _template(directory, name, split)
    for index in range(len(lengths)):
        final = template.sharded_filepath(shard_index=index, num_shards=len(lengths))
        (directory / f".shard-{split}-{index}").rename(final)
    return tfds.core.SplitInfo(name=split, shard_lengths=lengths, num_bytes=total, filename_template=template)


def _write_text(
    directory: Path, dataset: user.UserDataset, data: ml_collections.ConfigDict, bar: Progress
) -> tuple[tfds.features.FeaturesDict, list[tfds.core.SplitInfo]]:
    """Text documents as token ids (`prepared_text`): the tokenizer trained on the train text, then each split's
    ids written in records of `prepared_text.CHUNK`; the tokenizer and the train/validation cut saved beside."""
    train = dataset.records["train"]
    has_eval_files = len(dataset.records) > 1
    reads = len(train) if has_eval_files else 2 * len(train)  # (the lengths, then) the tokenizer's pass
    advance = _advancing(bar, f"text: the {data.tokenizer} tokenizer", reads)
    tokenizer = prepared_text.train_tokenizer(train, data, has_eval_files, advance)
    features = prepared_text.TOKEN_FEATURES
    splits, train_ids = [], []
    for split, records in dataset.records.items():
        advance = _advancing(bar, f"text: {split} ids", len(records))
        chunks = prepared_text.token_chunks(records, tokenizer, advance)
        counted = (chunk for chunk in chunks if split != "train" or not train_ids.append(len(chunk["tokens"])))
        splits.append(_write_split(directory, dataset.name, split, counted, features))
    total = sum(train_ids) // prepared_text.token_dtype(tokenizer.vocab_size).itemsize
    cut = total if has_eval_files else int(total * (1 - data.eval_fraction))
    prepared_text.write_metadata(directory, tokenizer, cut)
    return features, splits


def _advancing(bar: Progress, description: str, total: int) -> Callable[[int], None]:
    """A new task of `bar` and the function that advances it."""
    task = bar.add_task(description, total=total)
    return lambda count: bar.advance(task, count)


def _readable(
    records: Sequence[dict[str, Any]], skip_bad_files: bool, skipped: list[Path], advance: Callable[[int], None]
) -> Iterator[dict[str, Any]]:
    """The records in order, `READ_WINDOW` at a time (vectorised reads where the source has them); an unreadable
    file stops the conversion, or with `skip_bad_files` is left out and listed in `skipped`."""
    for start in range(0, len(records), READ_WINDOW):
        indices = list(range(start, min(start + READ_WINDOW, len(records))))
        try:
            window = records.__getitems__(indices) if hasattr(records, "__getitems__") else None
        except UnreadableFile:
            window = None  # read one by one to find (and skip) the bad ones
        for offset, index in enumerate(indices):
            if window is not None:
                yield window[offset]
                continue
            try:
                yield records[index]
            except UnreadableFile as error:
                if not skip_bad_files:
                    raise
                skipped.append(error.path)
        advance(len(indices))


def _progress(enabled: bool) -> Progress:
    """A progress bar per split on stderr, shown in a terminal only (a log keeps just the summary or the error)."""
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
    )
