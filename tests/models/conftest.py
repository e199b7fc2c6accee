"""Shared by the language-model specifications: the reference every sampler is checked against."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import pytest

from jaxmodels.models.sampling import sample_logits

Sampler = Callable[..., jax.Array]


def recompute_sampling(
    logits_of: Callable[[jax.Array], jax.Array],
    prompt: jax.Array,
    num_tokens: int,
    rng: jax.Array,
    temperature: float,
    top_k: int | None,
) -> jax.Array:
    """Re-reads the whole prefix every step, step i sampling with fold_in(rng, i) as `sample_autoregressively`
    documents; returns prompt + new tokens.

    `logits_of` maps (batch, time) tokens to (batch, time, vocab) logits. It runs on one fixed-size buffer, so
    a position's logits must not depend on later slots (a causal mask or a recurrence guarantees that).
    """
    length = prompt.shape[1]
    buffer = jnp.zeros((prompt.shape[0], length + num_tokens), jnp.int32).at[:, :length].set(prompt)
    for i in range(num_tokens):
        logits = logits_of(buffer)[:, length + i - 1]
        buffer = buffer.at[:, length + i].set(sample_logits(logits, jax.random.fold_in(rng, i), temperature, top_k))
    return buffer


@pytest.fixture
def reference_sampling() -> Sampler:
    """`recompute_sampling`: the slow, obviously right sampler."""
    return recompute_sampling
