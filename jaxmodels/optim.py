"""The Optax optimizer an experiment asks for: update rule, learning-rate schedule, clipping, decay.

Weight decay applies only to parameters with two or more dimensions (kernels, embeddings):
biases and normalisation scales are left alone, as is standard (Loshchilov & Hutter 2019).

`optimizer.lr_multipliers` gives parts of the model their own learning rate, as PyTorch's parameter groups
do: 'encoder:0.1' trains the parameters under `encoder` at a tenth of the rate (ULMFiT's discriminative
fine-tuning, Howard & Ruder 2018, §3.2), 'encoder:0' freezes them (a linear probe, or a frozen backbone).
A frozen parameter never moves, weight decay included, and keeps no optimizer state; gradient clipping
measures the trained parameters only.

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
from jaxmodels.partial_loading import path_name


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


def parse_lr_multipliers(text: str) -> dict[str, float]:
    """'encoder:0.1, pooler:2' -> {'encoder': 0.1, 'pooler': 2.0}: parameter path prefixes and their factors."""
    multipliers = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        prefix, _, factor = item.rpartition(":")
        prefix = prefix.strip().strip("/")
        try:
            value = float(factor)
        except ValueError:
            value = -1.0  # not a number: refused below, as a negative factor is
        if not prefix or not value >= 0:
            raise ConfigError(
                f"optimizer.lr_multipliers={text!r}: {item!r} is not 'path:factor'; write e.g. 'encoder:0.1' "
                "(a parameter path prefix, '/' between levels, and a factor >= 0; 0 freezes)"
            )
        multipliers[prefix] = value
    return multipliers


def _under(name: str, prefix: str) -> bool:
    """Whether parameter path `name` is `prefix` or lies below it ('encoder' covers 'encoder/...', not 'encoders')."""
    return name == prefix or name.startswith(prefix + "/")


def lr_factors(multipliers: dict[str, float], params: optax.Params) -> optax.Params:
    """Each parameter's learning-rate factor: that of its longest matching path prefix, else 1.

    A prefix that matches no parameter is a ConfigError listing the model's top-level names (a typo would
    otherwise train the whole model at the full rate without a word).
    """
    paths = [path_name(path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    for prefix in multipliers:
        if not any(_under(path, prefix) for path in paths):
            names = sorted({path.split("/")[0] for path in paths})
            raise ConfigError(
                f"optimizer.lr_multipliers names {prefix!r}, which is no parameter path of this model; its "
                f"top-level names are {', '.join(names)} (deeper levels after '/')"
            )

    def factor(path: tuple[object, ...], _: object) -> float:
        matches = [prefix for prefix in multipliers if _under(path_name(path), prefix)]
        return multipliers[max(matches, key=len)] if matches else 1.0

    return jax.tree_util.tree_map_with_path(factor, params)


def _scale_by_factors(multipliers: dict[str, float]) -> optax.GradientTransformation:
    """Multiplies each parameter's update by its learning-rate factor (`lr_factors`); keeps no state."""

    def update(updates: optax.Updates, state: optax.EmptyState, params: optax.Params | None = None):
        factors = lr_factors(multipliers, updates)
        return jax.tree.map(lambda update, factor: update * factor, updates, factors), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(config: ml_collections.ConfigDict, num_steps: int) -> optax.GradientTransformation:
    """Builds `config.optimizer` (a ConfigDict section) for a run of `num_steps` steps."""
    if config.name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer.name {config.name!r}; choose {', '.join(OPTIMIZERS)}")
    clipping = [optax.clip_by_global_norm(config.grad_clip_norm)] if config.grad_clip_norm else []
    rule = optax.chain(*clipping, *OPTIMIZERS[config.name](config, make_schedule(config, num_steps)))
    multipliers = parse_lr_multipliers(config.lr_multipliers)
    if not multipliers:
        return rule
    # Frozen parameters leave the rule altogether (no moments, no decay, outside the clipping norm); the
    # others' updates are scaled by their factor, which is each group's learning rate for Adam, AdamW and SGD.
    frozen = {prefix for prefix, factor in multipliers.items() if factor == 0}

    def labels(params: optax.Params) -> optax.Params:
        return jax.tree.map(lambda factor: "frozen" if factor == 0 else "trained", lr_factors(multipliers, params))

    scaled = {prefix: factor for prefix, factor in multipliers.items() if prefix not in frozen}
    grouped = optax.multi_transform({"trained": rule, "frozen": optax.set_to_zero()}, labels) if frozen else rule
    return optax.chain(grouped, _scale_by_factors(scaled)) if scaled else grouped


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
