"""Specification of `jaxmodels.models.sampling`: the token choice and the autoregressive loop shared by GPT's
`generate` and the char-RNN's `sample`."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmodels.models.sampling import sample_autoregressively, sample_logits

VOCAB = 23

key = functools.partial(jax.random.key, impl="rbg")


def test_sampling_with_top_k_1_or_temperature_0_is_greedy():
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(4, VOCAB)), jnp.float32)
    greedy = jnp.argmax(logits, axis=-1)
    np.testing.assert_array_equal(sample_logits(logits, key(1), temperature=0.0), greedy)
    np.testing.assert_array_equal(sample_logits(logits, key(1), temperature=2.0, top_k=1), greedy)


def test_top_k_sampling_only_draws_the_k_most_likely_tokens():
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(1, VOCAB)), jnp.float32).repeat(500, axis=0)
    drawn = sample_logits(logits, key(1), temperature=1.0, top_k=3)
    assert set(np.unique(drawn)) == set(np.argsort(logits[0])[-3:].tolist())


@pytest.mark.parametrize(("temperature", "top_k"), [(0.0, None), (0.9, 5)])
def test_the_loop_draws_what_recomputing_the_prefix_draws(reference_sampling, temperature, top_k):
    # A bigram model: the next token's logits depend only on the last token. Its state counts the steps.
    bigram = jnp.asarray(np.random.default_rng(1).normal(size=(VOCAB, VOCAB)), jnp.float32)
    prompt, rng = jnp.asarray([[3, 1, 4], [1, 5, 9]], jnp.int32), key(2)
    prefill = lambda: (jnp.array(0), bigram[prompt[:, -1]])
    step = lambda steps, token: (steps + 1, bigram[token])
    new = jax.jit(lambda rng: sample_autoregressively(prefill, step, 6, rng, temperature, top_k))(rng)
    assert new.shape == (2, 6) and new.dtype == jnp.int32
    expected = reference_sampling(lambda tokens: bigram[tokens], prompt, 6, rng, temperature, top_k)
    np.testing.assert_array_equal(new, expected[:, 3:])
