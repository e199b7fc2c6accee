"""Tables: `data.name=table`, CSV, Parquet or Arrow files read by pyarrow, one example per row.

    --config.data.name=table --config.data.files=iris.csv --config.data.label_key=species

With a label column (`data.label_key`) each row is a classification example: its inputs are the feature
columns (`data.input_keys`, comma-separated; '' = the text column `data.text_key` if the table has one, else
every column but the label), numbers stacked into one float vector (a column of equal-length lists, such as a
Hugging Face `Sequence`, gives an array), or one column of strings, which is text (tokenized by the `records`
view; the text views read it too). Labels are integer class ids or names (sorted names become ids 0, 1, ...).
Without a label column, a table with a text column is a text corpus for the text views. Rows are read a batch
at a time from the Arrow table (memory-mapped for Arrow files), so Grain shards and shuffles them like any
source. The held-out split is `data.eval_files`, else a fixed `data.eval_fraction` of the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv
import pyarrow.parquet
import tensorflow_datasets as tfds

from jaxmodels.data.user.dataset import Subset, UserDataset, class_ids, held_out, match_files
from jaxmodels.errors import DataError
from jaxmodels.files import first_line

SUFFIXES = (".csv", ".tsv", ".parquet", ".arrow", ".feather")


def open(data: ml_collections.ConfigDict, name: str = "table") -> UserDataset:
    """The rows of `data.files` (and `data.eval_files`)."""
    files = {"train": match_files(data.files)}
    if data.eval_files:
        files["test"] = match_files(data.eval_files, "data.eval_files")
    tables = {split: read_tables(paths) for split, paths in files.items()}
    return table_dataset(name, tables, data, [path for paths in files.values() for path in paths])


def read_tables(paths: list[Path]) -> pa.Table:
    """The rows of every file, in file order, as one table; files must have the same columns."""
    tables = [read_table(path) for path in paths]
    try:
        return pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise DataError(
            f"the files {paths[0]} ... {paths[-1]} do not have the same columns ({first_line(error)}); give files "
            "of one table"
        ) from None


def read_table(path: Path) -> pa.Table:
    """One CSV (comma- or, for .tsv, tab-separated, with a header row), Parquet or Arrow (file or stream) table."""
    try:
        if path.suffix in (".csv", ".tsv"):
            delimiter = "\t" if path.suffix == ".tsv" else ","
            return pyarrow.csv.read_csv(path, parse_options=pyarrow.csv.ParseOptions(delimiter=delimiter))
        if path.suffix == ".parquet":
            return pyarrow.parquet.read_table(path, memory_map=True)
        if path.suffix in (".arrow", ".feather"):
            source = pa.memory_map(str(path))
            try:
                return pa.ipc.open_file(source).read_all()
            except pa.ArrowInvalid:  # Hugging Face `datasets` writes the Arrow stream format
                source.seek(0)
                return pa.ipc.open_stream(source).read_all()
    except (OSError, pa.ArrowInvalid) as error:
        raise DataError(f"{path} cannot be read as a table ({first_line(error)}); check the file") from None
    raise DataError(f"{path} is not a table file; data.name=table reads {', '.join(SUFFIXES)} files")


def table_dataset(
    name: str,
    tables: dict[str, pa.Table],
    data: ml_collections.ConfigDict,
    files: list[Path],
    label_names: list[str] | None = None,
) -> UserDataset:
    """The dataset of tables by split ('train', and 'test' if held out already), read as `data`'s keys say.

    `label_names` are the class names a Hugging Face ClassLabel column stores (its values are their ids).
    """
    train = tables["train"]
    where = str(files[0]) if len(files) == 1 else f"{files[0]} (and {len(files) - 1} more files)"
    if train.num_rows == 0:
        raise DataError(f"{where} has no rows; give a table with data")
    text_column = data.text_key if not data.input_keys and data.text_key in train.column_names else ""
    if data.label_key not in train.column_names:
        if text_column:  # a text corpus
            records = {split: TableRecords(table, text=data.text_key) for split, table in tables.items()}
            return _dataset(name, _held_out(records, data), {"text": tfds.features.Text()}, None, files)
        raise DataError(
            f"{where} has no column {data.label_key!r} (data.label_key); its columns are "
            f"{', '.join(train.column_names)}: set --config.data.label_key to the label column (or, for a text "
            "corpus, --config.data.text_key to the text column)"
        )
    inputs = [text_column] if text_column else _input_columns(train, data, where)
    for split, table in tables.items():
        missing = [column for column in (*inputs, data.label_key) if column not in table.column_names]
        if missing:
            raise DataError(f"the {split} files have no column {missing[0]!r}; give them the train files' columns")
        for column in (*inputs, data.label_key):
            if table.column(column).null_count:
                raise DataError(f"{where}: column {column!r} has {table.column(column).null_count} missing values")
    labels = {split: table.column(data.label_key).to_numpy(zero_copy_only=False) for split, table in tables.items()}
    if label_names is not None:
        _check_ids(labels, len(label_names), where)
        ids, names = {s: np.asarray(v, np.int32) for s, v in labels.items()}, label_names
    else:
        ids, names = class_ids(labels, f"{where}, column {data.label_key!r}")
    if _is_text(train, inputs):
        records = {s: TableRecords(t, text=inputs[0], labels=ids[s]) for s, t in tables.items()}
        features = {"text": tfds.features.Text()}
    else:
        shape = _row_shape(train, inputs, where)
        records = {s: TableRecords(t, numbers=inputs, labels=ids[s], shape=shape) for s, t in tables.items()}
        features = {"inputs": tfds.features.Tensor(shape=shape, dtype=np.float32)}
    features["label"] = tfds.features.ClassLabel(names=names)
    return _dataset(name, _held_out(records, data), features, (next(iter(features)), "label"), files)


def _dataset(name, records, features, supervised_keys, files) -> UserDataset:
    return UserDataset(
        name=name,
        records=records,
        features=features,
        supervised_keys=supervised_keys,
        files=files,
        split_bytes={split: _nbytes(r) for split, r in records.items()},
    )


def _nbytes(records: TableRecords | Subset) -> int:
    """The size of a split's rows in memory (a held-out part of a table: its share of the table's)."""
    if isinstance(records, Subset):
        return records.records.nbytes * len(records) // max(len(records.records), 1)
    return records.nbytes


def _held_out(records: dict[str, TableRecords], data: ml_collections.ConfigDict) -> dict[str, Sequence]:
    """The splits as given, or 'train' split into train and a held-out 'test' when no test split was given."""
    if "test" in records:
        return records
    train, test = held_out(len(records["train"]), data.eval_fraction)
    return {"train": Subset(records["train"], train), "test": Subset(records["train"], test)}


def _input_columns(table: pa.Table, data: ml_collections.ConfigDict, where: str) -> list[str]:
    named = [column.strip() for column in data.input_keys.split(",") if column.strip()]
    columns = named or [column for column in table.column_names if column != data.label_key]
    missing = [column for column in columns if column not in table.column_names]
    if missing:
        raise DataError(
            f"{where} has no column {missing[0]!r} (data.input_keys); its columns are {', '.join(table.column_names)}"
        )
    if not columns:
        raise DataError(f"{where} has only the label column {data.label_key!r}; add feature columns")
    for column in columns:
        kind = table.schema.field(column).type
        if not (_is_numeric(kind) or _is_string(kind)):
            raise DataError(
                f"{where}: column {column!r} holds {kind}, neither numbers nor text; leave it out of "
                "--config.data.input_keys"
            )
    return columns


def _is_numeric(kind: pa.DataType) -> bool:
    while pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        kind = kind.value_type
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _is_text(table: pa.Table, columns: list[str]) -> bool:
    """One string column is text; strings among several columns are a mistake the error names."""
    texts = [column for column in columns if _is_string(table.schema.field(column).type)]
    if texts and len(columns) > 1:
        raise DataError(
            f"column {texts[0]!r} holds text among other feature columns; give numbers only, or one text column "
            f"with --config.data.input_keys={texts[0]}"
        )
    return bool(texts)


def _row_shape(table: pa.Table, columns: list[str], where: str) -> tuple[int, ...]:
    """The shape of one example's inputs: (number of columns,) for scalars, a list column's shape for one list."""
    if len(columns) > 1 or not _is_list(table.schema.field(columns[0]).type):
        if any(_is_list(table.schema.field(c).type) for c in columns):
            raise DataError(f"{where}: a list column among several feature columns; give one list column alone")
        return (len(columns),)
    column = table.column(columns[0])
    shape = np.asarray(column[0].as_py()).shape
    flat = column.combine_chunks()
    while _is_list(flat.type):
        flat = flat.flatten()
    if len(flat) != table.num_rows * int(np.prod(shape)):
        raise DataError(f"{where}: the lists of column {columns[0]!r} differ in length; give every row {shape}")
    return shape


def _is_list(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def _check_ids(labels: dict[str, np.ndarray], num_classes: int, where: str) -> None:
    for split, values in labels.items():
        if len(values) and (values.min() < 0 or values.max() >= num_classes):
            raise DataError(
                f"{where}: a {split} label is out of range (its ClassLabel has {num_classes} names, ids 0.."
                f"{num_classes - 1})"
            )


class TableRecords(Sequence):
    """The rows of an Arrow table as records: {'inputs': float32 array, 'label'}, {'text', 'label'} or {'text'}.

    A batch of rows is taken from the table at once (`__getitems__`) and converted to numpy then.
    """

    def __init__(
        self,
        table: pa.Table,
        *,
        text: str = "",
        numbers: Sequence[str] = (),
        labels: np.ndarray | None = None,
        shape: tuple[int, ...] = (),
    ):
        self.table = table.select([text] if text else list(numbers))
        self.text, self.labels, self.shape = text, labels, shape

    @property
    def nbytes(self) -> int:
        return self.table.nbytes

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        order = np.asarray(indices, np.int64)
        rows = self.table.take(pa.array(order))
        if self.text:
            values = [{"text": text} for text in rows.column(0).to_pylist()]
        else:
            values = [{"inputs": row} for row in self._numbers(rows)]
        if self.labels is not None:
            for value, label in zip(values, self.labels[order], strict=True):
                value["label"] = label
        return values

    def _numbers(self, rows: pa.Table) -> np.ndarray:
        """(rows, *shape) float32: the scalar columns side by side, or one list column's lists as arrays."""
        if rows.num_columns == 1 and _is_list(rows.schema.field(0).type):
            flat = rows.column(0).combine_chunks()
            while _is_list(flat.type):
                flat = flat.flatten()
            return flat.to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(rows), *self.shape)
        columns = [pc.cast(rows.column(i), pa.float32()).to_numpy() for i in range(rows.num_columns)]
        return np.stack(columns, axis=1)
