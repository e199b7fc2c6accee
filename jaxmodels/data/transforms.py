"""Transforms for Grain pipelines: image augmentation, LM windows, masked LM, padding and packing per
record, and word2vec examples an epoch at a time. Pure numpy functions, wrapped for Grain.

Every random function takes an explicit `np.random.Generator`. In a Grain pipeline use the
`RandomMap` classes through `MapDataset.random_map(transform, seed=...)`: Grain seeds each record's
generator from (seed, record index), so a pipeline's output is a function of its seed alone, the
same with any number of workers, and restored exactly from a checkpointed iterator.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import grain
import numpy as np

from jaxmodels.data.tokenizers import MASK_ID, NUM_SPECIAL, PAD_ID
from jaxmodels.errors import DataError

Record = dict[str, Any]

# ---------------------------------------------------------------------------------------------- images

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # per-channel statistics of the CIFAR-10 train images in [0, 1]
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def normalize(image: np.ndarray, mean: Sequence[float] | float, std: Sequence[float] | float) -> np.ndarray:
    """(image - mean) / std per channel, as float32; uint8 images are first scaled to [0, 1]."""
    image = np.asarray(image)
    scaled = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    return (scaled - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def random_crop(image: np.ndarray, rng: np.random.Generator, padding: int = 4) -> np.ndarray:
    """A crop of the image's own size from it zero-padded by `padding` pixels on each side (H, W, ...).

    Same result as `np.pad` then slicing, without building the padded image: the crop is the
    image shifted by up to `padding` pixels each way, with zeros shifted in.
    """
    height, width = image.shape[:2]
    top, left = rng.integers(-padding, padding + 1, 2)  # crop origin relative to the unpadded image
    crop = np.zeros_like(image)
    crop[max(-top, 0) : height - max(top, 0), max(-left, 0) : width - max(left, 0)] = image[
        max(top, 0) : height + min(top, 0), max(left, 0) : width + min(left, 0)
    ]
    return crop


def random_flip_left_right(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The image mirrored along its width with probability 1/2."""
    return image[:, ::-1] if rng.random() < 0.5 else image


@dataclasses.dataclass(frozen=True)
class RandomCropFlip(grain.transforms.RandomMap):
    """ResNet's CIFAR augmentation (He et al. 2016): pad 4 px, random crop back, random horizontal flip."""

    padding: int = 4
    key: str = "image"

    def random_map(self, element: Record, rng: np.random.Generator) -> Record:
        image = random_flip_left_right(random_crop(element[self.key], rng, self.padding), rng)
        return {**element, self.key: np.ascontiguousarray(image)}


@dataclasses.dataclass(frozen=True)
class Normalize(grain.transforms.Map):
    """`normalize` applied to `element[key]`."""

    mean: Sequence[float] | float
    std: Sequence[float] | float
    key: str = "image"

    def map(self, element: Record) -> Record:
        return {**element, self.key: normalize(element[self.key], self.mean, self.std)}


# ----------------------------------------------------------------------------------- language modelling


def lm_window(tokens: np.ndarray, start: int, block_size: int) -> Record:
    """`block_size + 1` contiguous tokens from `start`, as inputs and the targets one position ahead."""
    window = np.asarray(tokens[start : start + block_size + 1], np.int32)
    if len(window) != block_size + 1:
        raise ValueError(f"a window of {block_size + 1} tokens from {start} overruns {len(tokens)} tokens")
    return {"inputs": window[:-1], "targets": window[1:]}


def random_lm_window(tokens: np.ndarray, block_size: int, rng: np.random.Generator) -> Record:
    """A window at a uniform start in [0, len - block_size), as nanoGPT's `get_batch` draws them."""
    if len(tokens) <= block_size:
        raise ValueError(f"{len(tokens)} tokens cannot fill a window of block_size + 1 = {block_size + 1}")
    return lm_window(tokens, int(rng.integers(0, len(tokens) - block_size)), block_size)


@dataclasses.dataclass(frozen=True, eq=False)
class RandomLMWindow(grain.transforms.RandomMap):
    """Maps any element (e.g. an index) to a random window of `tokens`; see `lm_window_dataset`."""

    tokens: np.ndarray
    block_size: int

    def random_map(self, element: Any, rng: np.random.Generator) -> Record:
        del element  # the record's seed alone picks its window
        return random_lm_window(self.tokens, self.block_size, rng)


def lm_window_dataset(tokens: np.ndarray, block_size: int, *, seed: int, num_windows: int = 0) -> grain.MapDataset:
    """`num_windows` random windows (default: as many as fit end to end: len // block_size) per epoch.

    Batch and repeat it like any MapDataset; repeated epochs draw new windows.
    """
    num_windows = num_windows or len(tokens) // block_size
    tokens = tokens if hasattr(tokens, "__array__") else np.asarray(tokens)  # arrays, and ids read from disk as sliced
    return grain.MapDataset.range(num_windows).random_map(RandomLMWindow(tokens, block_size), seed=seed)


# --------------------------------------------------------------------------------------------- masked LM

MASK_RATE = 0.15  # BERT (Devlin et al. 2019): share of non-special tokens that are predicted
MASK_TOKEN_SHARE, RANDOM_TOKEN_SHARE = 0.8, 0.1  # of the predicted: -> <mask>, -> random token; rest unchanged


def mask_tokens(
    tokens: np.ndarray,
    rng: np.random.Generator,
    vocab_size: int,
    mask_rate: float = MASK_RATE,
    special_ids: Sequence[int] | np.ndarray = tuple(range(NUM_SPECIAL)),
    mask_id: int = MASK_ID,
) -> Record:
    """BERT's masked-LM corruption of a token array.

    Each ordinary token (not one of `special_ids`: jaxmodels' 0..4 by default, a released vocabulary's own
    otherwise) is selected with probability `mask_rate`; a selected token becomes `mask_id` with probability
    0.8, a uniform random ordinary token with 0.1, and stays itself with 0.1. Returns `inputs` (the corrupted
    ids), `targets` (the original ids) and `weights` (float32, 1 where a token was selected: the positions the
    loss counts).
    """
    tokens = np.asarray(tokens, np.int32)
    ordinary = _ordinary_ids(vocab_size, tuple(sorted({int(i) for i in special_ids})))
    selected = ~np.isin(tokens, special_ids) & (rng.random(tokens.shape) < mask_rate)
    action = rng.random(tokens.shape)
    random_tokens = ordinary[rng.integers(0, len(ordinary), tokens.shape, dtype=np.int32)]
    inputs = np.where(selected & (action < MASK_TOKEN_SHARE), mask_id, tokens)
    replace = selected & (action >= MASK_TOKEN_SHARE) & (action < MASK_TOKEN_SHARE + RANDOM_TOKEN_SHARE)
    inputs = np.where(replace, random_tokens, inputs)
    return {"inputs": inputs.astype(np.int32), "targets": tokens, "weights": selected.astype(np.float32)}


@functools.lru_cache(maxsize=8)
def _ordinary_ids(vocab_size: int, special_ids: tuple[int, ...]) -> np.ndarray:
    """The ids of [0, vocab_size) that are not special, ascending (cached: a vocabulary is masked many times)."""
    return np.setdiff1d(np.arange(vocab_size, dtype=np.int32), np.asarray(special_ids, np.int32))


@dataclasses.dataclass(frozen=True)
class MaskTokens(grain.transforms.RandomMap):
    """`mask_tokens` on `element[key]`, which it replaces by `inputs`, `targets` and `weights`.

    `special_ids` and `mask_id` are the tokenizer's (`Tokenizer.reserved_ids`, `Tokenizer.mask_id`).
    """

    vocab_size: int
    key: str = "tokens"
    mask_rate: float = MASK_RATE
    special_ids: tuple[int, ...] = tuple(range(NUM_SPECIAL))
    mask_id: int = MASK_ID

    def random_map(self, element: Record, rng: np.random.Generator) -> Record:
        rest = {name: value for name, value in element.items() if name != self.key}
        masked = mask_tokens(element[self.key], rng, self.vocab_size, self.mask_rate, self.special_ids, self.mask_id)
        return {**rest, **masked}


# ----------------------------------------------------------------------------------- padding and packing


def pad_to_length(tokens: np.ndarray, length: int, pad_id: int = PAD_ID) -> Record:
    """Tokens cut or padded to `length`, with Grain's packing metadata for a single segment.

    Returns `tokens`, `segment_ids` (1 on real tokens, 0 on padding) and `positions` (0, 1, ...
    on real tokens, 0 on padding): the same fields `pack_sequences` gives.
    """
    tokens = np.asarray(tokens, np.int32)[:length]
    real = len(tokens)
    padded = np.full(length, pad_id, np.int32)
    padded[:real] = tokens
    segment_ids = (np.arange(length) < real).astype(np.int32)
    return {"tokens": padded, "segment_ids": segment_ids, "positions": np.arange(length, dtype=np.int32) * segment_ids}


def pack_sequences(
    dataset: grain.IterDataset,
    length: int,
    keys: Sequence[str] = ("tokens",),
    num_packing_bins: int = 16,
    seed: int = 0,
) -> grain.IterDataset:
    """Packs variable-length 1-D features into rows of `length` (Grain's first-fit packing).

    Elements must hold exactly the features in `keys`; examples longer than `length` are cut to
    it first. Each output row holds `{key}` (several examples back to back, padded with 0),
    `{key}_segment_ids` (1, 2, ... per example, 0 on padding) and `{key}_positions` (restarting
    at 0 for each example).
    """
    truncated = dataset.map(functools.partial(_truncate, keys=tuple(keys), length=length))
    return grain.experimental.FirstFitPackIterDataset(
        truncated, length_struct=dict.fromkeys(keys, length), num_packing_bins=num_packing_bins, seed=seed
    )


def _truncate(element: Record, keys: tuple[str, ...], length: int) -> Record:
    return {**element, **{key: element[key][:length] for key in keys}}


# ---------------------------------------------------------------------------------------------- word2vec

SUBSAMPLE_THRESHOLD = 1e-5  # Mikolov et al. 2013's t for corpora of ~1e9 words; 1e-3..1e-4 suits small ones
UNIGRAM_POWER = 0.75  # negative samples are drawn from the unigram distribution raised to 3/4


def keep_probabilities(counts: np.ndarray, threshold: float = SUBSAMPLE_THRESHOLD) -> np.ndarray:
    """Subsampling of frequent words (Mikolov et al. 2013, "Distributed Representations of Words...").

    A word of relative frequency f = count / total is discarded with probability 1 - sqrt(t / f),
    so kept with min(1, sqrt(t / f)): words rarer than t are always kept. (This is the paper's
    formula; the released word2vec.c keeps with sqrt(t / f) + t / f instead.) Ids never seen keep 1.
    """
    counts = np.asarray(counts, np.float64)
    frequency = counts / counts.sum()
    ratio = np.divide(threshold, frequency, out=np.full_like(frequency, np.inf), where=frequency > 0)
    return np.minimum(1.0, np.sqrt(ratio))


def subsample(tokens: np.ndarray, keep_probability: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The tokens kept, each independently with `keep_probability[token]`, in their order."""
    tokens = np.asarray(tokens)
    return tokens[rng.random(len(tokens)) < keep_probability[tokens]]


def _context_positions(length: int, window: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """For each center position: the positions at offsets -window..-1, 1..window, and which are context.

    As in word2vec.c, each center draws its own window size uniformly from 1..window, so nearer
    words are context more often.
    """
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    reach = rng.integers(1, window + 1, length)
    positions = np.arange(length)[:, None] + offsets
    valid = (np.abs(offsets) <= reach[:, None]) & (positions >= 0) & (positions < length)
    return positions, valid


def skipgram_pairs(tokens: np.ndarray, window: int, rng: np.random.Generator) -> Record:
    """Skip-gram (center, context) pairs: every context word within each center's shrunk window.

    Returns int32 `center` and `context` arrays, grouped by center in text order.
    """
    tokens = np.asarray(tokens, np.int32)
    positions, valid = _context_positions(len(tokens), window, rng)
    rows, columns = np.nonzero(valid)
    return {"center": tokens[rows], "context": tokens[positions[rows, columns]]}


def cbow_examples(tokens: np.ndarray, window: int, rng: np.random.Generator) -> Record:
    """CBOW examples: the context around each center (<pad> where outside the shrunk window) -> the center.

    Returns `context` int32 [N, 2 * window] (offsets -window..-1, 1..window), `context_mask`
    bool [N, 2 * window] and `center` int32 [N]; centers without any context are left out.
    """
    tokens = np.asarray(tokens, np.int32)
    positions, valid = _context_positions(len(tokens), window, rng)
    has_context = valid.any(axis=1)
    positions, valid = positions[has_context], valid[has_context]
    context = np.where(valid, tokens[np.clip(positions, 0, max(len(tokens) - 1, 0))], PAD_ID).astype(np.int32)
    return {"context": context, "context_mask": valid, "center": tokens[has_context]}


class NegativeSampler:
    """Draws negative words from counts ** 0.75, normalised, through a lookup table as word2vec.c does.

    Table entry j holds the word whose cumulative probability interval contains (j + 0.5) / size,
    so each word fills a share of the table within 1 / size of its probability; a draw is one
    uniform table index. Ids with count 0 (special tokens) are never drawn.
    """

    def __init__(self, counts: np.ndarray, power: float = UNIGRAM_POWER, table_size: int = 1_000_000):
        weights = np.asarray(counts, np.float64) ** power
        self.probabilities = weights / weights.sum()
        boundaries = np.cumsum(self.probabilities)
        points = (np.arange(table_size) + 0.5) / table_size
        last_seen = len(boundaries) - 1 - int(np.argmax(self.probabilities[::-1] > 0))
        self.table = np.minimum(np.searchsorted(boundaries, points, side="right"), last_seen).astype(np.int32)

    def sample(self, rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
        """int32 word ids of `shape`, drawn independently."""
        return self.table[rng.integers(0, len(self.table), shape)]


class Word2VecBatches(grain.IterDataset):
    """Fixed-size batches of subsampled skip-gram or CBOW examples with negatives, built an epoch at a time.

    Epoch e subsamples the whole token stream, makes every centre's examples in one vectorised pass
    (windows span the stream, which `chunk_length` only cuts into pieces to bound memory), shuffles
    them and cuts them into global batches of `batch_size * process_count`; this process takes rows
    [process_index * batch_size, (process_index + 1) * batch_size) of each, so processes hold
    disjoint parts of the same global batch. Negatives are drawn per global batch. Everything is a
    function of (seed, epoch, batch), so the iterator's state is that pair and a restore rebuilds
    the epoch. Building one epoch of Shakespeare (1.9M tokens) takes ~0.25 s, done ahead in a thread.
    Per-record Grain maps would cost a Python call per pair instead.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        *,
        batch_size: int,
        seed: int,
        mode: str = "skipgram",
        window: int = 5,
        num_negatives: int = 5,
        subsample_threshold: float = SUBSAMPLE_THRESHOLD,
        chunk_length: int = 1_000_000,
        num_epochs: int | None = 1,
        process_index: int = 0,
        process_count: int = 1,
    ):
        super().__init__()
        if mode not in ("skipgram", "cbow"):
            raise ValueError(f"word2vec mode must be 'skipgram' or 'cbow', got {mode!r}")
        self.tokens = np.asarray(tokens, np.int32)
        counts = np.bincount(self.tokens)
        self.keep_probability = keep_probabilities(counts, subsample_threshold)
        self.sampler = NegativeSampler(counts)
        self.make_examples = skipgram_pairs if mode == "skipgram" else cbow_examples
        self.batch_size, self.seed, self.window, self.num_negatives = batch_size, seed, window, num_negatives
        self.chunk_length, self.num_epochs = chunk_length, num_epochs
        self.rows = slice(process_index * batch_size, (process_index + 1) * batch_size)
        self.global_batch_size = batch_size * process_count

    def epoch_examples(self, epoch: int) -> Record:
        """All examples of `epoch`, shuffled, without negatives."""
        rng = np.random.default_rng([self.seed, epoch])
        kept = subsample(self.tokens, self.keep_probability, rng)
        pieces = [
            self.make_examples(kept[start : start + self.chunk_length], self.window, rng)
            for start in range(0, len(kept), self.chunk_length)
        ]
        examples = {key: np.concatenate([piece[key] for piece in pieces]) for key in pieces[0]}
        order = rng.permutation(len(examples["center"]))
        return {key: value[order] for key, value in examples.items()}

    def batch(self, examples: Record, epoch: int, index: int) -> Record:
        """This process's rows of global batch `index` of the epoch, with their negative words."""
        start = index * self.global_batch_size
        rows = slice(start + self.rows.start, start + self.rows.stop)
        batch = {key: value[rows] for key, value in examples.items()}
        negatives = self.sampler.sample(
            np.random.default_rng([self.seed, epoch, index]), (self.global_batch_size, self.num_negatives)
        )
        batch["negatives"] = negatives[self.rows]
        return batch

    def __iter__(self) -> _Word2VecIterator:
        return _Word2VecIterator(self)


class _Word2VecIterator(grain.DatasetIterator):
    """Walks (epoch, batch) through a `Word2VecBatches`; the pair is its checkpointed state.

    While one epoch is consumed, a background thread builds the next (numpy releases the GIL for
    most of it), so the step never waits for an epoch boundary.
    """

    def __init__(self, dataset: Word2VecBatches):
        super().__init__()
        self._dataset = dataset
        self._epoch, self._index = 0, 0
        self._examples: Record | None = None
        self._builder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="word2vec")
        self._next_epoch: tuple[int, concurrent.futures.Future] | None = None

    def _build(self, epoch: int) -> Record:
        """`epoch`'s examples, from the background build when it is the one prepared; starts the next."""
        if self._next_epoch is not None and self._next_epoch[0] == epoch:
            examples = self._next_epoch[1].result()
        else:
            examples = self._dataset.epoch_examples(epoch)
        last = self._dataset.num_epochs is not None and epoch + 1 >= self._dataset.num_epochs
        self._next_epoch = None if last else (epoch + 1, self._builder.submit(self._dataset.epoch_examples, epoch + 1))
        return examples

    def __next__(self) -> Record:
        dataset = self._dataset
        while True:
            if dataset.num_epochs is not None and self._epoch >= dataset.num_epochs:
                raise StopIteration
            if self._examples is None:
                self._examples = self._build(self._epoch)
                if len(self._examples["center"]) < dataset.global_batch_size:
                    raise DataError(
                        f"one epoch of this text gives {len(self._examples['center'])} word2vec examples, fewer "
                        f"than one batch of {dataset.global_batch_size}; use a longer text or a smaller batch"
                    )
            if (self._index + 1) * dataset.global_batch_size <= len(self._examples["center"]):
                break
            self._epoch, self._index, self._examples = self._epoch + 1, 0, None  # the ragged tail is dropped
        batch = dataset.batch(self._examples, self._epoch, self._index)
        self._index += 1
        return batch

    def get_state(self) -> dict[str, int]:
        return {"epoch": self._epoch, "batch": self._index}

    def set_state(self, state: dict[str, int]) -> None:
        if state["epoch"] != self._epoch:
            self._examples = None
        self._epoch, self._index = int(state["epoch"]), int(state["batch"])
