"""The Optax optimizer an experiment asks for: update rule, learning-rate schedule, clipping, decay.

Weight decay applies only to parameters with two or more dimensions (kernels, embeddings):
biases and normalisation scales are left alone, as is standard (Loshchilov & Hutter 2019).
"""

from __future__ import annotations

import jax
import ml_collections
import optax

from jaxmodels.errors import ConfigError


def decay_mask(params: optax.Params) -> optax.Params:
    """True for the leaves weight decay applies to: matrices and up, never vectors or scalars."""
    return jax.tree.map(lambda leaf: leaf.ndim > 1, params)


def make_schedule(config: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """The learning rate as a function of the step."""
    peak = config.learning_rate
    if config.schedule == "constant":
        return optax.constant_schedule(peak)
    if config.schedule == "cosine":
        return optax.cosine_decay_schedule(peak, decay_steps=num_steps, alpha=config.final_lr_fraction)
    if config.schedule == "warmup_cosine":
        if config.warmup_steps >= num_steps:
            raise ConfigError(f"optimizer.warmup_steps={config.warmup_steps} must be below train.num_steps={num_steps}")
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0,
            peak_value=peak,
            warmup_steps=config.warmup_steps,
            decay_steps=num_steps,
            end_value=peak * config.final_lr_fraction,
        )
    if config.schedule == "step":
        if any(not 0 < fraction < 1 for fraction in config.step_boundaries):
            raise ConfigError(
                f"optimizer.step_boundaries={config.step_boundaries} must be fractions of train.num_steps in (0, 1)"
            )
        boundaries = {int(fraction * num_steps): config.step_factor for fraction in config.step_boundaries}
        return optax.piecewise_constant_schedule(peak, boundaries)
    raise ConfigError(f"unknown optimizer.schedule {config.schedule!r}; choose constant, cosine, warmup_cosine or step")


def make_optimizer(config: ml_collections.ConfigDict, num_steps: int) -> optax.GradientTransformation:
    """Builds `config.optimizer` (a ConfigDict section) for a run of `num_steps` steps."""
    schedule = make_schedule(config, num_steps)
    chain = []
    if config.grad_clip_norm:
        chain.append(optax.clip_by_global_norm(config.grad_clip_norm))
    if config.name == "adamw":
        chain.append(
            optax.adamw(schedule, config.b1, config.b2, config.eps, weight_decay=config.weight_decay, mask=decay_mask)
        )
    elif config.name in ("adam", "sgd"):
        if config.weight_decay:  # L2 regularisation, added to the gradient before the update rule
            chain.append(optax.add_decayed_weights(config.weight_decay, mask=decay_mask))
        if config.name == "adam":
            chain.append(optax.adam(schedule, config.b1, config.b2, config.eps))
        else:
            chain.append(optax.sgd(schedule, momentum=config.momentum or None, nesterov=config.nesterov))
    else:
        raise ConfigError(f"unknown optimizer.name {config.name!r}; choose adam, adamw or sgd")
    return optax.chain(*chain)
