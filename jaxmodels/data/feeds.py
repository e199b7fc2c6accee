"""Feeds: how the train loop hands each step its batch, behind one small interface.

`args_for_step(step)` returns the extra arguments of the compiled step and
`select_batch(step, *args)` (traced inside that step) turns them into the batch, so a
resident dataset is gathered where it lives while a streamed one arrives ready-made.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grain
import jax
import numpy as np

from jaxmodels.absl_compat import flags_marked_parsed
from jaxmodels.data.pipeline import Example, cpu_only_worker, epoch_permutation, gather_batch, steps_per_epoch


class ResidentFeed:
    """The whole split lives in memory; each step's batch is gathered from the epoch's permutation.

    The data order is a pure function of (data seed, step), so a resumed run needs nothing but
    the step to continue exactly where it stopped.
    """

    checkpoint_item = None

    def __init__(
        self, arrays: Example, batch_size: int, data_key: jax.Array, shuffle: bool = True, strategy: Any = None
    ):
        """`strategy` (jaxmodels.parallel) places the arrays: replicated on every device, where the step gathers
        its batch; under pmap each device gathers its own rows of the batch; where the strategy asks for host
        batches (a multi-process jit run, one CPU device) they stay in host memory and are gathered there."""
        num_examples = len(next(iter(arrays.values())))
        self.steps_per_epoch = steps_per_epoch(num_examples, batch_size)
        self.example_batch = {key: array[:batch_size] for key, array in arrays.items()}
        self._strategy = strategy
        self._on_host = strategy is not None and strategy.host_batches
        num_parts = 1 if strategy is None else strategy.num_parts
        if self._on_host:
            self._arrays = arrays
        else:
            self._arrays = jax.device_put(arrays) if strategy is None else strategy.put_replicated(arrays)
        permutation_of = functools.partial(
            _permutation, data_key, num_examples=num_examples, shuffle=shuffle, batch_size=batch_size, parts=num_parts
        )
        self._permutation_of = permutation_of
        self._order_of = OneEpochAhead(lambda epoch: self._placed(permutation_of(epoch)))
        self._epoch, self._permutation = -1, None
        self.select_batch = (
            _take_batch if self._on_host else functools.partial(_gather, batch_size=batch_size // num_parts)
        )
        self._batch_size = batch_size

    def _placed(self, permutation: np.ndarray) -> Any:
        """The epoch's order (numpy) where the step reads it: kept on the host for a host-side gather, split by
        rows under pmap (row d to device d), else on the device(s)."""
        if self._on_host:
            return permutation
        if self._strategy is not None and self._strategy.num_parts > 1:
            return self._strategy.place_batch(permutation.reshape(-1))
        if self._strategy is not None:
            return self._strategy.put_replicated(permutation)
        return jax.device_put(permutation)

    def args_for_step(self, step: int) -> tuple[Any, ...]:
        epoch = step // self.steps_per_epoch
        if epoch != self._epoch:  # drawn one epoch ahead (`OneEpochAhead`)
            self._epoch, self._permutation = epoch, self._order_of(epoch)
        if self._on_host:  # gather here (this process's rows of a multi-process batch), then place the batch
            start = (step % self.steps_per_epoch) * self._batch_size
            rows = self._permutation[start : start + self._batch_size]
            return (self._strategy.place_batch({key: array[rows] for key, array in self._arrays.items()}),)
        return self._arrays, self._permutation

    def example_args(self) -> tuple[Any, ...]:
        """Arguments shaped and placed as `args_for_step` returns them (for compiling the step), drawn from
        `example_batch` and epoch 0's order without touching the feed's own epoch state."""
        if self._on_host:
            return (self._strategy.place_batch(self.example_batch),)
        return self._arrays, self._placed(self._permutation_of(0))


class OneEpochAhead:
    """`epoch_value(epoch)`, the next epoch's computed on a background thread while this epoch's steps run.

    Drawing an epoch's order takes about 0.4 ms (its random sort keys on the device, then a numpy sort) and, done
    when the epoch began, it also made the host wait for the device's queue of steps to drain: 11 % of the
    MNIST-1D MLP's time (40 steps of 0.25 ms an epoch). A value is a pure function of the epoch, so computing it
    early changes nothing but when; a jump (a resumed run, a test) computes the asked epoch in place.
    """

    def __init__(self, epoch_value: Callable[[int], Any]):
        self._epoch_value = epoch_value
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxmodels-next-epoch")
        self._next: tuple[int, Future] | None = None

    def __call__(self, epoch: int) -> Any:
        ahead = self._next
        value = ahead[1].result() if ahead is not None and ahead[0] == epoch else self._epoch_value(epoch)
        self._next = (epoch + 1, self._executor.submit(self._epoch_value, epoch + 1))
        return value


def _permutation(
    data_key: jax.Array, epoch: int, *, num_examples: int, shuffle: bool, batch_size: int, parts: int
) -> np.ndarray:
    """The epoch's order; with `parts` > 1, (parts, steps * batch_size / parts): row d holds, step after step,
    the d-th slice of every batch, so device d gathering with `gather_batch` gets its slice of the global batch."""
    permutation = epoch_permutation(data_key, epoch, num_examples, shuffle)
    if parts == 1:
        return permutation
    steps = num_examples // batch_size
    local = permutation[: steps * batch_size].reshape(steps, parts, batch_size // parts)
    return local.swapaxes(0, 1).reshape(parts, -1)


def _take_batch(step: jax.Array, batch: Example) -> Example:
    del step
    return batch


def _gather(step: jax.Array, arrays: Example, permutation: jax.Array, *, batch_size: int) -> Example:
    return gather_batch(arrays, permutation, step, batch_size)


class GrainFeed:
    """Batches stream from a Grain iterator (background threads, or `workers` processes); its position is
    checkpointed."""

    def __init__(self, dataset: grain.IterDataset, strategy: Any = None, workers: int = 0):
        # The example batch (for shapes) comes from a fresh iterator in this process: the real one stays untouched
        # and no second set of worker processes is started for one batch.
        self.example_batch = next(iter(dataset))
        self.checkpoint_item = iter(_with_workers(dataset, workers))
        self._place = (lambda batch: batch) if strategy is None else strategy.place_batch

    def args_for_step(self, step: int) -> tuple[Example]:
        del step  # the iterator's own state tracks the position
        return (self._place(next(self.checkpoint_item)),)

    def example_args(self) -> tuple[Example]:
        """`example_batch` placed as `args_for_step` places a batch (for compiling the step); the iterator does
        not move on."""
        return (self._place(self.example_batch),)

    @staticmethod
    def select_batch(step: jax.Array, batch: Example) -> Example:
        del step
        return batch


def _with_workers(dataset: grain.IterDataset, workers: int) -> grain.IterDataset:
    """Moves the pipeline into `workers` processes (Grain multiprocess prefetch); 0 keeps it in threads."""
    if not workers:
        return dataset
    flags_marked_parsed()  # Grain's workers read absl flags
    options = grain.MultiprocessingOptions(num_workers=workers)
    return dataset.mp_prefetch(options, worker_init_fn=cpu_only_worker)  # workers leave accelerators alone


class StreamedEvalBatches:
    """The eval batches of a split too large to keep (`pipeline.StreamedExamples`), read again at each evaluation.

    Iterating reads the padded batches from `read_batches()` one batch ahead on a background thread (the records
    of batch i+1 are read and preprocessed while batch i is evaluated) and places each with `place` just before
    it is yielded, so at most two host batches and one placed batch are alive, whatever the split's size.
    """

    def __init__(self, read_batches: Callable[[], Iterator[Example]], place: Callable[[Example], Any]):
        self._read_batches, self._place = read_batches, place

    def __iter__(self) -> Iterator[Any]:
        batches = self._read_batches()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxmodels-eval-batches") as executor:
            ahead = executor.submit(next, batches, None)
            while (batch := ahead.result()) is not None:
                ahead = executor.submit(next, batches, None)
                yield self._place(batch)
