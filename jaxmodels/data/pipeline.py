"""Input pipelines: records -> fixed-shape numpy batches, for training and for evaluation.

Two ways to feed the train step, chosen by `config.data.loader`:
- resident: the whole (per-process) split as arrays on the device; the train step gathers
  its batch from a per-epoch permutation, so no Python runs per batch. Position = step.
- grain: a Grain `MapDataset` (shard -> shuffle -> batch -> repeat) read by background
  threads; its iterator state is saved in checkpoints. For data that does not fit.
Both shuffle by a seeded per-epoch permutation and drop each epoch's ragged tail.
Evaluation covers every example exactly once: the last batch is padded and masked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grain
import jax
import jax.numpy as jnp
import numpy as np

from jaxmodels.errors import DataError

Example = dict[str, np.ndarray]
Preprocess = Callable[[dict[str, Any]], Example]


def shard_indices(num_records: int, process_index: int, process_count: int) -> np.ndarray:
    """Record indices this process reads: a strided, disjoint slice; all processes together cover all."""
    return np.arange(process_index, num_records, process_count)


def load_arrays(source: Sequence[dict], preprocess: Preprocess, indices: np.ndarray) -> Example:
    """Reads and preprocesses `source[indices]` into one stacked array per feature."""
    records = source.__getitems__(indices.tolist()) if hasattr(source, "__getitems__") else [source[i] for i in indices]
    examples = [preprocess(record) for record in records]
    return {key: np.stack([example[key] for example in examples]) for key in examples[0]}


def epoch_permutation(seed: jax.Array, epoch: jax.Array, num_examples: int, shuffle: bool = True) -> jax.Array:
    """The order of examples in `epoch`: a pure function of (data seed, epoch); stored order if not `shuffle`."""
    if not shuffle:
        return jnp.arange(num_examples)
    return jax.random.permutation(jax.random.fold_in(seed, epoch), num_examples)


def gather_batch(arrays: Example, permutation: jax.Array, step: jax.Array, batch_size: int) -> Example:
    """The batch for `step` within its epoch: a slice of the epoch's permutation, gathered on device."""
    steps_per_epoch = permutation.shape[0] // batch_size
    start = (step % steps_per_epoch) * batch_size
    indices = jax.lax.dynamic_slice_in_dim(permutation, start, batch_size)
    return jax.tree.map(lambda array: array[indices], arrays)


def grain_train_dataset(
    source: Sequence[dict],
    preprocess: Preprocess,
    *,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
    process_index: int = 0,
    process_count: int = 1,
    threads: int = 2,
    buffer: int = 8,
) -> grain.IterDataset:
    """Endless batches: this process's shard, reshuffled every epoch, ragged tail of each epoch dropped.

    Shuffling and batching act on record indices; each batch is then read with one vectorised
    `__getitems__` call, which decodes TFDS records about twice as fast as one read per record.
    """
    dataset = grain.MapDataset.range(len(source))[process_index::process_count]
    if shuffle:
        dataset = dataset.shuffle(seed=seed)
    dataset = (
        dataset.batch(batch_size, drop_remainder=True)
        .map(lambda indices: load_arrays(source, preprocess, indices))
        .repeat(None)  # reseeds the shuffle each epoch
    )
    return dataset.to_iter_dataset(grain.ReadOptions(num_threads=threads, prefetch_buffer_size=buffer))


def steps_per_epoch(num_examples: int, batch_size: int, what: str = "train split") -> int:
    """Full batches in one epoch; errors out if the split cannot fill a single batch."""
    if num_examples < batch_size:
        raise DataError(
            f"the {what} has {num_examples} examples on this process, fewer than data.batch_size={batch_size}; "
            "lower data.batch_size"
        )
    return num_examples // batch_size


def padded_eval_batches(arrays: Example, batch_size: int, num_batches: int | None = None) -> Iterator[Example]:
    """Fixed-size batches covering every example once; padding rows have `valid` False.

    `num_batches` lets every process yield the same number of batches in multi-process runs.
    """
    num_examples = len(next(iter(arrays.values())))
    num_batches = num_batches or math.ceil(num_examples / batch_size)
    for start in range(0, num_batches * batch_size, batch_size):
        real = max(0, min(batch_size, num_examples - start))
        batch = {}
        for key, array in arrays.items():
            padded = np.zeros((batch_size, *array.shape[1:]), array.dtype)
            padded[:real] = array[start : start + real]
            batch[key] = padded
        batch["valid"] = np.arange(batch_size) < real
        yield batch
