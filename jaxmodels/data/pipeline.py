"""Input pipelines: records -> fixed-shape numpy batches, for training and for evaluation.

Two ways to feed the train step, chosen by `config.data.loader`:
- resident: the whole (per-process) split as arrays on the device; the train step gathers
  its batch from a per-epoch permutation, so no Python runs per batch. Position = step.
- grain: a Grain `MapDataset` (shard -> shuffle -> batch -> repeat) read by background
  threads; its iterator state is saved in checkpoints. For data that does not fit.
Both read each epoch in the same order, `epoch_permutation(data_key, epoch, ...)` of this
process's shard, and drop each epoch's ragged tail: switching loaders never changes a run's data.
Evaluation covers every example exactly once: the last batch is padded and masked. A small eval split is
held as arrays; a large one (`StreamedExamples`) is read and preprocessed a batch at a time.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
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


def read_records(source: Sequence[dict], indices: Sequence[int]) -> list[dict]:
    """`source[indices]`, in one vectorised `__getitems__` call where the source has one (TFDS array_record
    sources decode a batch of records about twice as fast as one by one)."""
    if hasattr(source, "__getitems__"):
        return source.__getitems__(list(indices))
    return [source[i] for i in indices]


def load_arrays(source: Sequence[dict], preprocess: Preprocess, indices: np.ndarray) -> Example:
    """Reads and preprocesses `source[indices]` into one stacked array per feature."""
    records = read_records(source, indices.tolist())
    examples = [preprocess(record) for record in records]
    return {key: np.stack([example[key] for example in examples]) for key in examples[0]}


class StreamedExamples(Mapping[str, "StreamedColumn"]):
    """A split read on demand: `{key: column}` like the resident `{key: array}`, but each read preprocesses only
    the records it asks for, so the split's size never sets the memory it takes.

    `examples["inputs"][3]`, `examples["label"][:10]` and `len(examples["inputs"])` read as they do on arrays;
    `rows(positions)` gives the stacked examples at `positions` (what `padded_eval_batches` reads a batch with).
    Positions count this split's `indices` of `source` (this process's share). One record is preprocessed when
    the split is opened, for its keys, shapes and dtypes (an empty share still pads to the right batches).
    """

    def __init__(self, source: Sequence[dict], preprocess: Preprocess, indices: np.ndarray):
        self._source, self._preprocess, self._indices = source, preprocess, np.asarray(indices)
        first = preprocess(source[0])
        self._empty = {key: np.empty((0, *np.shape(value)), np.asarray(value).dtype) for key, value in first.items()}

    @property
    def num_examples(self) -> int:
        return len(self._indices)

    @property
    def nbytes(self) -> int:
        """What the split takes once read whole and preprocessed: one example's bytes times the examples."""
        return sum(math.prod(empty.shape[1:]) * empty.itemsize for empty in self._empty.values()) * self.num_examples

    def rows(self, positions: np.ndarray) -> Example:
        """The examples at `positions` (of this split), read and preprocessed now, stacked."""
        if len(positions) == 0:
            return dict(self._empty)
        return load_arrays(self._source, self._preprocess, self._indices[positions])

    def __getitem__(self, key: str) -> StreamedColumn:
        if key not in self._empty:
            raise KeyError(key)
        return StreamedColumn(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._empty)

    def __len__(self) -> int:
        return len(self._empty)


class StreamedColumn:
    """One feature of a `StreamedExamples` split, indexed as an array is (an integer, a slice, indices or a mask);
    only the records indexed are read."""

    def __init__(self, examples: StreamedExamples, key: str):
        self._examples, self._key = examples, key

    def __len__(self) -> int:
        return self._examples.num_examples

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self._no_rows.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self._no_rows.dtype

    @property
    def _no_rows(self) -> np.ndarray:
        return self._examples.rows(np.arange(0))[self._key]

    def __getitem__(self, index: Any) -> np.ndarray:
        positions = np.arange(len(self))[index]
        rows = self._examples.rows(np.atleast_1d(positions))[self._key]
        return rows if positions.ndim else rows[0]


class ExampleArrays:
    """Preprocessed examples held in host memory: decoded once, then read by fancy indexing.

    Decoding a TFDS record costs ~100-250 us in Python; indexing a batch out of arrays costs
    microseconds. Grain pipelines use this for splits that fit in host memory.
    """

    def __init__(self, arrays: Example):
        self.arrays = arrays

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, index: int) -> Example:
        return {key: array[index] for key, array in self.arrays.items()}

    def take(self, indices: np.ndarray) -> Example:
        """The examples at `indices`, stacked."""
        return {key: array[indices] for key, array in self.arrays.items()}


def epoch_permutation(data_key: jax.Array, epoch: int, num_examples: int, shuffle: bool = True) -> np.ndarray:
    """The order of examples in `epoch`: a pure function of (data key, epoch); stored order if not `shuffle`.

    Equal to `jax.random.permutation(jax.random.fold_in(data_key, epoch), num_examples)` (a test holds it
    to that), computed the same way, a stable sort by fresh random 32-bit keys in one or more rounds, but
    sorted here by numpy: XLA's CPU sort took 1.7 ms for 4,000 examples, a sixth of an MNIST-1D epoch's
    40 MLP steps; this takes 0.3 ms. Each round sorts 64-bit numbers, the key above the position, which are
    unique, so a plain sort gives the stable order.
    """
    order = np.arange(num_examples)
    if not shuffle:
        return order
    positions = order.astype(np.uint64)
    for keys in np.asarray(_sort_keys(data_key, epoch, num_examples)):
        ranked = np.sort((keys.astype(np.uint64) << np.uint64(32)) | positions) & np.uint64(0xFFFFFFFF)
        order = order[ranked.astype(np.int64)]
    return order


@functools.partial(jax.jit, static_argnums=2)
def _sort_keys(data_key: jax.Array, epoch: int, num_examples: int) -> jax.Array:
    """(rounds, num_examples) uint32: the sort keys of `jax.random.permutation`'s rounds, drawn as it draws them."""
    rounds = math.ceil(3 * math.log(max(1, num_examples)) / math.log(np.iinfo(np.uint32).max))
    key, keys = jax.random.fold_in(data_key, epoch), []
    for _ in range(rounds):
        key, subkey = jax.random.split(key)
        keys.append(jax.random.bits(subkey, (num_examples,), jnp.uint32))
    return jnp.stack(keys) if keys else jnp.zeros((0, num_examples), jnp.uint32)


def gather_batch(arrays: Example, permutation: jax.Array, step: jax.Array, batch_size: int) -> Example:
    """The batch for `step` within its epoch: a slice of the epoch's permutation, gathered on device."""
    steps_per_epoch = permutation.shape[0] // batch_size
    start = (step % steps_per_epoch) * batch_size
    indices = jax.lax.dynamic_slice_in_dim(permutation, start, batch_size)
    return jax.tree.map(lambda array: array[indices], arrays)


@dataclasses.dataclass(frozen=True, eq=False)
class EpochBatches:
    """Which records batch `i` of an endless stream holds: a slice of its epoch's `epoch_permutation`.

    The resident feed's order for the same data key, computed on the host once per epoch (the last
    two epochs are cached: Grain's read threads may straddle an epoch boundary); each epoch's ragged
    tail is dropped. We permute here rather than with Grain's `shuffle`, whose per-index cost (~100 us)
    made reading a batch of 100 cost ~10 ms.
    """

    num_examples: int
    batch_size: int
    data_key: jax.Array
    shuffle: bool = True

    @functools.lru_cache(maxsize=2)  # noqa: B019  (hashed by identity; lives as long as its pipeline)
    def order(self, epoch: int) -> np.ndarray:
        return epoch_permutation(self.data_key, epoch, self.num_examples, self.shuffle)

    def __call__(self, batch_index: int) -> np.ndarray:
        epoch, position = divmod(batch_index, self.num_examples // self.batch_size)
        return self.order(epoch)[position * self.batch_size : (position + 1) * self.batch_size]


def grain_train_dataset(
    source: Sequence[dict] | ExampleArrays,
    preprocess: Preprocess | None,
    *,
    batch_size: int,
    data_key: jax.Array,
    shuffle: bool = True,
    process_index: int = 0,
    process_count: int = 1,
    threads: int = 2,
    buffer: int = 8,
) -> grain.IterDataset:
    """Endless batches: this process's shard, reshuffled every epoch, ragged tail of each epoch dropped.

    The batches are the resident feed's for the same `data_key` (a typed key, e.g. `jax.random.key(0)`):
    process `process_index` reads `shard_indices` of the source in its epochs' `epoch_permutation`.
    Each batch is read with one vectorised `__getitems__` call (TFDS decodes records about twice as
    fast as one at a time) or, from `ExampleArrays` (already preprocessed), by one fancy index
    per feature. Grain runs TFDS reads in background threads and checkpoints the position. A fancy
    index costs ~30 us, less than handing a batch over from a Grain thread (~140 us), so cached
    arrays are read in the calling thread: 32,000 vs 7,000 batches/s of 100 MNIST-1D examples.
    Grain worker processes (`mp_prefetch`) compute the epoch orders with JAX: start them with
    `worker_init_fn=cpu_only_worker`.
    """
    cached = isinstance(source, ExampleArrays)
    read = source.take if cached else functools.partial(load_arrays, source, preprocess)
    local = shard_indices(len(source), process_index, process_count)
    batches = EpochBatches(len(local), batch_size, data_key, shuffle)
    steps = steps_per_epoch(len(local), batch_size)
    dataset = grain.MapDataset.range(steps).repeat(None).map_with_index(lambda i, _: read(local[batches(i)]))
    return dataset.to_iter_dataset(grain.ReadOptions(num_threads=0 if cached else threads, prefetch_buffer_size=buffer))


def cpu_only_worker(worker_index: int, worker_count: int) -> None:
    """A Grain `worker_init_fn`: the worker process's JAX runs on the CPU only.

    Workers compute epoch orders with JAX; without this, each would initialise every accelerator
    backend and claim its memory (JAX preallocates most of a GPU's memory per process).
    """
    del worker_index, worker_count
    jax.config.update("jax_platforms", "cpu")


def steps_per_epoch(num_examples: int, batch_size: int, what: str = "train split") -> int:
    """Full batches in one epoch; errors out if the split cannot fill a single batch."""
    if num_examples < batch_size:
        raise DataError(
            f"the {what} has {num_examples} examples on this process, fewer than data.batch_size={batch_size}; "
            "lower data.batch_size"
        )
    return num_examples // batch_size


def padded_eval_batches(
    examples: Example | StreamedExamples, batch_size: int, num_batches: int | None = None
) -> Iterator[Example]:
    """Fixed-size batches covering every example once; padding rows have `valid` False.

    A `StreamedExamples` split is read batch by batch, as the batches are asked for. `num_batches` lets every
    process yield the same number of batches in multi-process runs.
    """
    num_examples = len(next(iter(examples.values())))
    num_batches = num_batches or math.ceil(num_examples / batch_size)
    for start in range(0, num_batches * batch_size, batch_size):
        real = max(0, min(batch_size, num_examples - start))
        if isinstance(examples, StreamedExamples):
            rows = examples.rows(np.arange(start, start + real))
        else:
            rows = {key: array[start : start + real] for key, array in examples.items()}
        batch = {}
        for key, array in rows.items():
            padded = np.zeros((batch_size, *array.shape[1:]), array.dtype)
            padded[:real] = array
            batch[key] = padded
        batch["valid"] = np.arange(batch_size) < real
        yield batch
