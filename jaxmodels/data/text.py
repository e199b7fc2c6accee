"""Views of text datasets for models: one corpus string split by position, and tokenized records.

Language modelling (nanoGPT style): the records of a split are concatenated into one text, which
is tokenized once and split by position, the first 90% for training and the rest for validation:

    corpus = text.corpus_text(sources.open_split(sources.open_dataset("shakespeare"), "train"))
    train_ids, val_ids = text.split_by_position(tokenizer.encode(corpus))

Classification of passages (e.g. `shakespeare/passages`, labelled by genre): `TextClassificationFeatures`
turns each record into fixed-length ids, a padding mask and the label, ready for batching.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from jaxmodels.data.tokenizers import Tokenizer
from jaxmodels.data.transforms import pad_to_length

TRAIN_FRACTION = 0.9  # nanoGPT's shakespeare_char split
Sliceable = TypeVar("Sliceable", str, np.ndarray)


def as_text(value: bytes | str) -> str:
    """A TFDS Text feature's value (bytes when read without TensorFlow) as str."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def corpus_text(records: Sequence[dict[str, Any]], key: str = "text", separator: str = "\n\n") -> str:
    """The `key` texts of all records in stored order, joined by `separator`."""
    items = records.__getitems__(list(range(len(records)))) if hasattr(records, "__getitems__") else list(records)
    return separator.join(as_text(record[key]) for record in items)


def split_by_position(sequence: Sliceable, train_fraction: float = TRAIN_FRACTION) -> tuple[Sliceable, Sliceable]:
    """(first `train_fraction` of the sequence, the rest): a text or token array split where it stands."""
    cut = int(len(sequence) * train_fraction)
    return sequence[:cut], sequence[cut:]


@dataclasses.dataclass(frozen=True)
class TextClassificationFeatures:
    """A text record -> `inputs` (its ids framed by the tokenizer's special tokens: <cls> + ids here, BERT's
    [CLS] ids [SEP]; the text cut so that the frame fits in `length`, then padded), `token_mask` (real tokens)
    and `label`."""

    tokenizer: Tokenizer
    length: int
    input_key: str = "text"
    label_key: str = "genre"

    def __call__(self, record: dict[str, Any]) -> dict[str, np.ndarray]:
        ids = self.tokenizer.encode(as_text(record[self.input_key]))[
            : max(self.length - self.tokenizer.num_frame_tokens, 0)
        ]
        padded = pad_to_length(self.tokenizer.with_special_tokens(ids), self.length, self.tokenizer.pad_id)
        return {
            "inputs": padded["tokens"],
            "token_mask": padded["segment_ids"] > 0,
            "label": np.asarray(record[self.label_key], np.int32),
        }
