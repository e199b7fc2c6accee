"""Released tokenizers (GPT-2's byte-level BPE, BERT's WordPiece) as jaxmodels `Tokenizer`s.

A directory in Hugging Face's layout is read through Hugging Face's `tokenizers` library, so the ids are those
`transformers` gives:

    tokenizer.json                 the whole pipeline, as `save_pretrained` writes it (read first when present)
    vocab.json + merges.txt        GPT-2's byte-level BPE (`add_prefix_space` from tokenizer_config.json)
    vocab.txt                      BERT's WordPiece, with tokenizer_config.json's `do_lower_case` (default true),
                                   `strip_accents` (default: as lower-casing) and `tokenize_chinese_chars`
    tokenizer_config.json          the special tokens (`pad_token`, `mask_token`, ...), optional; also read
    special_tokens_map.json        from here, as older releases keep them

A released vocabulary numbers its special tokens its own way (bert-base-uncased: [PAD] 0, [UNK] 100, [CLS] 101,
[SEP] 102, [MASK] 103; GPT-2 has only <|endoftext|>, 50256), so a `PretrainedTokenizer` reports them in
`special_ids` and frames a sequence with its own post-processing (BERT: [CLS] ... [SEP]; GPT-2: nothing).
Unlike jaxmodels' own tokenizers, its special tokens written in text ("[MASK]") encode as themselves, as in
`transformers`: that is how `fill-mask` finds the masks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tokenizers as hf
from tokenizers import AddedToken, decoders, normalizers, pre_tokenizers

from jaxmodels.data.tokenizers import PathLike, Tokenizer
from jaxmodels.errors import DataError
from jaxmodels.files import first_line

KEPT_DIR = "tokenizer"  # an export (or a workdir) keeps a released tokenizer's files in this directory
TOKENIZER_JSON = "tokenizer.json"
CONFIG_FILES = ("tokenizer_config.json", "special_tokens_map.json")
VOCABULARY_FILES = ("vocab.json", "merges.txt", "vocab.txt")
ROLES = ("pad", "unk", "mask", "cls", "sep", "bos", "eos")

# The special tokens each family has when its files do not name them (transformers' defaults).
WORDPIECE_SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
BYTE_LEVEL_BPE_SPECIALS = {"unk": "<|endoftext|>", "bos": "<|endoftext|>", "eos": "<|endoftext|>"}
FAMILY_SPECIALS = {"WordPiece": WORDPIECE_SPECIALS, "BPE": BYTE_LEVEL_BPE_SPECIALS}


class PretrainedTokenizer(Tokenizer):
    """A released tokenizer: Hugging Face's `tokenizers` pipeline and the names of its special tokens.

    `files` are the Hugging Face files it was read from, written back unchanged by `save` (with tokenizer.json,
    the full pipeline, added when they lack it), so an export gives the user the vocabulary they started from.
    """

    kind = "pretrained"

    def __init__(self, backend: hf.Tokenizer, special_tokens: dict[str, str], files: dict[str, bytes]):
        self.backend = backend
        self.files = files
        vocabulary = backend.get_vocab(with_added_tokens=True)
        self._special_ids = {role: vocabulary[token] for role, token in special_tokens.items() if token in vocabulary}
        added_specials = [i for i, token in backend.get_added_tokens_decoder().items() if token.special]
        self._reserved = np.unique(np.array([*self._special_ids.values(), *added_specials], np.int64))
        self._frame = _special_frame(backend)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def special_ids(self) -> dict[str, int]:
        return dict(self._special_ids)

    @property
    def reserved_ids(self) -> np.ndarray:
        return self._reserved

    @property
    def special_frame(self) -> tuple[np.ndarray, np.ndarray]:
        return self._frame

    def id_to_piece(self, token_id: int) -> str:
        return self.backend.id_to_token(int(token_id))

    def encode(self, text: str) -> np.ndarray:
        """The ids of `text` without the framing tokens: `transformers`' ids with add_special_tokens=False."""
        return np.asarray(self.backend.encode(text, add_special_tokens=False).ids, np.int32)

    def decode(self, ids) -> str:
        """The text of `ids` through the release's decoder (GPT-2's bytes, BERT's word pieces joined), padding
        dropped (when there is a pad token) and the other special tokens written as they are."""
        ids = [int(i) for i in np.asarray(ids, np.int64).ravel() if i != self._special_ids.get("pad")]
        return self._decode_ordinary(ids)

    def _decode_ordinary(self, ids: list[int]) -> str:
        return self.backend.decode(ids, skip_special_tokens=False)

    def save(self, path: PathLike) -> None:
        """Writes the Hugging Face files to the directory `path` (made if missing)."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        files = {TOKENIZER_JSON: self.backend.to_str().encode(), **self.files}
        for name, content in files.items():
            (directory / name).write_bytes(content)

    @classmethod
    def load(cls, path: PathLike) -> PretrainedTokenizer:
        return load_pretrained_tokenizer(Path(path))


def has_tokenizer_files(directory: Path) -> bool:
    """Whether `directory` holds the files of a released tokenizer (tokenizer.json or vocabulary files)."""
    return (
        (directory / TOKENIZER_JSON).is_file()
        or (directory / "vocab.txt").is_file()
        or ((directory / "vocab.json").is_file() and (directory / "merges.txt").is_file())
    )


def load_pretrained_tokenizer(directory: Path) -> PretrainedTokenizer:
    """The tokenizer of a directory in Hugging Face's layout (see the module docstring).

    Raises DataError naming the directory when it holds no tokenizer files or a damaged one.
    """
    directory = Path(directory)
    if not has_tokenizer_files(directory):
        raise DataError(
            f"{str(directory)!r} holds no tokenizer files: expected tokenizer.json, or vocab.json + merges.txt "
            "(GPT-2's BPE), or vocab.txt (BERT's WordPiece), as `huggingface-cli download MODEL --local-dir DIR` "
            "fetches them"
        )
    try:
        settings = _settings(directory)
        if (directory / TOKENIZER_JSON).is_file():
            backend = hf.Tokenizer.from_file(str(directory / TOKENIZER_JSON))
            family = type(backend.model).__name__
        elif (directory / "vocab.txt").is_file():
            backend, family = _wordpiece(directory / "vocab.txt", settings), "WordPiece"
        else:
            backend, family = _byte_level_bpe(directory, settings), "BPE"
        vocabulary = backend.get_vocab(with_added_tokens=True)
        defaults = {role: token for role, token in FAMILY_SPECIALS.get(family, {}).items() if token in vocabulary}
        special_tokens = {**defaults, **_named_special_tokens(settings)}
        special_tokens = {role: token for role, token in special_tokens.items() if token is not None}
        _add_special_tokens(backend, special_tokens.values())
        if not (directory / TOKENIZER_JSON).is_file() and family == "WordPiece":
            _frame_like_bert(backend, special_tokens)
    except Exception as error:  # OSError, JSON errors, and the plain Exception `tokenizers` raises on a bad file
        raise DataError(
            f"the tokenizer files in {str(directory)!r} cannot be read ({type(error).__name__}: {first_line(error)}); "
            "fetch them again"
        ) from None
    names = (TOKENIZER_JSON, *CONFIG_FILES, *VOCABULARY_FILES)
    files = {name: (directory / name).read_bytes() for name in names if (directory / name).is_file()}
    return PretrainedTokenizer(backend, special_tokens, files)


def _settings(directory: Path) -> dict:
    """tokenizer_config.json over special_tokens_map.json: the settings and special tokens a release names."""
    settings: dict = {}
    for name in reversed(CONFIG_FILES):
        path = directory / name
        if path.is_file():
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict):
                raise ValueError(f"{name} holds no JSON object")
            settings.update(loaded)
    return settings


def _named_special_tokens(settings: dict) -> dict[str, str | None]:
    """The special tokens the settings name, by role; a token may be a string or {'content': ...}; null = none."""
    named = {}
    for role in ROLES:
        key = f"{role}_token"
        if key in settings:
            value = settings[key]
            named[role] = value.get("content") if isinstance(value, dict) else value
    return named


def _wordpiece(vocab_file: Path, settings: dict) -> hf.Tokenizer:
    """BERT's WordPiece from vocab.txt, built as `transformers`' BertTokenizer builds it."""
    lines = vocab_file.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    vocabulary = {token: index for index, token in enumerate(lines)}
    unk = _named_special_tokens(settings).get("unk") or WORDPIECE_SPECIALS["unk"]
    backend = hf.Tokenizer(hf.models.WordPiece(vocabulary, unk_token=unk))
    lowercase = settings.get("do_lower_case", True)
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=settings.get("tokenize_chinese_chars", True),
        strip_accents=settings.get("strip_accents"),  # None: strip them when lower-casing, as the original BERT
        lowercase=lowercase,
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


def _frame_like_bert(backend: hf.Tokenizer, special_tokens: dict[str, str]) -> None:
    """BERT's post-processing: [CLS] A [SEP] (pairs: [CLS] A [SEP] B [SEP])."""
    cls, sep = special_tokens.get("cls"), special_tokens.get("sep")
    if cls is None or sep is None or backend.token_to_id(cls) is None or backend.token_to_id(sep) is None:
        return
    backend.post_processor = hf.processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, backend.token_to_id(cls)), (sep, backend.token_to_id(sep))],
    )


def _byte_level_bpe(directory: Path, settings: dict) -> hf.Tokenizer:
    """GPT-2's byte-level BPE from vocab.json + merges.txt, built as `transformers`' GPT2Tokenizer builds it."""
    model = hf.models.BPE.from_file(
        str(directory / "vocab.json"), str(directory / "merges.txt"), continuing_subword_prefix="",
        end_of_word_suffix="", fuse_unk=False,
    )  # fmt: skip
    backend = hf.Tokenizer(model)
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=bool(settings.get("add_prefix_space", False)))
    backend.decoder = decoders.ByteLevel()
    return backend


def _add_special_tokens(backend: hf.Tokenizer, tokens) -> None:
    """Marks the special tokens as whole, unnormalised tokens ("[MASK]" in text is the mask), as `transformers`
    does; one missing from the vocabulary gets the next id."""
    known = {token.content for token in backend.get_added_tokens_decoder().values()}
    new = [AddedToken(token, special=True, normalized=False) for token in dict.fromkeys(tokens) if token not in known]
    if new:
        backend.add_special_tokens(new)


def _special_frame(backend: hf.Tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """The ids the post-processing puts before and after one sequence, read off an encoding of one token."""
    probe = next((token.content for token in backend.get_added_tokens_decoder().values()), "a")
    encoding = backend.encode(probe, add_special_tokens=True)
    ids, sequence = encoding.ids, encoding.sequence_ids
    inside = [i for i, s in enumerate(sequence) if s is not None]
    if not inside:  # nothing of the probe survived: assume no framing
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    return np.asarray(ids[: inside[0]], np.int32), np.asarray(ids[inside[-1] + 1 :], np.int32)
