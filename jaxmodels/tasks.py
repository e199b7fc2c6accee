"""Tasks: what a model's outputs are scored against — the loss to minimise and the metrics to report.

A task turns a batch into model inputs and (outputs, batch) into a scalar loss plus metric
*sums* with a `count` (examples, or tokens for sequence tasks). Sums add up exactly across
steps, devices and padded eval batches (padding rows have `valid` False); `summarize` divides by
the count at the end, so every metric is an average over examples or tokens, never over batches.

Batch keys each task reads (every batch may also carry `valid`, (batch,) bool, for eval padding):
  classify   inputs, label; optional token_mask and segments for token inputs (RNN, BERT)
  lm         inputs, targets (batch, time) — targets are inputs shifted left by one
  mlm        inputs, targets, target_weights (1 at masked positions); optional segments, token_mask
  seq2seq    source, target_inputs, targets; optional source_mask, target_weights
  word2vec   inputs (centre ids, or context windows with context_mask for CBOW), positives, negatives

Adding a task: write its class here and decorate it with `@register_task(name, view=...)`, naming the data view
it trains on (`jaxmodels.data.views.VIEWS`); the dataclass fields of the class are its config keys
(`config.task.<field>`, defaults taken from the class). Config validation, its error messages and the config
schema all read this registry.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmodels.errors import ConfigError

if TYPE_CHECKING:
    import ml_collections

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
ModelInputs = tuple[tuple[Any, ...], dict[str, Any]]


class Task(Protocol):
    """The interface every task implements."""

    def model_inputs(self, batch: Batch) -> ModelInputs:
        """Positional and keyword arguments for `model.apply` (besides variables and `train`)."""

    def loss_and_metrics(self, outputs: Any, batch: Batch) -> tuple[jax.Array, Metrics]:
        """Mean loss over the batch's real examples/tokens, and metric sums including `count`."""

    def derived_metrics(self, averages: dict[str, float]) -> dict[str, float]:
        """Metrics computed from the averages (perplexity from loss, ...)."""


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A registered task: its class (whose fields are its config keys) and the data view it trains on."""

    name: str
    cls: type
    view: str

    def config_defaults(self) -> dict[str, Any]:
        """{config key: default} of this task: the fields of its class."""
        return {field.name: field.default for field in dataclasses.fields(self.cls)}


TASKS: dict[str, TaskSpec] = {}


def register_task(name: str, *, view: str) -> Callable[[type], type]:
    """Class decorator: makes a task selectable as `config.task.name = name`, trained on data view `view`."""

    def decorate(cls: type) -> type:
        if name in TASKS:
            raise ValueError(f"task {name!r} is registered twice")
        TASKS[name] = TaskSpec(name, cls, view)
        return cls

    return decorate


def task_spec(name: str) -> TaskSpec:
    """The registered task `name`; ConfigError naming the valid choices otherwise."""
    if name not in TASKS:
        close = difflib.get_close_matches(str(name), list(TASKS), n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"config key 'task.name' is {name!r}; choose one of {', '.join(TASKS)}.{hint}")
    return TASKS[name]


def task_config_defaults() -> dict[str, Any]:
    """Every task's config keys with their defaults: the `task` section of the config schema."""
    defaults: dict[str, Any] = {}
    for spec in TASKS.values():
        for key, value in spec.config_defaults().items():
            if defaults.setdefault(key, value) != value:
                raise ValueError(f"tasks declare config key task.{key} with different defaults")
    return defaults


def example_weights(batch: Batch, num_examples: int) -> jax.Array:
    """1.0 for real examples, 0.0 for eval padding (batches without `valid` are all real)."""
    valid = batch.get("valid")
    return jnp.ones((num_examples,), jnp.float32) if valid is None else valid.astype(jnp.float32)


def _optional(batch: Batch, **names: str) -> dict[str, Any]:
    """Keyword arguments for the model from the batch keys that are present: {kwarg: batch[key]}."""
    return {kwarg: batch[key] for kwarg, key in names.items() if key in batch}


def _token_cross_entropy(
    logits: jax.Array, targets: jax.Array, weights: jax.Array, label_smoothing: float = 0.0
) -> tuple[jax.Array, Metrics]:
    """Weighted softmax cross-entropy and accuracy over any leading shape; weights 0 ignore a position."""
    onehot = jax.nn.one_hot(targets, logits.shape[-1])
    if label_smoothing:
        onehot = optax.smooth_labels(onehot, label_smoothing)
    losses = optax.softmax_cross_entropy(logits.astype(jnp.float32), onehot)
    count = weights.sum()
    loss_sum = (losses * weights).sum()
    correct = ((jnp.argmax(logits, -1) == targets) * weights).sum()
    return loss_sum / jnp.maximum(count, 1.0), {"loss": loss_sum, "accuracy": correct, "count": count}


@register_task("classify", view="records")
@dataclasses.dataclass(frozen=True)
class Classify:
    """Softmax cross-entropy (optionally label-smoothed) and top-1 accuracy, one label per example."""

    label_smoothing: float = 0.0  # Szegedy et al. (2016), section 7: targets (1 - e) one-hot + e / classes

    def __post_init__(self) -> None:
        smoothing = self.label_smoothing
        if isinstance(smoothing, bool) or not isinstance(smoothing, int | float) or not 0 <= smoothing < 1:
            raise ConfigError(f"config key 'task.label_smoothing' must be in [0, 1), got {smoothing!r}")

    def model_inputs(self, batch: Batch) -> ModelInputs:
        return (batch["inputs"],), _optional(batch, mask="token_mask", segments="segments")

    def loss_and_metrics(self, outputs: jax.Array, batch: Batch) -> tuple[jax.Array, Metrics]:
        weights = example_weights(batch, outputs.shape[0])
        return _token_cross_entropy(outputs, batch["label"], weights, self.label_smoothing)

    def derived_metrics(self, averages: dict[str, float]) -> dict[str, float]:
        return {}


def _per_token_weights(batch: Batch, targets: jax.Array, key: str) -> jax.Array:
    weights = batch[key].astype(jnp.float32) if key in batch else jnp.ones(targets.shape, jnp.float32)
    return weights * example_weights(batch, targets.shape[0])[:, None]


@register_task("lm", view="lm_windows")
@dataclasses.dataclass(frozen=True)
class LanguageModel:
    """Causal language modelling: next-token cross-entropy; perplexity and bits per token derived."""

    def model_inputs(self, batch: Batch) -> ModelInputs:
        return (batch["inputs"],), {}

    def loss_and_metrics(self, outputs: jax.Array, batch: Batch) -> tuple[jax.Array, Metrics]:
        weights = _per_token_weights(batch, batch["targets"], "target_weights")
        return _token_cross_entropy(outputs, batch["targets"], weights)

    def derived_metrics(self, averages: dict[str, float]) -> dict[str, float]:
        return {"perplexity": math.exp(min(averages["loss"], 50.0)), "bits_per_token": averages["loss"] / math.log(2)}


@register_task("mlm", view="mlm_windows")
@dataclasses.dataclass(frozen=True)
class MaskedLanguageModel:
    """BERT's masked-LM objective: cross-entropy on the masked positions only (target_weights = 1)."""

    def model_inputs(self, batch: Batch) -> ModelInputs:
        return (batch["inputs"],), _optional(batch, mask="token_mask", segments="segments")

    def loss_and_metrics(self, outputs: jax.Array, batch: Batch) -> tuple[jax.Array, Metrics]:
        weights = _per_token_weights(batch, batch["targets"], "target_weights")
        return _token_cross_entropy(outputs, batch["targets"], weights)

    def derived_metrics(self, averages: dict[str, float]) -> dict[str, float]:
        return {"perplexity": math.exp(min(averages["loss"], 50.0))}


@register_task("seq2seq", view="reversal")
@dataclasses.dataclass(frozen=True)
class SequenceToSequence:
    """Teacher-forced cross-entropy of the decoder over the target tokens; accuracy per token."""

    def model_inputs(self, batch: Batch) -> ModelInputs:
        return (batch["source"], batch["target_inputs"]), _optional(batch, source_mask="source_mask")

    def loss_and_metrics(self, outputs: jax.Array, batch: Batch) -> tuple[jax.Array, Metrics]:
        weights = _per_token_weights(batch, batch["targets"], "target_weights")
        return _token_cross_entropy(outputs, batch["targets"], weights)

    def derived_metrics(self, averages: dict[str, float]) -> dict[str, float]:
        return {}


@register_task("word2vec", view="word2vec")
@dataclasses.dataclass(frozen=True)
class Word2Vec:
    """Negative sampling (Mikolov et al. 2013b, Eq. 4): -log sigmoid(v'_o.h) - sum_k log sigmoid(-v'_k.h) per pair.

    `accuracy` is the fraction of pairs whose true word outscores every noise word.
    """

    def model_inputs(self, batch: Batch) -> ModelInputs:
        return (batch["inputs"], batch["positives"], batch["negatives"]), _optional(batch, mask="context_mask")

    def loss_and_metrics(self, outputs: tuple[jax.Array, jax.Array], batch: Batch) -> tuple[jax.Array, Metrics]:
        positive, negative = (o.astype(jnp.float32) for o in outputs)
        losses = -jax.nn.log_sigmoid(positive) - jax.nn.log_sigmoid(-negative).reshape(negative.shape[0], -1).sum(-1)
        weights = example_weights(batch, positive.shape[0])
        count = weights.sum()
        loss_sum = (losses * weights).sum()
        best = positive > negative.reshape(negative.shape[0], -1).max(-1)
        return loss_sum / jnp.maximum(count, 1.0), {
            "loss": loss_sum,
            "accuracy": (best * weights).sum(),
            "count": count,
        }

    def derived_metrics(self, averages: dict[str, float]) -> dict[str, float]:
        return {}


def make_task(config: ml_collections.ConfigDict) -> Task:
    """The task named by `config.task.name`, built from its config keys."""
    spec = task_spec(config.task.name)
    return spec.cls(**{key: config.task[key] for key in spec.config_defaults()})


def summarize(sums: dict[str, Any], task: Task | None = None) -> dict[str, float]:
    """Metric sums -> per-example (or per-token) averages as plain floats, plus the task's derived metrics."""
    sums = jax.device_get(sums)
    count = float(np.asarray(sums["count"]))
    if count == 0:  # e.g. a logging window whose steps were all skipped (train.on_nonfinite=skip): no average
        return {}
    averages = {key: float(np.asarray(value)) / count for key, value in sums.items() if key != "count"}
    return averages | (task.derived_metrics(averages) if task is not None else {})
