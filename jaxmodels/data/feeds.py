"""Feeds: how the train loop hands each step its batch, behind one small interface.

`args_for_step(step)` returns the extra arguments of the compiled step and
`select_batch(step, *args)` (traced inside that step) turns them into the batch, so a
resident dataset is sliced on the device while a streamed one arrives ready-made.
"""

from __future__ import annotations

import functools
from typing import Any

import grain
import jax
import numpy as np

from jaxmodels.data.pipeline import Example, epoch_permutation, gather_batch, steps_per_epoch


class ResidentFeed:
    """The whole split lives on the device; the step gathers its batch from the epoch's permutation.

    The data order is a pure function of (data seed, step), so a resumed run needs nothing but
    the step to continue exactly where it stopped.
    """

    checkpoint_item = None

    def __init__(self, arrays: Example, batch_size: int, data_key: jax.Array, shuffle: bool = True):
        num_examples = len(next(iter(arrays.values())))
        self.steps_per_epoch = steps_per_epoch(num_examples, batch_size)
        self.example_batch = {key: array[:batch_size] for key, array in arrays.items()}
        self._arrays = jax.device_put(arrays)
        self._permutation_of = jax.jit(
            functools.partial(epoch_permutation, data_key, num_examples=num_examples, shuffle=shuffle)
        )
        self._epoch, self._permutation = -1, None
        self.select_batch = functools.partial(_gather, batch_size=batch_size)

    def args_for_step(self, step: int) -> tuple[Any, ...]:
        epoch = step // self.steps_per_epoch
        if epoch != self._epoch:  # one small dispatch per epoch, none per step
            self._epoch, self._permutation = epoch, self._permutation_of(epoch)
        return self._arrays, self._permutation


def _gather(step: jax.Array, arrays: Example, permutation: jax.Array, *, batch_size: int) -> Example:
    return gather_batch(arrays, permutation, step, batch_size)


class GrainFeed:
    """Batches stream from a Grain iterator (background threads); its position is checkpointed."""

    def __init__(self, dataset: grain.IterDataset):
        self.checkpoint_item = iter(dataset)
        self.example_batch = next(iter(dataset))  # a fresh iterator, so the real one is untouched

    def args_for_step(self, step: int) -> tuple[Example]:
        del step  # the iterator's own state tracks the position
        return (next(self.checkpoint_item),)

    @staticmethod
    def select_batch(step: jax.Array, batch: Example) -> Example:
        del step
        return batch


def example_shapes(batch: Example) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shapes and dtypes of a batch, for error messages and logs."""
    return {key: (array.shape, array.dtype) for key, array in batch.items()}
