"""`jm.sample` (what `jaxmodels sample` prints): text from a language-model run, past its context, seeded.

The run is a tiny character GPT built from the Shakespeare experiment, with N(0, 2^2) parameters instead of a
training (so its next-token distributions are far from uniform); nothing is trained or compiled for a train step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmodels as jm
from jaxmodels.experiment import build_experiment
from tests.conftest import EXPERIMENTS

BLOCK = 16
PROMPT = "JULIET: "  # BLOCK / 2 characters: every piece `generate` samples then has one shape (one compile)
NUM_TOKENS = 3 * BLOCK  # the window slides five times


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory) -> jm.Run:
    config = jm.load_config(
        EXPERIMENTS / "shakespeare_char_gpt.py",
        [
            f"data.data_dir={data_dir}",
            "model.num_layers=1",
            "model.num_heads=2",
            "model.embed_dim=16",
            f"model.block_size={BLOCK}",
            f"data.block_size={BLOCK}",
            "data.batch_size=4",
            "data.eval_windows=4",
            "data.eval_batch_size=4",
        ],
    )
    experiment = build_experiment(config)
    rng = np.random.default_rng(1)  # a draw whose greedy text does not fall into a short loop
    params = jax.tree.map(
        lambda s: jnp.asarray(rng.normal(scale=2.0, size=s.shape), s.dtype), experiment.abstract_state.params
    )
    state = experiment.abstract_state.replace(params=params, model_state={})
    return jm.Run(tmp_path_factory.mktemp("sample"), experiment, state, 0, {})


@pytest.fixture(scope="module")
def greedy(run) -> list[int]:
    """The prompt's ids and NUM_TOKENS greedy tokens after them, decoded by hand."""
    return greedy_by_hand(run, PROMPT, NUM_TOKENS)


def greedy_by_hand(run: jm.Run, prompt: str, num_tokens: int) -> list[int]:
    """Argmax decoding with `model.apply` on the whole window every step; when the text fills the context, the
    window restarts from its last half (the crop `generate` documents). The forward pass runs on one BLOCK-long
    buffer, the window at its start: GPT is causal, so the slots after it change nothing."""
    logits_of = jax.jit(lambda tokens: run.model.apply(run.variables, tokens, train=False))
    text, start = [int(t) for t in run.tokenizer.encode(prompt)], 0
    for _ in range(num_tokens):
        if len(text) - start >= BLOCK:
            start = len(text) - BLOCK // 2
        window = text[start:]
        buffer = np.zeros((1, BLOCK), np.int32)
        buffer[0, : len(window)] = window
        text.append(int(np.argmax(np.asarray(logits_of(buffer))[0, len(window) - 1])))
    return text


def test_greedy_sampling_past_the_context_is_argmax_decoding_of_the_sliding_window(run, greedy):
    assert len(set(greedy[BLOCK // 2 :])) >= 10  # varied text: a crop in the wrong place would change it
    expected = run.tokenizer.decode(greedy)
    assert jm.sample(run, PROMPT, NUM_TOKENS, temperature=0.0) == expected
    assert jm.sample(run, PROMPT, NUM_TOKENS, temperature=0.8, top_k=1, seed=3) == expected  # top_k=1 is greedy


def test_sampling_returns_the_prompt_and_exactly_num_tokens_new_tokens(run, greedy):
    prompt_length = len(run.tokenizer.encode(PROMPT))
    assert prompt_length == BLOCK // 2
    for num_tokens in (0, BLOCK // 2, BLOCK, NUM_TOKENS):  # greedy tokens do not depend on how many follow
        text = jm.sample(run, PROMPT, num_tokens, temperature=0.0)
        assert text == run.tokenizer.decode(greedy[: prompt_length + num_tokens]) and text.startswith(PROMPT)


def test_the_same_seed_gives_the_same_text_and_another_seed_another(run):
    first = jm.sample(run, PROMPT, 2 * BLOCK, temperature=1.0, seed=1)
    assert jm.sample(run, PROMPT, 2 * BLOCK, temperature=1.0, seed=1) == first
    assert jm.sample(run, PROMPT, 2 * BLOCK, temperature=1.0, seed=2) != first
    assert first != jm.sample(run, PROMPT, 2 * BLOCK, temperature=0.0)  # temperature 1 is not greedy
