"""Sampling from language models: temperature, top-k and the shared autoregressive loop.

Used by `transformer.generate` (GPT, with a KV cache) and `rnn.sample` (char-RNN, with a carried hidden state):
each model supplies how to read the prompt and one more token; the loop and the token choice are written here once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import jax
import jax.numpy as jnp

State = TypeVar("State")


def sample_logits(logits: jax.Array, rng: jax.Array, temperature: float = 1.0, top_k: int | None = None) -> jax.Array:
    """Draws one token per row of (batch, vocab) logits; temperature 0 or top_k=1 is greedy (argmax).

    Top-k sampling as in Fan et al. (2018), "Hierarchical Neural Story Generation": only the k largest
    logits keep their probability mass.
    """
    if temperature == 0.0 or top_k == 1:
        return jnp.argmax(logits, axis=-1)
    logits = logits / temperature
    if top_k is not None:
        kth_largest = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth_largest, -jnp.inf, logits)
    return jax.random.categorical(rng, logits, axis=-1)


def sample_autoregressively(
    prefill: Callable[[], tuple[State, jax.Array]],
    step: Callable[[State, jax.Array], tuple[State, jax.Array]],
    num_tokens: int,
    rng: jax.Array,
    temperature: float = 1.0,
    top_k: int | None = None,
) -> jax.Array:
    """The sampling loop of every language model here; returns (batch, num_tokens) new tokens.

    `prefill()` reads the prompt and returns (state, logits of the next token); `step(state, token)` reads one
    token and returns the same. New token i is drawn with `jax.random.fold_in(rng, i)`, so any two models that
    produce the same logits produce the same tokens.
    """
    state, logits = prefill()
    first = sample_logits(logits, jax.random.fold_in(rng, 0), temperature, top_k)

    def one_step(carry: tuple[State, jax.Array], i: jax.Array) -> tuple[tuple[State, jax.Array], jax.Array]:
        state, token = carry
        state, logits = step(state, token)
        return (state, sample_logits(logits, jax.random.fold_in(rng, i), temperature, top_k)), token

    (_, last), tokens = jax.lax.scan(one_step, (state, first), jnp.arange(1, num_tokens))
    return jnp.concatenate([tokens.T, last[:, None]], axis=1).astype(jnp.int32)
