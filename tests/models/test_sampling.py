"""Specification of `jaxmodels.models.sampling`: the token choice, the autoregressive loop and `generate`, the one
text-generation entry point of every language model (GPT with its KV cache, char_rnn with its carried state).

Models are tiny, with random parameters, and each is compiled once per shape; keys use the 'rbg' PRNG, which
compiles faster than threefry's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmodels.errors import ConfigError
from jaxmodels.models import get_model
from jaxmodels.models.sampling import generate, sample_autoregressively, sample_logits

VOCAB = 23
BLOCK = 16  # GPT's context
TINY_GPT = {"vocab_size": VOCAB, "block_size": BLOCK, "num_layers": 1, "num_heads": 2, "embed_dim": 16, "dropout": 0.1}
TINY_CHAR_RNN = {"vocab_size": VOCAB, "embed_dim": 8, "hidden_size": 16, "num_layers": 2}

key = functools.partial(jax.random.key, impl="rbg")


def tokens(seed: int, shape: tuple[int, ...]) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).integers(0, VOCAB, shape), jnp.int32)


class LanguageModel:
    """A tiny language model with N(0, 0.5^2) parameters (shaped by a traced `init`, not compiled) and a jitted
    `logits(tokens)`: the whole-sequence forward pass the samplers are checked against."""

    def __init__(self, name: str, **config) -> None:
        self.model = get_model(name, **config)
        shapes = jax.eval_shape(self.model.init, key(0), tokens(0, (1, 4)))
        rng = np.random.default_rng(0)
        self.variables = jax.tree.map(lambda s: jnp.asarray(rng.normal(scale=0.5, size=s.shape), s.dtype), shapes)
        self.logits = jax.jit(lambda tokens: self.model.apply(self.variables, tokens, train=False))


@pytest.fixture(scope="module")
def gpt() -> LanguageModel:
    return LanguageModel("gpt", **TINY_GPT)


@pytest.fixture(scope="module")
def char_rnn() -> LanguageModel:
    return LanguageModel("char_rnn", **TINY_CHAR_RNN)


@pytest.fixture(scope="module", params=["gpt", "char_rnn"])
def language_model(request: pytest.FixtureRequest) -> LanguageModel:
    return request.getfixturevalue(request.param)


# ------------------------------------------------------------------------------------------ token choice, loop


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


# ----------------------------------------------------------------------------------------- the decode protocol


def test_decoding_in_pieces_gives_the_logits_of_one_pass(language_model):
    # The protocol of `generate`: decode=True reads tokens after those already in the 'cache' collection.
    model, variables, x = language_model.model, language_model.variables, tokens(1, (2, 9))
    first, state = model.apply(variables, x[:, :5], train=False, decode=True, mutable=["cache"])
    second, _ = model.apply({**variables, **state}, x[:, 5:], train=False, decode=True, mutable=["cache"])
    whole = language_model.logits(x)
    np.testing.assert_allclose(jnp.concatenate([first, second], axis=1), whole, rtol=1e-5, atol=1e-5)


# -------------------------------------------------------------------------------------------------- generate


@pytest.mark.parametrize(("temperature", "top_k"), [(0.0, None), (0.8, 5)])
def test_generation_equals_recomputing_the_prefix(language_model, reference_sampling, temperature, top_k):
    # GPT's KV cache and char_rnn's carried state give the tokens of re-reading the whole text every step.
    prompt, rng = tokens(8, (2, 4)), key(42)
    sampled = generate(language_model.model, language_model.variables, prompt, BLOCK - 4, rng, temperature, top_k)
    assert sampled.shape == (2, BLOCK)
    np.testing.assert_array_equal(sampled[:, :4], prompt)
    expected = reference_sampling(language_model.logits, prompt, BLOCK - 4, rng, temperature, top_k)
    np.testing.assert_array_equal(sampled, expected)


def cropping_reference(
    logits_of: Callable[[jax.Array], jax.Array], prompt: jax.Array, num_tokens: int, rng: jax.Array
) -> jax.Array:
    """nanoGPT's crop, recomputed: new token n (drawn with fold_in(rng, n)) is predicted from the text since the
    last restart, and a restart, when that text fills the context, keeps its last half. `logits_of` runs on one
    BLOCK-long buffer, the window at its start (a causal model ignores the slots after it)."""
    text, start = [int(t) for t in prompt[0]], 0
    for n in range(num_tokens):
        if len(text) - start >= BLOCK:
            start = len(text) - BLOCK // 2
        window = text[start:]
        buffer = jnp.zeros((1, BLOCK), jnp.int32).at[0, : len(window)].set(jnp.asarray(window))
        logits = logits_of(buffer)[:, len(window) - 1]
        text.append(int(sample_logits(logits, jax.random.fold_in(rng, n), temperature=0.9)[0]))
    return jnp.asarray(text)


def test_gpt_keeps_generating_past_its_context_from_the_last_half(gpt):
    prompt, rng = tokens(9, (1, 5)), key(3)
    num_tokens = 3 * BLOCK  # the text fills the context three times over
    sampled = generate(gpt.model, gpt.variables, prompt, num_tokens, rng, temperature=0.9)
    assert sampled.shape == (1, 5 + num_tokens)
    np.testing.assert_array_equal(sampled[0], cropping_reference(gpt.logits, prompt, num_tokens, rng))


def test_the_first_tokens_do_not_depend_on_how_many_follow(gpt):
    prompt, rng = tokens(10, (2, 3)), key(4)
    short = generate(gpt.model, gpt.variables, prompt, 5, rng)
    long = generate(gpt.model, gpt.variables, prompt, 2 * BLOCK, rng)
    np.testing.assert_array_equal(long[:, :8], short)


def test_the_same_rng_gives_the_same_tokens(language_model):
    prompt = tokens(11, (2, 3))
    first, again, other = (
        generate(language_model.model, language_model.variables, prompt, 20, rng) for rng in (key(5), key(5), key(6))
    )
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a_1d_prompt_gives_a_1d_sequence(language_model):
    model, variables, prompt = language_model.model, language_model.variables, tokens(12, (4,))
    sampled = generate(model, variables, prompt, 6, key(7))
    assert sampled.shape == (10,)
    np.testing.assert_array_equal(sampled, generate(model, variables, prompt[None], 6, key(7))[0])


def test_zero_new_tokens_returns_the_prompt(gpt):
    prompt = tokens(13, (2, 5))
    np.testing.assert_array_equal(generate(gpt.model, gpt.variables, prompt, 0, key(8)), prompt)


def test_a_model_that_is_not_a_language_model_is_a_config_error():
    model = get_model("bert_mlm", vocab_size=VOCAB, max_length=16, num_layers=1, num_heads=2, embed_dim=16, mlp_dim=32)
    with pytest.raises(ConfigError, match=r"needs a language model \(gpt, char_rnn\)"):
        generate(model, {"params": {}}, tokens(0, (1, 3)), 4, key(0))
