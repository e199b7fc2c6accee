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


REMAT_POLICIES = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,  # keep nothing, recompute the whole forward pass
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,  # keep matmul outputs, recompute the rest
}


def train_step(
    state: TrainState,
    batch: Batch,
    rng: jax.Array,
    *,
    model: nn.Module,
    task: Task,
    tx: optax.GradientTransformation,
    axis_name: str | None = None,
    accumulate_steps: int = 1,
    compute_dtype: str = "float32",
    remat: str = "none",
    skip_nonfinite: bool = False,
) -> tuple[TrainState, Metrics]:
    """One gradient step on `batch`; `rng` feeds dropout. Returns the new state and metric sums.

    `axis_name`: inside `jax.pmap`, gradients are averaged and metrics summed over that axis.
    `accumulate_steps` > 1 splits the batch into that many micro-batches (rows i, i+k, i+2k, ... form
    micro-batch i) and averages their gradients, which equals one step on the whole batch except for BatchNorm
    (statistics per micro-batch) and dropout masks; activations are only held for one micro-batch at a time.
    `compute_dtype='bfloat16'` runs the model in bfloat16 on float32 master parameters (mixed precision).
    `remat` recomputes activations in the backward pass instead of storing them (`REMAT_POLICIES`).
    With `skip_nonfinite`, a step whose loss, gradients or resulting state hold a NaN or infinity changes
    nothing but the step counter: its metrics are zeros and `skipped_steps` (also in the metrics) is 1.
    """
    mutable = list(state.model_state)
    dtype = jnp.dtype(compute_dtype)

    def cast(tree: Any) -> Any:  # float32 master copies -> compute dtype; gradients flow back as float32
        return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)

    def loss_fn(params: Any, model_state: dict, batch: Batch, rng: jax.Array) -> tuple[jax.Array, tuple]:
        args, kwargs = task.model_inputs(batch)

        def forward(params: Any, args: Any) -> Any:
            variables = {"params": params, **model_state}
            return model.apply(variables, *args, train=True, rngs={"dropout": rng}, mutable=mutable or False, **kwargs)

        if REMAT_POLICIES[remat] is not None:
            forward = jax.checkpoint(forward, policy=REMAT_POLICIES[remat])
        if dtype != jnp.float32:
            params, args = cast(params), cast(args)
        outputs = forward(params, args)
        outputs, new_model_state = outputs if mutable else (outputs, {})
        loss, metrics = task.loss_and_metrics(outputs, batch)
        return loss, (metrics, new_model_state)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    if accumulate_steps == 1:
        (_, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng)
    else:
        micro = jax.tree.map(
            lambda x: jnp.swapaxes(x.reshape(x.shape[0] // accumulate_steps, accumulate_steps, *x.shape[1:]), 0, 1),
            batch,
        )

        def accumulate(carry: tuple, inputs: tuple) -> tuple[tuple, None]:
            grads, metrics, model_state = carry
            micro_batch, index = inputs
            (_, (m, model_state)), g = grad_fn(state.params, model_state, micro_batch, jax.random.fold_in(rng, index))
            return (jax.tree.map(jnp.add, grads, g), jax.tree.map(jnp.add, metrics, m), model_state), None

        zeros = jax.tree.map(jnp.zeros_like, state.params)
        first_batch = jax.tree.map(lambda x: x[0], micro)
        metric_zeros = jax.tree.map(
            lambda s: jnp.zeros(s.shape, s.dtype),
            jax.eval_shape(grad_fn, state.params, state.model_state, first_batch, rng)[0][1][0],
        )
        (grads, metrics, model_state), _ = jax.lax.scan(
            accumulate, (zeros, metric_zeros, state.model_state), (micro, jnp.arange(accumulate_steps))
        )
        grads = jax.tree.map(lambda g: g / accumulate_steps, grads)
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
        metrics = jax.lax.psum(metrics, axis_name)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
        model_state=model_state,
    )
    if skip_nonfinite:
        finite = all_finite((metrics["loss"], grads, new_state))
        kept = state.replace(step=state.step + 1)
        new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, kept)
        metrics = {key: jnp.where(finite, value, jnp.zeros_like(value)) for key, value in metrics.items()}
        metrics["skipped_steps"] = jnp.logical_not(finite).astype(jnp.float32)
    return new_state, metrics


def all_finite(tree: Any) -> jax.Array:
    """A scalar bool: no floating-point leaf of `tree` holds a NaN or infinity."""
    leaves = [jnp.isfinite(leaf).all() for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.inexact)]
    return jnp.stack(leaves).all() if leaves else jnp.array(True)


def eval_step(
    state: TrainState, batch: Batch, *, model: nn.Module, task: Task, axis_name: str | None = None
) -> Metrics:
    """Metric sums of the model in inference mode (dropout off, frozen statistics) on `batch`.

    Inside `jax.pmap`, `axis_name` sums them over the devices."""
    args, kwargs = task.model_inputs(batch)
    outputs = model.apply({"params": state.params, **state.model_state}, *args, train=False, **kwargs)
    metrics = task.loss_and_metrics(outputs, batch)[1]
    return metrics if axis_name is None else jax.lax.psum(metrics, axis_name)
