"""Tokenizers: text <-> int32 ids, by character, by word, by SentencePiece subword, or by byte-level BPE.

All share five special tokens with fixed ids, so models, masking and padding code can
rely on them whatever the tokenizer:

    0 <pad>   padding; `decode` drops it
    1 <unk>   a character or word not in the vocabulary
    2 <mask>  the masked-LM corruption token
    3 <cls>   start of a sequence / its classification summary
    4 <sep>   separator between segments

Ordinary tokens have ids NUM_SPECIAL (5) and up. `decode` writes the other special tokens as their
names ("<unk>", ...). Special tokens are never produced by `encode` from text: a literal "<mask>"
in text is encoded as ordinary characters.

Code that needs a special token asks the tokenizer (`special_ids`, `pad_id`, `mask_id`, `reserved_ids`,
`with_special_tokens`) rather than assuming these ids, so a released vocabulary with its own numbering
(`jaxmodels.data.pretrained_tokenizers`: BERT's [MASK] is 103) serves masking, padding and classification too.

Each tokenizer is trained offline on a corpus and saved to one file (JSON for char, word and bpe, the
SentencePiece model for subword), so an experiment keeps its tokenizer in its workdir and reloads
the identical vocabulary (`load_tokenizer`).
"""

from __future__ import annotations

import abc
import collections
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import sentencepiece
import tokenizers as hf_tokenizers

from jaxmodels.errors import DataError
from jaxmodels.files import first_line

PAD_ID, UNK_ID, MASK_ID, CLS_ID, SEP_ID = range(5)
SPECIAL_TOKENS = ("<pad>", "<unk>", "<mask>", "<cls>", "<sep>")
SPECIAL_ROLES = ("pad", "unk", "mask", "cls", "sep")
NUM_SPECIAL = len(SPECIAL_TOKENS)

PathLike = str | os.PathLike


class Tokenizer(abc.ABC):
    """Maps text to int32 ids and back; ids below NUM_SPECIAL are the special tokens."""

    kind: ClassVar[str]

    @property
    @abc.abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, special tokens included: every id is in [0, vocab_size)."""

    @property
    def special_ids(self) -> dict[str, int]:
        """The special tokens' ids by role: 'pad', 'unk', 'mask', 'cls', 'sep' (0..4 here); a released
        vocabulary has its own ids, may lack some roles and may add 'bos' and 'eos'."""
        return dict(zip(SPECIAL_ROLES, range(NUM_SPECIAL), strict=True))

    @property
    def reserved_ids(self) -> np.ndarray:
        """Every special id: masked-LM corruption never selects one nor draws one as a random replacement."""
        return np.arange(NUM_SPECIAL)

    @property
    def pad_id(self) -> int:
        """The id padding is filled with (always masked out where it is read): the pad token, or where there is
        none the end-of-text token, as Hugging Face pads GPT-2's batches."""
        ids = self.special_ids
        return ids.get("pad", ids.get("eos", 0))

    @property
    def mask_id(self) -> int | None:
        """The masked-LM corruption token, or None when the vocabulary has none (GPT-2)."""
        return self.special_ids.get("mask")

    @property
    def special_frame(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids before, ids after) one sequence as a model reads it: here (<cls>,) and (); BERT's [CLS] and [SEP]."""
        return np.array([CLS_ID], np.int32), np.zeros(0, np.int32)

    def with_special_tokens(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """`ids` framed by `special_frame`, as int32."""
        before, after = self.special_frame
        return np.concatenate([before, np.asarray(ids, np.int32), after]).astype(np.int32)

    @property
    def num_frame_tokens(self) -> int:
        """How many ids `with_special_tokens` adds."""
        return sum(len(part) for part in self.special_frame)

    @abc.abstractmethod
    def id_to_piece(self, token_id: int) -> str:
        """The vocabulary entry of `token_id` (a special token's name for ids below NUM_SPECIAL)."""

    @abc.abstractmethod
    def encode(self, text: str) -> np.ndarray:
        """The int32 ids of `text` (no special tokens are added)."""

    @abc.abstractmethod
    def save(self, path: PathLike) -> None:
        """Writes the tokenizer to the file `path`; `load_tokenizer(path)` reads it back."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path: PathLike) -> Tokenizer:
        """Reads a tokenizer written by `save`."""

    @abc.abstractmethod
    def _decode_ordinary(self, ids: list[int]) -> str:
        """The text of a run of ordinary (non-special) ids."""

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The text of `ids`: padding dropped, other special tokens written as their names."""
        ids = np.asarray(ids, np.int64).ravel()
        runs = np.split(ids, np.flatnonzero(np.diff(ids < NUM_SPECIAL)) + 1)  # alternate ordinary / special
        parts = []
        for run in (run.tolist() for run in runs if run.size):
            if run[0] < NUM_SPECIAL:
                parts.extend(SPECIAL_TOKENS[i] for i in run if i != PAD_ID)
            else:
                parts.append(self._decode_ordinary(run))
        return "".join(parts)


class _PieceTokenizer(Tokenizer):
    """A tokenizer with an explicit list of pieces (characters or words); piece i has id NUM_SPECIAL + i."""

    def __init__(self, pieces: Sequence[str]):
        self.pieces = tuple(pieces)
        self._vocabulary = (*SPECIAL_TOKENS, *self.pieces)
        self._ids = {piece: NUM_SPECIAL + index for index, piece in enumerate(self.pieces)}

    @property
    def vocab_size(self) -> int:
        return len(self._vocabulary)

    def id_to_piece(self, token_id: int) -> str:
        return self._vocabulary[token_id]

    def _decode_ordinary(self, ids: list[int]) -> str:
        return "".join(self._vocabulary[i] for i in ids)

    def save(self, path: PathLike) -> None:
        Path(path).write_text(json.dumps({"kind": self.kind, "pieces": self.pieces}, ensure_ascii=False))

    @classmethod
    def load(cls, path: PathLike) -> _PieceTokenizer:
        stored = json.loads(Path(path).read_text())
        if stored.get("kind") != cls.kind:
            raise ValueError(f"{path} holds a {stored.get('kind')!r} tokenizer, not a {cls.kind!r} one")
        pieces = stored.get("pieces")
        if not isinstance(pieces, list) or not all(cls._is_piece(piece) for piece in pieces):
            raise ValueError(f"{path} holds no list of {cls.kind} pieces")
        return cls(pieces)

    @staticmethod
    def _is_piece(piece: object) -> bool:
        """Whether `piece` can be a vocabulary entry of this kind."""
        return isinstance(piece, str) and piece != ""


class CharTokenizer(_PieceTokenizer):
    """One id per Unicode character; characters not seen in training map to <unk>.

    Round trip: `decode(encode(text)) == text` for text made of the training characters.
    """

    kind = "char"

    @staticmethod
    def _is_piece(piece: object) -> bool:
        return isinstance(piece, str) and len(piece) == 1

    def __init__(self, pieces: Sequence[str]):
        super().__init__(pieces)
        codepoints = np.array([ord(c) for c in self.pieces], np.int64)
        self._table = np.full(int(codepoints.max(initial=0)) + 1, UNK_ID, np.int32)  # codepoint -> id
        self._table[codepoints] = NUM_SPECIAL + np.arange(len(codepoints), dtype=np.int32)

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        """The sorted set of characters of `texts`."""
        return cls(sorted(set().union(*map(set, texts))))

    def encode(self, text: str) -> np.ndarray:
        codepoints = np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.int64)
        known = codepoints < len(self._table)
        return np.where(known, self._table[np.where(known, codepoints, 0)], UNK_ID).astype(np.int32)


_WORD_PIECES = re.compile(r"\w+(?:'\w+)*|\s+|[^\w\s]")  # words (with inner apostrophes), whitespace runs, symbols


class WordTokenizer(_PieceTokenizer):
    """One id per word, whitespace run or punctuation mark, over a frequency-capped vocabulary.

    Text is cut into words (letters/digits with inner apostrophes: "reliev'd"), runs of whitespace
    and single other characters; every piece is a token, so decoding joins them back and the round
    trip is exact except that out-of-vocabulary pieces come back as "<unk>". Case is kept.
    """

    kind = "word"

    @staticmethod
    def split(text: str) -> list[str]:
        """The pieces of `text`, which concatenate back to it."""
        return _WORD_PIECES.findall(text)

    @classmethod
    def train(cls, texts: Iterable[str], max_vocab_size: int = 10_000, min_count: int = 1) -> WordTokenizer:
        """Keeps the most frequent pieces (ties: alphabetical) seen at least `min_count` times.

        `max_vocab_size` caps `vocab_size`, the special tokens included.
        """
        counts = collections.Counter(piece for text in texts for piece in cls.split(text))
        ranked = sorted((item for item in counts.items() if item[1] >= min_count), key=lambda kv: (-kv[1], kv[0]))
        return cls([piece for piece, _ in ranked[: max(0, max_vocab_size - NUM_SPECIAL)]])

    def encode(self, text: str) -> np.ndarray:
        return np.array([self._ids.get(piece, UNK_ID) for piece in self.split(text)], np.int32)


class SubwordTokenizer(Tokenizer):
    """SentencePiece (unigram or BPE) subwords with byte fallback: every text round-trips exactly.

    Trained with identity normalisation and no dummy prefix or whitespace clean-up, so spaces and
    newlines are kept as they are; characters unseen in training are encoded as UTF-8 byte pieces.
    """

    kind = "subword"

    def __init__(self, model_proto: bytes):
        self.model_proto = model_proto
        self._processor = sentencepiece.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(
        cls, texts: Iterable[str], vocab_size: int = 8000, model_type: str = "unigram", max_chunk_chars: int = 4000
    ) -> SubwordTokenizer:
        """Trains on `texts`, fed to SentencePiece as chunks of whole lines, newlines included.

        `vocab_size` is an upper bound (the corpus may support fewer pieces); it must leave room
        for the 5 special tokens and 256 byte pieces.
        """
        model = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=_line_chunks(texts, max_chunk_chars),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=-1,
            eos_id=-1,
            control_symbols=list(SPECIAL_TOKENS[MASK_ID:]),  # take ids 2, 3, 4 in this order
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            add_dummy_prefix=False,
            allow_whitespace_only_pieces=True,
            byte_fallback=True,
            character_coverage=1.0,
            hard_vocab_limit=False,
            max_sentence_length=4 * max_chunk_chars,  # bytes; UTF-8 needs at most 4 per character
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
        return cls(model.getvalue())

    @property
    def vocab_size(self) -> int:
        return self._processor.get_piece_size()

    def id_to_piece(self, token_id: int) -> str:
        return self._processor.id_to_piece(token_id)

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self._processor.encode(text), np.int32)

    def _decode_ordinary(self, ids: list[int]) -> str:
        return self._processor.decode(ids)

    def save(self, path: PathLike) -> None:
        Path(path).write_bytes(self.model_proto)

    @classmethod
    def load(cls, path: PathLike) -> SubwordTokenizer:
        return cls(Path(path).read_bytes())


def _line_chunks(texts: Iterable[str], max_chars: int) -> Iterator[str]:
    """Consecutive whole lines (newlines kept) in chunks of at most `max_chars` (longer lines are cut)."""
    for text in texts:
        chunk: list[str] = []
        size = 0
        for line in text.splitlines(keepends=True):
            if chunk and size + len(line) > max_chars:
                yield "".join(chunk)
                chunk, size = [], 0
            chunk.append(line[:max_chars])
            size += len(chunk[-1])
        if chunk:
            yield "".join(chunk)


class BytePairTokenizer(Tokenizer):
    """Byte-level BPE (GPT-2's scheme), trained with Hugging Face's `tokenizers`: every text round-trips exactly.

    Text is cut into words and whitespace runs by GPT-2's pattern, each read as UTF-8 bytes, and merged into
    learnt pieces; the 256 byte pieces are always in the vocabulary, so no text needs <unk>. Saved as JSON:
    {"kind": "bpe", "tokenizer": <the tokenizers library's own JSON>}.
    """

    kind = "bpe"

    def __init__(self, tokenizer: hf_tokenizers.Tokenizer):
        self._tokenizer = tokenizer
        self._tokenizer.encode_special_tokens = True  # a literal "<mask>" in text is ordinary bytes

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000) -> BytePairTokenizer:
        """Learns up to `vocab_size` ids (the special tokens and 256 bytes included) from `texts`."""
        if vocab_size < NUM_SPECIAL + 256:
            raise DataError(
                f"data.vocab_size={vocab_size} is too small for a byte-level BPE tokenizer, which needs "
                f"{NUM_SPECIAL} special tokens and 256 bytes; set data.vocab_size to at least {NUM_SPECIAL + 256}"
            )
        tokenizer = hf_tokenizers.Tokenizer(hf_tokenizers.models.BPE())
        tokenizer.pre_tokenizer = hf_tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = hf_tokenizers.decoders.ByteLevel()
        trainer = hf_tokenizers.trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),  # ids 0..4 in this order
            initial_alphabet=hf_tokenizers.pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer)
        return cls(tokenizer)

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def id_to_piece(self, token_id: int) -> str:
        return self._tokenizer.id_to_token(token_id)

    def encode(self, text: str) -> np.ndarray:
        """The ids of `text`, encoded in pieces cut where no pre-token can straddle the cut (after a line break
        between two non-space characters): the ids of the whole text as one string, computed by the library's
        threads, a piece each."""
        pieces = list(_bpe_pieces(text))
        encoded = self._tokenizer.encode_batch_fast(pieces, add_special_tokens=False)  # no character offsets
        return np.asarray([i for piece in encoded for i in piece.ids], np.int32)

    def _decode_ordinary(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=False)

    def save(self, path: PathLike) -> None:
        stored = {"kind": self.kind, "tokenizer": json.loads(self._tokenizer.to_str())}
        Path(path).write_text(json.dumps(stored, ensure_ascii=False))

    @classmethod
    def load(cls, path: PathLike) -> BytePairTokenizer:
        stored = json.loads(Path(path).read_text())
        if stored.get("kind") != cls.kind or not isinstance(stored.get("tokenizer"), dict):
            raise ValueError(f"{path} holds no byte-level BPE tokenizer")
        try:
            return cls(hf_tokenizers.Tokenizer.from_str(json.dumps(stored["tokenizer"])))
        except Exception as error:  # the tokenizers library raises a bare Exception for a malformed definition
            raise ValueError(f"its BPE definition does not load ({first_line(error)})") from None


_SAFE_CUT = re.compile(r"(?<=\S\n)(?=\S)")  # GPT-2's pre-tokenizer ends a token there whatever follows


def _bpe_pieces(text: str, size: int = 2**16) -> Iterator[str]:
    """`text` in consecutive pieces of about `size` characters, cut only at `_SAFE_CUT`."""
    start = 0
    while start < len(text):
        cut = _SAFE_CUT.search(text, start + size) if start + size < len(text) else None
        end = cut.start() if cut else len(text)
        yield text[start:end]
        start = end


TOKENIZERS: dict[str, type[Tokenizer]] = {
    t.kind: t for t in (CharTokenizer, WordTokenizer, SubwordTokenizer, BytePairTokenizer)
}


def load_tokenizer(path: PathLike) -> Tokenizer:
    """Reads any tokenizer written by `save`: JSON files name their kind, anything else is a SentencePiece model.

    The file is read as data only. A damaged one (not a tokenizer of a known kind) is a DataError naming it.
    """
    try:
        data = Path(path).read_bytes()
        if data.startswith(b"{"):
            kind = json.loads(data).get("kind")
            if kind not in TOKENIZERS:
                raise ValueError(f"it names no tokenizer kind of {', '.join(TOKENIZERS)} (kind {kind!r})")
            return TOKENIZERS[kind].load(path)
        return SubwordTokenizer(data)
    except (OSError, ValueError, TypeError, RuntimeError) as error:  # RuntimeError: SentencePiece's parse error
        raise DataError(
            f"tokenizer file {path} is damaged ({first_line(error)}); restore it, or delete it to train it again "
            "from the train text"
        ) from None
