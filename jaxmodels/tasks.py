"""Tasks: what a model's outputs are scored against — the loss to minimise and the metrics to report.

A task turns a batch into model inputs and (outputs, batch) into a scalar loss plus metric
*sums* with an example `count`. Sums add up exactly across steps, devices and padded eval
batches (padding rows have mask 0); `summarize` divides by the count at the end, so every
metric is an average over examples, not over batches.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxmodels.errors import ConfigError

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


class Task(Protocol):
    """The interface every task implements."""

    def model_inputs(self, batch: Batch) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword arguments for `model.apply` (besides variables and `train`)."""

    def loss_and_metrics(self, outputs: jax.Array, batch: Batch) -> tuple[jax.Array, Metrics]:
        """Mean loss over the batch's real examples, and metric sums including `count`."""


def example_weights(batch: Batch) -> jax.Array:
    """1.0 for real examples, 0.0 for padding (batches without a mask are all real)."""
    label = batch["label"]
    mask = batch.get("mask")
    return jnp.ones(label.shape[:1], jnp.float32) if mask is None else mask.astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Classify:
    """Softmax cross-entropy (optionally label-smoothed) and top-1 accuracy."""

    label_smoothing: float = 0.0

    def model_inputs(self, batch: Batch) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (batch["inputs"],), {}

    def loss_and_metrics(self, outputs: jax.Array, batch: Batch) -> tuple[jax.Array, Metrics]:
        targets = jax.nn.one_hot(batch["label"], outputs.shape[-1])
        if self.label_smoothing:
            targets = optax.smooth_labels(targets, self.label_smoothing)
        losses = optax.softmax_cross_entropy(outputs.astype(jnp.float32), targets)
        weights = example_weights(batch)
        count = weights.sum()
        loss_sum = (losses * weights).sum()
        correct = ((jnp.argmax(outputs, -1) == batch["label"]) * weights).sum()
        return loss_sum / jnp.maximum(count, 1.0), {"loss": loss_sum, "accuracy": correct, "count": count}


def make_task(config: ml_collections.ConfigDict) -> Task:
    """The task named by `config.task.name`."""
    if config.task.name == "classify":
        return Classify(label_smoothing=config.task.label_smoothing)
    raise ConfigError(f"unknown task {config.task.name!r} (config key task.name); choose classify")


def summarize(sums: dict[str, Any]) -> dict[str, float]:
    """Metric sums -> per-example averages (plain floats), dropping the count."""
    sums = jax.device_get(sums)
    count = max(float(np.asarray(sums["count"])), 1.0)
    return {key: float(np.asarray(value)) / count for key, value in sums.items() if key != "count"}
