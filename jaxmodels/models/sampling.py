"""Text generation from language models: one entry point, `generate`, for every model that speaks its protocol.

The protocol (GPT's KV cache and the char-RNN's carried state both implement it):

- `model.apply(variables, tokens, train=False, decode=True, mutable=['cache'])` reads (batch, time) `tokens`
  after whatever the 'cache' collection of `variables` already holds (nothing, if it has none) and returns
  ((batch, time, vocab) logits, {'cache': the updated cache});
- `model.context_length` is the most tokens the model can hold (GPT's `block_size`), or None for no limit.

A model without `context_length` is not a language model, and `generate` refuses it. When the prompt plus the new
tokens exceed the context, generation continues from the last half-context of text, as nanoGPT's `generate` crops
its input. Temperature and top-k choose each token (`sample_logits`); `sample_autoregressively` is the loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmodels.errors import ConfigError

State = TypeVar("State")
Variables = dict[str, Any]  # a model's collections: 'params', and 'cache' while decoding

LANGUAGE_MODELS = "gpt, char_rnn"  # the registered families that implement the protocol, for error messages


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
    first_index: int | jax.Array = 0,
) -> jax.Array:
    """The sampling loop of every language model here; returns (batch, num_tokens >= 1) new tokens.

    `prefill()` reads the prompt and returns (state, logits of the next token); `step(state, token)` reads one
    token and returns the same. New token i is drawn with `jax.random.fold_in(rng, first_index + i)`, so any two
    models that produce the same logits produce the same tokens.
    """
    state, logits = prefill()
    first = sample_logits(logits, jax.random.fold_in(rng, first_index), temperature, top_k)

    def one_step(carry: tuple[State, jax.Array], i: jax.Array) -> tuple[tuple[State, jax.Array], jax.Array]:
        state, token = carry
        state, logits = step(state, token)
        return (state, sample_logits(logits, jax.random.fold_in(rng, first_index + i), temperature, top_k)), token

    (_, last), tokens = jax.lax.scan(one_step, (state, first), jnp.arange(1, num_tokens))
    return jnp.concatenate([tokens.T, last[:, None]], axis=1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("model", "num_tokens", "temperature", "top_k"))
def _continue(
    model: nn.Module,
    variables: Variables,
    context: jax.Array,
    num_tokens: int,
    rng: jax.Array,
    first_index: jax.Array,
    temperature: float,
    top_k: int | None,
) -> jax.Array:
    """`context` followed by `num_tokens` sampled tokens, decoding from an empty cache: the prompt is read in one
    call, then one token per step."""

    def read(cache: Variables | None, tokens: jax.Array) -> tuple[Variables, jax.Array]:
        state = variables if cache is None else {**variables, "cache": cache}
        logits, updates = model.apply(state, tokens, train=False, decode=True, mutable=["cache"])
        return updates["cache"], logits[:, -1]

    prefill = lambda: read(None, context)
    step = lambda cache, token: read(cache, token[:, None])
    new = sample_autoregressively(prefill, step, num_tokens, rng, temperature, top_k, first_index)
    return jnp.concatenate([context, new.astype(context.dtype)], axis=1)


def generate(
    model: nn.Module,
    variables: Variables,
    prompt: jax.Array,
    num_tokens: int,
    rng: jax.Array,
    temperature: float = 1.0,
    top_k: int | None = None,
) -> jax.Array:
    """`prompt` followed by `num_tokens` tokens sampled from language `model` with `variables` ({'params': ...}).

    `prompt` holds int ids, (batch, prompt_len >= 1), or (prompt_len,) for one sequence, which returns a 1-D
    array too. New token n is drawn with `jax.random.fold_in(rng, n)`; temperature 0 or top_k=1 is greedy. When
    the text outgrows `model.context_length`, the model restarts from the last half-context of text (nanoGPT's
    crop), and keeps sampling; each restart reads that text into a fresh cache. Raises ConfigError for a model
    that is not a language model.
    """
    if not hasattr(model, "context_length"):
        raise ConfigError(f"generating text needs a language model ({LANGUAGE_MODELS}), not {type(model).__name__}")
    tokens = jnp.asarray(prompt)
    one_sequence = tokens.ndim == 1
    tokens = tokens[None] if one_sequence else tokens
    if tokens.ndim != 2 or tokens.shape[1] == 0 or num_tokens < 0:
        raise ValueError(f"need a (batch, length >= 1) prompt and num_tokens >= 0, got {tokens.shape} and {num_tokens}")
    variables = {name: collection for name, collection in variables.items() if name != "cache"}
    limit = model.context_length
    keep = None if limit is None else max(limit // 2, 1)
    done = 0
    while done < num_tokens:
        context = tokens if limit is None or tokens.shape[1] < limit else tokens[:, -keep:]
        new = num_tokens - done if limit is None else min(num_tokens - done, limit - context.shape[1])
        index = jnp.asarray(done, jnp.int32)
        out = _continue(model, variables, context, new, rng, index, temperature, top_k)
        tokens = jnp.concatenate([tokens, out[:, context.shape[1] :]], axis=1)
        done += new
    return tokens[0] if one_sequence else tokens
