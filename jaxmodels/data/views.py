"""Data views: what a run trains and evaluates on, built from a dataset and `config.data`.

A view is the seam between datasets and tasks; `VIEWS` names them. `records` gives one example per
record (MNIST-1D, digits, catalog images, text passages); text corpora give `lm_windows`,
`mlm_windows` or `word2vec` examples; token sequences give `reversal` (sequence-to-sequence) pairs.
The task registry (`jaxmodels.tasks`) says which view a task reads, and the model may pass options
(e.g. word2vec's `{"word2vec_inputs": "context"}` for CBOW): the data layer never reads task or
model names. Every view yields the batch keys its task reads and tells the model the sizes it must
match (`num_classes`, `vocab_size`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grain
import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from jaxmodels.data import (
    features,
    pipeline,
    prepared_text,
    pretrained_tokenizers,
    sources,
    text,
    tokenizers,
    transforms,
    user,
)
from jaxmodels.data.pipeline import Example
from jaxmodels.data.user import fingerprint
from jaxmodels.errors import ConfigError, DataError


@dataclasses.dataclass
class DataView:
    """The data of one run. Exactly one of `train_records` / `train_examples` is set.

    train_records: random-access records + `preprocess` (one example each): loaded onto the
        device (resident) or streamed by Grain, as `data.loader` says.
    train_examples: an endless Grain dataset of examples (MapDataset) or of ready batches
        (IterDataset), for views that sample (LM windows, masking, word2vec pairs).

    eval_examples: the eval split (this process's share), batched with padding by the loop: host arrays, or, for
        a record split over `data.resident_max_mb`, a `pipeline.StreamedExamples` that reads a batch at a time.

    model_sizes: constructor arguments the data fixes, e.g. {'vocab_size': 70}.
    """

    eval_examples: Example | pipeline.StreamedExamples
    eval_name: str  # the prefix of eval metrics: the split name ('test'), or 'val' for a held-out tail
    model_sizes: dict[str, int]
    train_records: Sequence[dict[str, Any]] | None = None
    preprocess: Callable[[dict[str, Any]], Example] | None = None
    train_bytes: int = 0
    train_examples: grain.MapDataset | grain.IterDataset | None = None
    tokenizer: tokenizers.Tokenizer | None = None
    tokenizer_file: Path | None = None  # where the run keeps its tokenizer; `keep_tokenizer` writes a new one there
    data_fingerprint: dict[str, Any] | None = None  # user files (jaxmodels.data.user): checked on resume


def one_example(view: DataView) -> Example:
    """One train example as the model sees it (no batch axis): what shapes and dtypes a batch will have."""
    if view.train_records is not None:
        return view.preprocess(view.train_records[0])
    if isinstance(view.train_examples, grain.MapDataset):
        return view.train_examples[0]
    return {key: value[0] for key, value in next(iter(view.train_examples)).items()}  # a dataset of batches


def build(
    config: ml_collections.ConfigDict,
    workdir: Path | None,
    *,
    view: str,
    options: Mapping[str, Any] | None = None,
) -> DataView:
    """The data view named `view` (a key of `VIEWS`) of `config.data.name`.

    A tokenizer already kept in `workdir` is loaded; otherwise the one kept by `checkpoint.init_from`'s run, so
    pretrained embeddings keep their tokens; otherwise one is trained. A new one is only written to `workdir` by
    `keep_tokenizer`, so building a view never writes. `options` are what the model asks of the view, e.g.
    {'word2vec_inputs': 'context'}.
    """
    make = VIEWS.get(view)
    if make is None:
        raise ConfigError(f"unknown data view {view!r}; the views are {', '.join(VIEWS)}")
    if user.is_user_source(config.data.name):
        builder = user.open_user_dataset(config.data)
    else:
        builder = sources.open_dataset(config.data.name, config.data.data_dir)
    built = make(config, builder, workdir, options or {})
    if built.tokenizer is not None and workdir is not None:
        built.tokenizer_file = _tokenizer_file(config, workdir)
    if isinstance(builder, user.UserDataset):
        built.data_fingerprint = fingerprint.fingerprint(builder.files, builder.class_names)
    return built


def keep_tokenizer(view: DataView) -> None:
    """Writes the view's tokenizer to `view.tokenizer_file` unless one is there, so later runs, eval and sample
    reuse the same vocabulary. Called once a run is accepted, so a refused run leaves no file behind."""
    if view.tokenizer_file is None or view.tokenizer_file.exists():
        return
    view.tokenizer_file.parent.mkdir(parents=True, exist_ok=True)
    view.tokenizer.save(view.tokenizer_file)


def check_data_unchanged(view: DataView, workdir: Path) -> None:
    """Refuses (DataError) to resume a run in `workdir` whose user files changed on disk since it began."""
    if view.data_fingerprint is not None:
        fingerprint.check_unchanged(workdir, view.data_fingerprint)


def keep_data_fingerprint(view: DataView, workdir: Path) -> None:
    """Writes the fingerprint of the view's user files to `workdir` (once a run is accepted)."""
    if view.data_fingerprint is not None:
        fingerprint.keep(workdir, view.data_fingerprint)


def _records(config, builder, workdir, options) -> DataView:
    """One label per record: images and signals as they are, texts as <cls> + token ids with a padding mask."""
    input_key = (builder.info.supervised_keys or ("",))[0]
    if input_key in builder.info.features and isinstance(builder.info.features[input_key], tfds.features.Text):
        view = features.classification_features(builder.info)
        corpus = text.corpus_text(sources.open_split(builder, config.data.train_split), key=input_key)
        tokenizer = _tokenizer(config, corpus, workdir)
        preprocess = text.TextClassificationFeatures(tokenizer, config.data.block_size, input_key, view.label_key)
        sizes = {"num_classes": view.num_classes, "vocab_size": tokenizer.vocab_size}
        return dataclasses.replace(_record_view(config, builder, preprocess, sizes), tokenizer=tokenizer)
    preprocess = features.classification_features(builder.info)
    num_classes = preprocess.num_classes
    if config.data.permute_inputs:  # one fixed permutation of the input features, for train and eval
        size = int(np.prod(preprocess(sources.open_split(builder, config.data.train_split)[0])["inputs"].shape))
        preprocess = features.PermutedInputs(preprocess, np.random.default_rng(0).permutation(size))
    view = _record_view(config, builder, preprocess, {"num_classes": num_classes})
    if config.data.label_noise:
        label_key = builder.info.supervised_keys[1]
        noisy = features.NoisyLabels(view.train_records, label_key, num_classes, config.data.label_noise)
        view = dataclasses.replace(view, train_records=noisy)
    if config.data.augment:
        view = _augmented(view, config)
    return view


_AUGMENTATIONS = {"crop_flip": lambda: transforms.RandomCropFlip(key="inputs")}


def _augmented(view: DataView, config) -> DataView:
    """Train examples re-drawn every epoch: shuffled records, preprocessed, then randomly augmented (on the host)."""
    if config.data.augment not in _AUGMENTATIONS:
        raise ConfigError(
            f"config key 'data.augment' is {config.data.augment!r}; choose '' (none) or {', '.join(_AUGMENTATIONS)}"
        )
    if view.train_bytes <= config.data.host_cache_max_mb * 2**20:  # decode once, keep in host memory
        examples = pipeline.load_arrays(view.train_records, view.preprocess, np.arange(len(view.train_records)))
        train = grain.MapDataset.source(pipeline.ExampleArrays(examples)).shuffle(seed=config.seed)
    else:
        train = grain.MapDataset.source(view.train_records).shuffle(seed=config.seed).map(view.preprocess)
    train = train.random_map(_AUGMENTATIONS[config.data.augment](), seed=config.seed)
    return dataclasses.replace(view, train_records=None, preprocess=None, train_examples=train)


def _record_view(config, builder, preprocess: Callable[[dict[str, Any]], Example], model_sizes) -> DataView:
    """One example per record: train records stay lazy (the loop loads or streams them); eval is read now when,
    preprocessed (float32 images are 4x their uint8 records), it fits `data.resident_max_mb`, else a batch at a time
    at each evaluation.

    With `data.train_fraction` < 1 the train records are a fixed subset of the split, drawn with `config.seed`.
    """
    eval_records = sources.open_split(builder, config.data.eval_split)
    eval_indices = _local_indices(len(eval_records))
    eval_examples = pipeline.StreamedExamples(eval_records, preprocess, eval_indices)
    if eval_examples.nbytes <= config.data.resident_max_mb * 2**20:
        eval_examples = pipeline.load_arrays(eval_records, preprocess, eval_indices)
    train_records = sources.open_split(builder, config.data.train_split)
    train_bytes = builder.info.splits[config.data.train_split].num_bytes or 0
    if config.data.train_fraction < 1:
        train_records = features.RecordSubset(train_records, config.data.train_fraction, config.seed)
        train_bytes = int(train_bytes * config.data.train_fraction)
    return DataView(
        train_records=train_records,
        preprocess=preprocess,
        train_bytes=train_bytes,
        eval_examples=eval_examples,
        eval_name=config.data.eval_split,
        model_sizes=model_sizes,
    )


def _local_indices(num_records: int) -> np.ndarray:
    """This process's share of an eval split."""
    return pipeline.shard_indices(num_records, jax.process_index(), jax.process_count())


# ------------------------------------------------------------------------------------------- text corpora


def _corpus_tokens(config, builder, workdir, view: str) -> tuple[np.ndarray, np.ndarray, tokenizers.Tokenizer]:
    """(train ids, validation ids, tokenizer) of a text dataset: the validation text is the held-out files
    (`data.eval_files`) where given, else the tail of the tokens (`data.eval_fraction`, 10 %: nanoGPT's split)."""
    prepared = _prepared_tokens(config, builder)
    if prepared is None and "text" not in builder.info.features:
        raise DataError(
            f"the {view!r} data view needs a text dataset; {config.data.name!r} has no 'text' feature "
            "(try --config.data.name=shakespeare)"
        )
    if config.data.train_fraction < 1:
        raise ConfigError(
            f"config key 'data.train_fraction' ({config.data.train_fraction}) takes a subset of a dataset's records; "
            f"the {view!r} view trains on the whole text: leave it at 1.0"
        )
    if prepared is not None:
        return prepared
    corpus = text.corpus_text(sources.open_split(builder, config.data.train_split))
    if isinstance(builder, user.UserDataset) and config.data.eval_files:
        tokenizer = _tokenizer(config, corpus, workdir)
        _check_masking(config, tokenizer, view)
        validation = text.corpus_text(sources.open_split(builder, config.data.eval_split))
        return tokenizer.encode(corpus), tokenizer.encode(validation), tokenizer
    train_fraction = 1 - config.data.eval_fraction
    train_text, _ = text.split_by_position(corpus, train_fraction)
    tokenizer = _tokenizer(config, train_text, workdir)
    _check_masking(config, tokenizer, view)
    train_ids, val_ids = text.split_by_position(tokenizer.encode(corpus), train_fraction)
    return train_ids, val_ids, tokenizer


def _check_masking(config, tokenizer: tokenizers.Tokenizer, view: str) -> None:
    """A ConfigError before the whole text is encoded when the masked-LM view gets a tokenizer with no mask."""
    if view == "mlm_windows" and tokenizer.mask_id is None:
        raise ConfigError(
            f"the tokenizer of data.tokenizer={config.data.tokenizer!r} has no mask token, which the mlm task needs; "
            "use a masked-LM vocabulary (BERT's WordPiece) or a task without masking (--config.task.name=lm)"
        )


def _prepared_tokens(config, builder) -> tuple[Any, Any, tokenizers.Tokenizer] | None:
    """(train ids, validation ids, tokenizer) of text that `jaxmodels prepare` stored as token ids, read window by
    window from its shards (`prepared_text.TokenStream`); None for any other dataset."""
    if not isinstance(builder, user.UserDataset) or "tokens" not in builder.info.features:
        return None
    return prepared_text.open_tokens(Path(builder.data_dir), builder.records, config)


TRAINED_TOKENIZERS = ("char", "word", "subword", "bpe")
PRETRAINED = "pretrained"  # data.tokenizer: the released tokenizer kept with checkpoint.init_from


def _tokenizer(config, train_text: str, workdir: Path | None) -> tokenizers.Tokenizer:
    """The run's tokenizer: the one kept in `workdir`; else the one `checkpoint.init_from` keeps; else a released
    one named by `data.tokenizer` (a directory of tokenizer files); else one trained on `train_text`."""
    kind = config.data.tokenizer
    trainers = {
        "char": lambda: tokenizers.CharTokenizer.train([train_text]),
        "word": lambda: tokenizers.WordTokenizer.train([train_text], max_vocab_size=config.data.vocab_size),
        "subword": lambda: tokenizers.SubwordTokenizer.train([train_text], vocab_size=config.data.vocab_size),
        "bpe": lambda: tokenizers.BytePairTokenizer.train([train_text], vocab_size=config.data.vocab_size),
    }
    pretrained = _pretrained_tokenizer(config)
    if workdir is not None and _tokenizer_file(config, workdir).exists():  # even if data.tokenizer's directory is gone
        kept = _read_kept(_tokenizer_file(config, workdir))
        if pretrained is not None and _vocabulary(kept) != _vocabulary(pretrained):
            raise ConfigError(
                f"the tokenizer kept in {workdir} is not the one of checkpoint.init_from={config.checkpoint.init_from}"
                " (another vocabulary), so the pretrained embedding rows would stand for other tokens; start the "
                "run in a new workdir"
            )
        return kept
    named = _named_tokenizer_dir(config)
    if named is not None:
        released = pretrained_tokenizers.load_pretrained_tokenizer(named)
        if pretrained is not None and _vocabulary(released) != _vocabulary(pretrained):
            raise ConfigError(
                f"data.tokenizer={kind!r} is not the tokenizer kept with checkpoint.init_from="
                f"{config.checkpoint.init_from} (another vocabulary), so the pretrained embedding rows would stand "
                "for other tokens; set --config.data.tokenizer=pretrained"
            )
        return released
    if pretrained is not None:
        return pretrained
    if kind == PRETRAINED:
        raise ConfigError(
            "data.tokenizer='pretrained' reads the tokenizer kept with checkpoint.init_from (an import, `jaxmodels "
            "import`, or a run fine-tuned from one), but " + _why_no_kept_tokenizer(config.checkpoint.init_from)
        )
    return trainers[kind]()


def _why_no_kept_tokenizer(init_from: str) -> str:
    """Why `checkpoint.init_from` gave no tokenizer, and what to do."""
    if not init_from:
        return "checkpoint.init_from is not set: set --config.checkpoint.init_from=EXPORT"
    if not Path(init_from).exists():
        return (
            f"{init_from} does not exist: import the release there first, `jaxmodels import --from DIR --out "
            f"{init_from}` (docs/pretrained.md)"
        )
    return f"{init_from} keeps none"


def _named_tokenizer_dir(config) -> Path | None:
    """The directory of tokenizer files `data.tokenizer` names, or None when it names a kind ('char', ...,
    'pretrained'); ConfigError for a value that is neither."""
    kind = config.data.tokenizer
    if kind in (*TRAINED_TOKENIZERS, PRETRAINED):
        return None
    if isinstance(kind, str) and kind and pretrained_tokenizers.has_tokenizer_files(Path(kind)):
        return Path(kind)
    raise ConfigError(
        f"config key 'data.tokenizer' is {kind!r}; choose one of {', '.join(TRAINED_TOKENIZERS)} (trained on the "
        "text), 'pretrained' (the tokenizer kept with checkpoint.init_from) or a directory of Hugging Face tokenizer "
        "files (tokenizer.json, vocab.json + merges.txt, or vocab.txt)"
    )


def _read_kept(path: Path) -> tokenizers.Tokenizer:
    """A tokenizer kept by a run or an export: a released one is a directory, jaxmodels' own one file."""
    if path.is_dir():
        return pretrained_tokenizers.load_pretrained_tokenizer(path)
    return tokenizers.load_tokenizer(path)


def _pretrained_tokenizer(config) -> tokenizers.Tokenizer | None:
    """The tokenizer that `checkpoint.init_from` (a workdir or an export) keeps, if it keeps one.

    A run that starts from pretrained parameters must read its text with the same vocabulary, or the
    pretrained embedding rows would stand for other tokens: it adopts that tokenizer (and keeps a copy in its
    own workdir). A source keeping only tokenizers of another kind than `data.tokenizer` is a ConfigError.
    """
    if not config.checkpoint.init_from:
        return None
    source = Path(config.checkpoint.init_from)
    path = _tokenizer_file(config, source)
    if path.exists():
        return _read_kept(path)
    others = sorted(p.name.removeprefix("tokenizer_") for p in source.glob("tokenizer_*"))
    if (source / pretrained_tokenizers.KEPT_DIR).is_dir():
        others.insert(0, PRETRAINED)
    if others:
        raise ConfigError(
            f"checkpoint.init_from={config.checkpoint.init_from} was trained with a {others[0]!r} tokenizer, but "
            f"data.tokenizer is {config.data.tokenizer!r}: its embedding rows would stand for other tokens; set "
            f"--config.data.tokenizer={others[0]}"
        )
    return None


def _vocabulary(tokenizer: tokenizers.Tokenizer) -> list[str]:
    return [tokenizer.id_to_piece(i) for i in range(tokenizer.vocab_size)]


def _tokenizer_file(config, workdir: Path) -> Path:
    """Where a workdir (or an export) keeps the run's tokenizer: `tokenizer_<kind>` for a trained one, the
    directory `tokenizer` for a released one."""
    if config.data.tokenizer in TRAINED_TOKENIZERS:
        return workdir / f"tokenizer_{config.data.tokenizer}"
    return workdir / pretrained_tokenizers.KEPT_DIR


def _windows(ids: np.ndarray, length: int, limit: int) -> np.ndarray:
    """Consecutive non-overlapping windows of `length` ids (at most `limit`; 0 = all)."""
    count = (len(ids) - 1) // length
    count = min(count, limit) if limit else count
    if count == 0:
        raise DataError(f"the validation text has {len(ids)} tokens, too few for one window of {length}")
    return np.stack([ids[i * length : i * length + length + 1] for i in range(count)])


def _lm_windows(config, builder, workdir, options) -> DataView:
    """Causal LM: random windows of the training text; consecutive windows of the validation text."""
    train_ids, val_ids, tokenizer = _corpus_tokens(config, builder, workdir, "lm_windows")
    block = config.data.block_size
    windows = _windows(val_ids, block, config.data.eval_windows)
    return DataView(
        train_examples=transforms.lm_window_dataset(train_ids, block, seed=config.seed),
        eval_examples={"inputs": windows[:, :-1], "targets": windows[:, 1:]},
        eval_name="val",
        model_sizes={"vocab_size": tokenizer.vocab_size},
        tokenizer=tokenizer,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class _MaskedWindow(grain.transforms.RandomMap):
    """Maps any element (e.g. an index) to a random window of ids framed to `block_size` tokens by `frame`
    (the tokenizer's special tokens before and after: <cls> here, BERT's [CLS] and [SEP]), masked by `mask`."""

    ids: np.ndarray
    block_size: int
    frame: tuple[np.ndarray, np.ndarray]
    mask: transforms.MaskTokens

    def random_map(self, element: Any, rng: np.random.Generator) -> Example:
        del element  # the record's seed alone picks its window and masking
        start = int(rng.integers(0, len(self.ids) - self.block_size))
        length = self.block_size - sum(len(part) for part in self.frame)
        return _masked(self.ids[start : start + length], self.frame, self.mask, rng)


def _masked(
    ids: np.ndarray, frame: tuple[np.ndarray, np.ndarray], mask: transforms.MaskTokens, rng: np.random.Generator
) -> Example:
    """`ids` framed by the special tokens, BERT-masked, under the keys the mlm task reads."""
    masked = mask.random_map({"tokens": np.concatenate([frame[0], ids, frame[1]]).astype(np.int32)}, rng)
    return {"inputs": masked["inputs"], "targets": masked["targets"], "target_weights": masked["weights"]}


def _mlm_windows(config, builder, workdir, options) -> DataView:
    """Masked LM: a window framed by the special tokens (<cls> + ids), masked afresh for every training example,
    once for validation."""
    train_ids, val_ids, tokenizer = _corpus_tokens(config, builder, workdir, "mlm_windows")
    block, frame = config.data.block_size, tokenizer.special_frame
    mask = transforms.MaskTokens(
        tokenizer.vocab_size, special_ids=tuple(int(i) for i in tokenizer.reserved_ids), mask_id=tokenizer.mask_id
    )
    windows = _windows(val_ids, block - tokenizer.num_frame_tokens, config.data.eval_windows)[:, :-1]
    rng = np.random.default_rng(0)  # a fixed masking of the validation windows, the same every evaluation
    masked = [_masked(window, frame, mask, rng) for window in windows]
    num_windows = max(len(train_ids) // block, 1)
    train = grain.MapDataset.range(num_windows).random_map(
        _MaskedWindow(train_ids, block, frame, mask), seed=config.seed
    )
    return DataView(
        train_examples=train,
        eval_examples={key: np.stack([m[key] for m in masked]) for key in masked[0]},
        eval_name="val",
        model_sizes={"vocab_size": tokenizer.vocab_size},
        tokenizer=tokenizer,
    )


_WORD2VEC_MODES = {"center": "skipgram", "context": "cbow"}  # the model's inputs -> how examples are made


def _word2vec(config, builder, workdir, options) -> DataView:
    """word2vec with negative sampling; `options['word2vec_inputs']` is 'center' (skip-gram) or 'context' (CBOW)."""
    inputs = options.get("word2vec_inputs", "center")
    if inputs not in _WORD2VEC_MODES:
        raise ValueError(f"view option word2vec_inputs={inputs!r}; choose one of {', '.join(_WORD2VEC_MODES)}")
    mode = _WORD2VEC_MODES[inputs]
    if config.data.workers:  # Grain can only split a dataset over workers by slicing a random-access source
        raise ConfigError(
            f"data.workers={config.data.workers}: word2vec batches come from a whole-epoch builder, which Grain "
            "cannot split over worker processes (it already prepares the next epoch in a thread); set data.workers=0"
        )
    train_ids, val_ids, tokenizer = _corpus_tokens(config, builder, workdir, "word2vec")

    def examples(ids: np.ndarray, seed: int, epochs: int | None) -> grain.IterDataset:
        return transforms.Word2VecBatches(
            ids, batch_size=config.data.batch_size // jax.process_count(), seed=seed, mode=mode,
            window=config.data.window, num_negatives=config.data.num_negatives, num_epochs=epochs,
            process_index=jax.process_index(), process_count=jax.process_count(),
        )  # fmt: skip

    eval_batches = list(itertools.islice(examples(val_ids, seed=0, epochs=1), max(config.data.eval_windows // 10, 1)))
    return DataView(
        train_examples=examples(train_ids, seed=config.seed, epochs=None).map(lambda b: _word2vec_keys(b, mode)),
        eval_examples=_word2vec_keys(
            {key: np.concatenate([b[key] for b in eval_batches]) for key in eval_batches[0]}, mode
        ),
        eval_name="val",
        model_sizes={"vocab_size": tokenizer.vocab_size},
        tokenizer=tokenizer,
    )


def _word2vec_keys(batch: Example, mode: str) -> Example:
    """word2vec transform keys -> task keys: the model's input words, the word(s) to predict, the noise words.

    Skip-gram predicts each context word from its centre; CBOW predicts the centre from its context window.
    """
    if mode == "skipgram":
        return {"inputs": batch["center"], "positives": batch["context"], "negatives": batch["negatives"]}
    return {
        "inputs": batch["context"],
        "context_mask": batch["context_mask"],
        "positives": batch["center"],
        "negatives": batch["negatives"],
    }


# ------------------------------------------------------------------------------------------ seq2seq


def _reversal(config, builder, workdir, options) -> DataView:
    """Sequence-to-sequence on token records: the target is the source reversed (a classic toy task)."""
    if "tokens" not in builder.info.features:
        raise DataError(
            f"the 'reversal' data view reads token sequences; {config.data.name!r} has no 'tokens' feature "
            "(try --config.data.name=synthetic/tokens)"
        )
    vocab = int(builder.builder_config.vocab_size)

    def pairs(record: dict[str, Any]) -> Example:
        source = np.asarray(record["tokens"], np.int32)[: config.data.block_size]  # ids >= NUM_SPECIAL already
        target = source[::-1]
        return {
            "source": source,
            "target_inputs": np.concatenate([[tokenizers.CLS_ID], target[:-1]]).astype(np.int32),
            "targets": target,
        }

    return _record_view(config, builder, pairs, {"vocab_size": vocab})


ViewBuilder = Callable[
    [ml_collections.ConfigDict, tfds.core.DatasetBuilder, Path | None, Mapping[str, Any]], DataView
]  # (config, dataset, workdir, options) -> the view

VIEWS: dict[str, ViewBuilder] = {
    "records": _records,
    "lm_windows": _lm_windows,
    "mlm_windows": _mlm_windows,
    "word2vec": _word2vec,
    "reversal": _reversal,
}
