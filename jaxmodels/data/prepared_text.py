"""Text prepared once as token ids in ArrayRecord shards, read back window by window at any corpus size.

`jaxmodels prepare --config.data.name=text ...` trains the tokenizer (`data.tokenizer`) on the train text and
writes the token ids of the train documents, joined by a blank line as the text views join them, as one stream
cut into records of `CHUNK` ids ('train'; 'test' for `data.eval_files`), beside the tokenizer file and
`text_tokens.json` ({tokenizer, train_tokens, chunk}). Without eval files the validation text is the stream's
tail past `train_tokens` (`data.eval_fraction`), as it is for the text files themselves. The documents are read
three times (their length, the tokenizer, the ids), one at a time: memory holds the largest document, never the
corpus.

Read back (`data.name=tfds_dir`), a `TokenStream` stands for the ids: it has a length and gives any slice by
reading the one or two records under it, so the LM and MLM views draw random windows from a corpus larger than
memory, in Grain worker processes too. With the char tokenizer the ids and the batches are those of the text
files; the word, subword and BPE tokenizers learn and encode document by document, so where a document ends or
starts with whitespace, the run it forms with the blank line between documents may be cut differently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from jaxmodels.data import pipeline, tokenizers
from jaxmodels.errors import ConfigError

TOKENS_FILE = "text_tokens.json"
CHUNK = 16384  # ids per record: a window of block_size + 1 ids reads one record, or two where it straddles
SEPARATOR = "\n\n"  # between documents, as `text.corpus_text` joins them


def is_text(features: dict[str, Any]) -> bool:
    """Whether a source's records are text documents (`data.name=text`), which are prepared as token ids."""
    return list(features) == ["text"] and isinstance(features["text"], tfds.features.Text)


# A record holds its ids as raw bytes: TFDS would store an integer tensor as a list of varints, whose
# serialisation cost 2 ms per record of 16,384 ids against 0.07 ms for the bytes.
TOKEN_FEATURES = tfds.features.FeaturesDict({"tokens": tfds.features.Tensor(shape=(), dtype=np.object_)})


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 where every id fits (half the bytes of int32), else int32."""
    return np.dtype(np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.int32)


def train_tokenizer(
    records: Sequence[dict[str, Any]], data: ml_collections.ConfigDict, has_eval_files: bool, advance: Callable
) -> tokenizers.Tokenizer:
    """The `data.tokenizer` trained on the train text: all train documents with eval files, else the text up to
    `1 - data.eval_fraction` of its characters (the text files' split, counted in a first pass)."""
    limit = None
    if not has_eval_files:
        lengths = [len(_text(record)) for record in _each(records, advance)]
        total = sum(lengths) + len(SEPARATOR) * (len(lengths) - 1)
        limit = int(total * (1 - data.eval_fraction))
    trainers = {
        "char": lambda texts: tokenizers.CharTokenizer.train(texts),
        "word": lambda texts: tokenizers.WordTokenizer.train(texts, max_vocab_size=data.vocab_size),
        "subword": lambda texts: tokenizers.SubwordTokenizer.train(texts, vocab_size=data.vocab_size),
        "bpe": lambda texts: tokenizers.BytePairTokenizer.train(texts, vocab_size=data.vocab_size),
    }
    if data.tokenizer not in trainers:
        raise ConfigError(f"config key 'data.tokenizer' is {data.tokenizer!r}; choose one of {', '.join(trainers)}")
    return trainers[data.tokenizer](_pieces(_each(records, advance), limit))


def token_chunks(
    records: Sequence[dict[str, Any]], tokenizer: tokenizers.Tokenizer, advance: Callable
) -> Iterator[dict[str, bytes]]:
    """The ids of the documents joined by `SEPARATOR`, as records {'tokens': the bytes of CHUNK ids} of
    `token_dtype`; the last may be shorter."""
    dtype = token_dtype(tokenizer.vocab_size)
    rest = np.zeros(0, dtype)  # the ids after the last full record
    for piece in _pieces(_each(records, advance), None):
        ids = np.concatenate([rest, tokenizer.encode(piece).astype(dtype)])
        full = len(ids) // CHUNK * CHUNK
        for start in range(0, full, CHUNK):
            yield {"tokens": ids[start : start + CHUNK].tobytes()}
        rest = ids[full:]
    if len(rest):
        yield {"tokens": rest.tobytes()}


def write_metadata(directory: Path, tokenizer: tokenizers.Tokenizer, train_tokens: int) -> None:
    tokenizer.save(directory / f"tokenizer_{tokenizer.kind}")
    info = {"tokenizer": tokenizer.kind, "train_tokens": train_tokens, "chunk": CHUNK,
            "dtype": token_dtype(tokenizer.vocab_size).name}  # fmt: skip
    (directory / TOKENS_FILE).write_text(json.dumps(info))


def open_tokens(
    directory: Path, splits: dict[str, Sequence[dict[str, Any]]], config: ml_collections.ConfigDict
) -> tuple[TokenStream, TokenStream, tokenizers.Tokenizer] | None:
    """(train ids, validation ids, tokenizer) of text prepared in `directory`; None if it holds no prepared text."""
    if not (directory / TOKENS_FILE).is_file():
        return None
    info = json.loads((directory / TOKENS_FILE).read_text())
    if info["tokenizer"] != config.data.tokenizer:
        raise ConfigError(
            f"the text in {directory} was prepared with the {info['tokenizer']!r} tokenizer, but data.tokenizer is "
            f"{config.data.tokenizer!r}: set --config.data.tokenizer={info['tokenizer']}, or prepare it again"
        )
    tokenizer = tokenizers.load_tokenizer(directory / f"tokenizer_{info['tokenizer']}")
    stream = TokenStream(splits["train"], info["chunk"], np.dtype(info["dtype"]))
    train_tokens = info["train_tokens"]
    if config.data.eval_split in splits and config.data.eval_split != "train":  # held-out files
        return stream, TokenStream(splits[config.data.eval_split], info["chunk"], stream.dtype), tokenizer
    return stream.window(0, train_tokens), stream.window(train_tokens, len(stream)), tokenizer


class TokenStream:
    """Ids [start, stop) of a stream stored as records {'tokens': the bytes of `chunk` ids of `dtype`}; slicing
    reads only the records under the slice, so it stands for an array of ids too large for memory."""

    def __init__(
        self, records: Sequence[dict[str, Any]], chunk: int, dtype: np.dtype, start: int = 0, stop: int | None = None
    ):
        self.records, self.chunk, self.dtype = records, chunk, dtype
        if stop is None:  # every record is full but the last
            last = len(records[len(records) - 1]["tokens"]) // dtype.itemsize if len(records) else 0
            stop = max(len(records) - 1, 0) * chunk + last
        self.start, self.stop = start, stop

    def window(self, start: int, stop: int) -> TokenStream:
        """The ids [start, stop) of this stream, as a stream."""
        return TokenStream(self.records, self.chunk, self.dtype, self.start + start, self.start + stop)

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, key: slice | int) -> np.ndarray:
        if isinstance(key, int | np.integer):
            return self[key : key + 1][0]
        start, stop, step = key.indices(len(self))
        if step != 1 or stop <= start:
            return np.asarray(self)[key] if step != 1 else np.zeros(0, np.int32)
        first, last = (self.start + start) // self.chunk, (self.start + stop - 1) // self.chunk
        records = pipeline.read_records(self.records, range(first, last + 1))
        ids = np.concatenate([np.frombuffer(record["tokens"], self.dtype) for record in records])
        offset = self.start + start - first * self.chunk
        return ids[offset : offset + stop - start].astype(np.int32)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """All the ids in memory (word2vec builds whole epochs from them)."""
        ids = self[0 : len(self)]
        return ids if dtype is None else ids.astype(dtype)


def _text(record: dict[str, Any]) -> str:
    value = record["text"]
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _each(records: Sequence[dict[str, Any]], advance: Callable) -> Iterator[dict[str, Any]]:
    for index in range(len(records)):
        yield records[index]
        advance(1)


def _pieces(records: Iterable[dict[str, Any]], limit: int | None) -> Iterator[str]:
    """Each document followed by `SEPARATOR` (none after the last), the text cut after `limit` characters."""
    emitted, previous = 0, None
    for record in records:
        if previous is not None:
            piece = previous + SEPARATOR
            if limit is not None and emitted + len(piece) >= limit:
                yield piece[: limit - emitted]
                return
            emitted += len(piece)
            yield piece
        previous = _text(record)
    if previous is not None:
        yield previous if limit is None else previous[: max(limit - emitted, 0)]
