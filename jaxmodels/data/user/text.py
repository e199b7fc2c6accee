"""Text files: `data.name=text`, one document per file or per line (`data.documents`), UTF-8 checked up front.

    --config.data.name=text --config.data.files='corpus/*.txt' [--config.data.eval_files='corpus/val*.txt']

Every record is {'text': str}, read from disk when asked for: a file's whole text, or one non-empty line
(without its line break; the byte span of every line is indexed once, so a large file is never held in memory
for random access). The text views (`lm_windows`, `mlm_windows`, `word2vec`) join the train documents with a
blank line between them; the validation text is the held-out files (`data.eval_files`, the split
`data.eval_split`), else the tail of the train text (`data.eval_fraction`).
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Sequence
from pathlib import Path

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from jaxmodels.data.user.dataset import UserDataset, match_files
from jaxmodels.errors import DataError

CHUNK_BYTES = 16 * 2**20  # files are scanned in pieces of this size: memory does not grow with the file


def open(data: ml_collections.ConfigDict) -> UserDataset:
    """The text files of `data.files` (train) and `data.eval_files` (held out, if given)."""
    held_out = match_files(data.eval_files, "data.eval_files") if data.eval_files else []
    held_out_paths = {path.resolve() for path in held_out}
    train = [path for path in match_files(data.files) if path.resolve() not in held_out_paths]
    if not train:
        raise DataError("every file of data.files is also in data.eval_files; leave some files for training")
    records_of = TextFiles if data.documents == "file" else TextLines
    records = {"train": records_of(train)}
    if held_out:
        records[data.eval_split] = records_of(held_out)
    return UserDataset(
        name="text",
        records=records,
        features={"text": tfds.features.Text()},
        files=[*train, *held_out],
        split_bytes={split: sum(path.stat().st_size for path in r.files) for split, r in records.items()},
    )


class TextFiles(Sequence):
    """One record per file: {'text': its whole text}."""

    def __init__(self, files: list[Path]):
        for path in files:
            scan(path, lines=False)
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, str]:
        return {"text": self.files[index].read_text(encoding="utf-8")}


class TextLines(Sequence):
    """One record per non-empty line of the files: {'text': the line, without its line break}."""

    def __init__(self, files: list[Path]):
        spans = [scan(path, lines=True) for path in files]
        self.files = files
        self.file_index = np.concatenate([np.full(len(s), i, np.int32) for i, s in enumerate(spans)])
        self.spans = np.concatenate(spans)  # (lines, 2): byte start and end of each line

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, index: int) -> dict[str, str]:
        start, end = (int(x) for x in self.spans[index])
        with self.files[self.file_index[index]].open("rb") as file:
            return {"text": os.pread(file.fileno(), end - start, start).decode("utf-8")}

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, str]]:
        """The lines at `indices`, each file opened once."""
        handles: dict[int, int] = {}
        try:
            records = []
            for index in indices:
                number = int(self.file_index[index])
                if number not in handles:
                    handles[number] = os.open(self.files[number], os.O_RDONLY)
                start, end = (int(x) for x in self.spans[index])
                records.append({"text": os.pread(handles[number], end - start, start).decode("utf-8")})
            return records
        finally:
            for handle in handles.values():
                os.close(handle)


def scan(path: Path, lines: bool) -> np.ndarray:
    """Checks that `path` is non-empty UTF-8 text; with `lines`, the (start, end) byte spans of its non-empty
    lines (line breaks, '\\n' or '\\r\\n', excluded). A file that fails is a DataError naming it (and the byte)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    starts, ends, offset, last_byte = [np.zeros(1, np.int64)], [], 0, 0
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            _decode(decoder, chunk, offset, path, final=False)
            if lines:
                data = np.frombuffer(chunk, np.uint8)
                breaks = np.flatnonzero(data == ord("\n"))
                before = np.where(breaks > 0, data[np.maximum(breaks - 1, 0)], last_byte)
                ends.append(breaks + offset - (before == ord("\r")))  # a '\r\n' line ends before its '\r'
                starts.append(breaks + offset + 1)
                last_byte = int(data[-1])
            offset += len(chunk)
    _decode(decoder, b"", offset, path, final=True)
    if offset == 0:
        raise DataError(f"{path} is empty; remove it from data.files or give it some text")
    if not lines:
        return np.zeros((0, 2), np.int64)
    spans = np.stack([np.concatenate(starts), np.concatenate([*ends, [offset]])], axis=1)
    spans = spans[spans[:, 1] > spans[:, 0]]  # empty lines are no documents
    if not len(spans):
        raise DataError(f"{path} has no line of text (data.documents='line'); remove it from data.files")
    return spans


def _decode(decoder: codecs.IncrementalDecoder, chunk: bytes, offset: int, path: Path, final: bool) -> None:
    """Feeds `chunk` (starting at byte `offset` of the file) to `decoder`; bytes that are not UTF-8 are a
    DataError naming the file and the byte offset."""
    pending = len(decoder.getstate()[0])  # bytes of an unfinished character carried over from the last chunk
    try:
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError as error:
        where = offset - pending + error.start
        raise DataError(
            f"{path} is not UTF-8 text: byte {where} (0x{error.object[error.start]:02x}) cannot be decoded; "
            "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8) or remove it from data.files"
        ) from None
