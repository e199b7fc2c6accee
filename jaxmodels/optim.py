"""The Optax optimizer an experiment asks for: update rule, learning-rate schedule, clipping, decay.

Weight decay applies only to parameters with two or more dimensions (kernels, embeddings):
biases and normalisation scales are left alone, as is standard (Loshchilov & Hutter 2019).

`OPTIMIZERS` and `SCHEDULES` are the registries behind `optimizer.name` and `optimizer.schedule`: adding one
is one entry here; config validation and its error messages list their keys.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxmodels.errors import ConfigError


def decay_mask(params: optax.Params) -> optax.Params:
    """True for the leaves weight decay applies to: matrices and up, never vectors or scalars."""
    return jax.tree.map(lambda leaf: leaf.ndim > 1, params)


def _warmup_cosine(config: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    if config.warmup_steps >= num_steps:
        raise ConfigError(f"optimizer.warmup_steps={config.warmup_steps} must be below train.num_steps={num_steps}")
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=config.warmup_steps,
        decay_steps=num_steps,
        end_value=config.learning_rate * config.final_lr_fraction,
    )


def _step_decay(config: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    if any(not 0 < fraction < 1 for fraction in config.step_boundaries):
        raise ConfigError(
            f"optimizer.step_boundaries={config.step_boundaries} must be fractions of train.num_steps in (0, 1)"
        )
    boundaries = {int(fraction * num_steps): config.step_factor for fraction in config.step_boundaries}
    return optax.piecewise_constant_schedule(config.learning_rate, boundaries)


# optimizer.schedule -> (optimizer section, train.num_steps) -> the learning rate as a function of the step.
SCHEDULES: dict[str, Callable[[ml_collections.ConfigDict, int], optax.Schedule]] = {
    "constant": lambda config, num_steps: optax.constant_schedule(config.learning_rate),
    "cosine": lambda config, num_steps: optax.cosine_decay_schedule(
        config.learning_rate, decay_steps=num_steps, alpha=config.final_lr_fraction
    ),
    "warmup_cosine": _warmup_cosine,
    "step": _step_decay,
}


Rule = Callable[[ml_collections.ConfigDict, optax.Schedule], list[optax.GradientTransformation]]


def _l2_then(rule: Callable[[ml_collections.ConfigDict, optax.Schedule], optax.GradientTransformation]) -> Rule:
    """`rule` preceded by L2 regularisation (`optimizer.weight_decay`, added to the gradient, masked)."""

    def build(config: ml_collections.ConfigDict, schedule: optax.Schedule) -> list[optax.GradientTransformation]:
        decay = [optax.add_decayed_weights(config.weight_decay, mask=decay_mask)] if config.weight_decay else []
        return [*decay, rule(config, schedule)]

    return build


# optimizer.name -> (optimizer section, schedule) -> the transformations of its update rule, weight decay included.
OPTIMIZERS: dict[str, Rule] = {
    "adam": _l2_then(lambda config, schedule: optax.adam(schedule, config.b1, config.b2, config.eps)),
    # Decoupled weight decay (Loshchilov & Hutter 2019).
    "adamw": lambda config, schedule: [
        optax.adamw(schedule, config.b1, config.b2, config.eps, weight_decay=config.weight_decay, mask=decay_mask)
    ],
    "sgd": _l2_then(
        lambda config, schedule: optax.sgd(schedule, momentum=config.momentum or None, nesterov=config.nesterov)
    ),
}


def make_schedule(config: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """The learning rate as a function of the step."""
    if config.schedule not in SCHEDULES:
        raise ConfigError(f"unknown optimizer.schedule {config.schedule!r}; choose {', '.join(SCHEDULES)}")
    return SCHEDULES[config.schedule](config, num_steps)


def make_optimizer(config: ml_collections.ConfigDict, num_steps: int) -> optax.GradientTransformation:
    """Builds `config.optimizer` (a ConfigDict section) for a run of `num_steps` steps."""
    if config.name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer.name {config.name!r}; choose {', '.join(OPTIMIZERS)}")
    clipping = [optax.clip_by_global_norm(config.grad_clip_norm)] if config.grad_clip_norm else []
    return optax.chain(*clipping, *OPTIMIZERS[config.name](config, make_schedule(config, num_steps)))


def schedules_at(opt_state: optax.OptState, step: int) -> optax.OptState:
    """`opt_state` with its learning-rate schedules' counters set to `step`, everything else unchanged.

    A fresh optimizer state mid-run (`checkpoint.reset_optimizer`) restarts the moments and Adam's bias
    correction from zero, as a new optimizer would, but keeps the learning rate the schedule gives at `step`.
    """

    def advance(node: object) -> object:
        if isinstance(node, optax.ScaleByScheduleState):
            return node._replace(count=jnp.full_like(node.count, step))
        return node

    return jax.tree.map(advance, opt_state, is_leaf=lambda node: isinstance(node, optax.ScaleByScheduleState))
