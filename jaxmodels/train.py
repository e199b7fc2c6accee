"""The pure functions every entry point shares: initialise a train state, one train step, one eval step.

`train_step(state, batch, rng) -> (state, metrics)` has no side effects: the same state,
batch and RNG key give the same new state bit for bit. Models, tasks and optimizers are bound
with `functools.partial` before `jax.jit`, so one compiled step serves every model family.
"""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxmodels.tasks import Batch, Metrics, Task


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training; a pytree, so it jits, shards and checkpoints as is.

    `model_state` holds the model's non-trainable collections, e.g. {'batch_stats': ...}.
    """

    step: jax.Array
    params: Any
    opt_state: optax.OptState
    model_state: dict[str, Any]


def create_train_state(
    model: nn.Module, task: Task, tx: optax.GradientTransformation, example_batch: Batch, rng: jax.Array
) -> TrainState:
    """Initialises parameters (from `rng`) and optimizer state for batches shaped like `example_batch`."""
    args, kwargs = task.model_inputs(example_batch)
    params_rng, dropout_rng = jax.random.split(rng)
    variables = model.init({"params": params_rng, "dropout": dropout_rng}, *args, train=False, **kwargs)
    params = variables.pop("params")
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), model_state=variables)


def train_step(
    state: TrainState,
    batch: Batch,
    rng: jax.Array,
    *,
    model: nn.Module,
    task: Task,
    tx: optax.GradientTransformation,
    skip_nonfinite: bool = False,
) -> tuple[TrainState, Metrics]:
    """One gradient step on `batch`; `rng` feeds dropout. Returns the new state and metric sums.

    With `skip_nonfinite`, a step whose loss, gradients or resulting state hold a NaN or infinity changes
    nothing but the step counter: its metrics are zeros and `skipped_steps` (also in the metrics) is 1.
    """
    args, kwargs = task.model_inputs(batch)
    mutable = list(state.model_state)

    def loss_fn(params: Any) -> tuple[jax.Array, tuple[Metrics, dict[str, Any]]]:
        variables = {"params": params, **state.model_state}
        outputs = model.apply(variables, *args, train=True, rngs={"dropout": rng}, mutable=mutable or False, **kwargs)
        outputs, model_state = outputs if mutable else (outputs, {})
        loss, metrics = task.loss_and_metrics(outputs, batch)
        return loss, (metrics, model_state)

    (loss, (metrics, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
        model_state=model_state,
    )
    if skip_nonfinite:
        finite = all_finite((loss, grads, new_state))
        kept = state.replace(step=state.step + 1)
        new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, kept)
        metrics = {key: jnp.where(finite, value, jnp.zeros_like(value)) for key, value in metrics.items()}
        metrics["skipped_steps"] = jnp.logical_not(finite).astype(jnp.float32)
    return new_state, metrics


def all_finite(tree: Any) -> jax.Array:
    """A scalar bool: no floating-point leaf of `tree` holds a NaN or infinity."""
    leaves = [jnp.isfinite(leaf).all() for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.inexact)]
    return jnp.stack(leaves).all() if leaves else jnp.array(True)


def eval_step(state: TrainState, batch: Batch, *, model: nn.Module, task: Task) -> Metrics:
    """Metric sums of the model in inference mode (dropout off, frozen statistics) on `batch`."""
    args, kwargs = task.model_inputs(batch)
    outputs = model.apply({"params": state.params, **state.model_state}, *args, train=False, **kwargs)
    return task.loss_and_metrics(outputs, batch)[1]
