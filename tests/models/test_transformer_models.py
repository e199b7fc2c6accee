"""Specifications of the transformer family: GPT, BERT and the encoder-decoder.

Every model is compiled for one input shape and reused (a compile costs seconds on a small CPU); keys use the
'rbg' PRNG, whose dropout compiles faster than threefry's.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxmodels.errors import CheckpointError, ConfigError
from jaxmodels.models import get_model
from jaxmodels.models.transformer import gelu, greedy_decode, load_pretrained_encoder

VOCAB = 23
TINY_GPT = {"vocab_size": VOCAB, "block_size": 16, "num_layers": 1, "num_heads": 2, "embed_dim": 16, "dropout": 0.1}
TINY_BERT = {"vocab_size": VOCAB, "max_length": 16, "num_layers": 1, "num_heads": 2, "embed_dim": 16, "mlp_dim": 32}
TINY_SEQ2SEQ = {"vocab_size": VOCAB, "num_layers": 1, "num_heads": 2, "embed_dim": 16, "mlp_dim": 32, "dropout": 0.1}
BATCH, LENGTH = 2, 10  # GPT and BERT inputs
SOURCE, TARGET = 7, 5  # encoder-decoder inputs

key = functools.partial(jax.random.key, impl="rbg")


def count(params) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))


def tokens(seed: int, shape: tuple[int, ...]) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).integers(3, VOCAB, shape), jnp.int32)


def random_variables(model, *inputs: jax.Array, seed: int = 0) -> dict:
    """Variables shaped by `model.init` (traced, not compiled) and filled with N(0, 0.5^2) noise: the behaviours
    tested here hold for any parameters, and compiling the initialisers would cost seconds per model."""
    shapes = jax.eval_shape(model.init, key(0), *inputs)
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(rng.normal(scale=0.5, size=s.shape), s.dtype), shapes)


class Compiled:
    """A model with its parameters and a jit-compiled apply.

    `mask_key` names the model's padding-mask keyword; calls that omit it get an all-True mask, so one compiled
    program serves masked and unmasked calls.
    """

    def __init__(self, name: str, *inputs: jax.Array, mask_key: str | None = None, **config) -> None:
        self.model = get_model(name, **config)
        self.mask_key = mask_key
        self.params = random_variables(self.model, *inputs)["params"]
        self.apply = jax.jit(
            lambda params, *args, train=False, rng=None, **kwargs: self.model.apply(
                {"params": params}, *args, train=train, rngs=None if rng is None else {"dropout": rng}, **kwargs
            ),
            static_argnames=("train",),
        )

    def __call__(self, *args: jax.Array, **kwargs) -> jax.Array:
        if self.mask_key is not None:
            kwargs.setdefault(self.mask_key, jnp.ones(args[0].shape, bool))
        return self.apply(self.params, *args, **kwargs)


@pytest.fixture(scope="module")
def gpt() -> Compiled:
    return Compiled("gpt", tokens(0, (BATCH, LENGTH)), **TINY_GPT)


@pytest.fixture(scope="module")
def bert_classifier() -> Compiled:
    return Compiled(
        "bert_classifier", tokens(0, (BATCH, LENGTH)), mask_key="mask", **TINY_BERT, num_classes=3, dropout=0.1
    )


@pytest.fixture(scope="module")
def seq2seq() -> Compiled:
    return Compiled(
        "transformer_seq2seq",
        tokens(0, (BATCH, SOURCE)),
        tokens(1, (BATCH, TARGET)),
        mask_key="source_mask",
        **TINY_SEQ2SEQ,
    )


# ----------------------------------------------------------------------------------------------------- shapes


def output_shape(name: str, *inputs: jax.Array, **config) -> tuple[int, ...]:
    model = get_model(name, **config)
    variables = jax.eval_shape(model.init, key(0), *inputs)
    return jax.eval_shape(model.apply, variables, *inputs).shape


def test_gpt_returns_next_token_logits():
    assert output_shape("gpt", tokens(1, (3, 11)), **TINY_GPT) == (3, 11, VOCAB)


def test_bert_returns_hidden_states_token_logits_and_class_logits():
    x = tokens(1, (3, 9))
    assert output_shape("bert", x, **TINY_BERT) == (3, 9, 16)
    assert output_shape("bert_mlm", x, **TINY_BERT) == (3, 9, VOCAB)
    assert output_shape("bert_classifier", x, **TINY_BERT, num_classes=4) == (3, 4)


def test_seq2seq_returns_logits_per_target_position():
    shape = output_shape("transformer_seq2seq", tokens(2, (3, 7)), tokens(3, (3, 4)), **TINY_SEQ2SEQ)
    assert shape == (3, 4, VOCAB)
    assert output_shape("transformer_seq2seq", tokens(2, (3, 7)), tokens(3, (3, 4)), **TINY_SEQ2SEQ, pre_norm=True) == (
        3,
        4,
        VOCAB,
    )


def test_gpt_output_layer_is_the_token_embedding(gpt):
    assert set(gpt.params) == {"embeddings", "block_0", "ln_f"}
    assert set(gpt.params["embeddings"]) == {"token", "position"}


# ---------------------------------------------------------------------------------------------- param counts


def param_count(name: str) -> dict[str, int]:
    model = get_model(name)
    params = jax.eval_shape(model.init, key(0), jnp.zeros((1, 8), jnp.int32))["params"]
    return {child: count(subtree) for child, subtree in params.items()}


# The totals of gpt2_small, bert_base and bert_base_mlm are checked with every variant's in test_registry.py.


def test_bert_base_encoder_and_pooler_have_109_482_240_parameters():
    counts = param_count("bert_base")
    assert counts["encoder"] + counts["pooler"] == 109_482_240  # as HF BertModel
    assert sum(counts.values()) == 109_483_778  # plus the 2-class head


# ----------------------------------------------------------------------------------------------------- causality


def test_gpt_future_tokens_never_change_earlier_logits(gpt):
    x = tokens(4, (BATCH, LENGTH))
    changed = x.at[:, 6].set((x[:, 6] + 1) % VOCAB)
    before, after = gpt(x), gpt(changed)
    np.testing.assert_allclose(before[:, :6], after[:, :6], atol=1e-6)
    assert not np.allclose(before[:, 6:], after[:, 6:])


def test_seq2seq_future_target_tokens_never_change_earlier_logits(seq2seq):
    source, target = tokens(5, (BATCH, SOURCE)), tokens(6, (BATCH, TARGET))
    changed = target.at[:, 3].set((target[:, 3] + 1) % VOCAB)
    before, after = seq2seq(source, target), seq2seq(source, changed)
    np.testing.assert_allclose(before[:, :3], after[:, :3], atol=1e-6)
    assert not np.allclose(before[:, 3:], after[:, 3:])


# ------------------------------------------------------------------------------------------------- decoding


def test_greedy_decode_equals_step_by_step_argmax(seq2seq):
    source, bos, eos = tokens(10, (BATCH, SOURCE)), 1, 4
    decoded = greedy_decode(seq2seq.model, seq2seq.params, source, TARGET, bos, eos)
    target = jnp.full((BATCH, TARGET), bos, dtype=jnp.int32)
    for i in range(TARGET - 1):  # reference: whole model on the tokens so far (later slots are masked)
        target = target.at[:, i + 1].set(jnp.argmax(seq2seq(source, target)[:, i], axis=-1))
    last = jnp.argmax(seq2seq(source, target)[:, -1], axis=-1)
    expected = np.array(jnp.concatenate([target[:, 1:], last[:, None]], axis=1))
    for row in expected:  # greedy_decode repeats EOS once a row has finished
        ends = np.flatnonzero(row == eos)
        if ends.size:
            row[ends[0] :] = eos
    assert decoded.shape == (BATCH, TARGET)
    np.testing.assert_array_equal(decoded, expected)


# ------------------------------------------------------------------------------------------------- padding


def test_bert_classifier_ignores_appended_padding(bert_classifier):
    x = tokens(11, (BATCH, LENGTH))
    reference = bert_classifier(x)
    padded = jnp.concatenate([x, tokens(12, (BATCH, 4))], axis=1)  # arbitrary tokens in the padding
    mask = jnp.arange(LENGTH + 4)[None, :].repeat(BATCH, axis=0) < LENGTH
    np.testing.assert_allclose(bert_classifier(padded, mask=mask), reference, rtol=1e-4, atol=1e-7)
    assert not np.allclose(bert_classifier(padded, mask=jnp.ones_like(mask)), reference, rtol=1e-4, atol=1e-7)


def test_mean_pooling_is_the_masked_average_of_the_encoder_states():
    """pooling='mean' feeds the pooler the average of the real tokens' states, and nothing of the padding."""
    model = get_model("bert_classifier", **TINY_BERT, num_classes=3, pooling="mean")
    x = tokens(17, (BATCH, LENGTH))
    mask = jnp.arange(LENGTH)[None, :] < jnp.array([[LENGTH], [6]])
    params = random_variables(model, x)["params"]
    encoder = get_model("bert", **TINY_BERT)
    states = np.asarray(encoder.apply({"params": params["encoder"]}, x, mask=mask), np.float64)
    mean = np.stack([states[0].mean(0), states[1, :6].mean(0)])
    pooled = np.tanh(mean @ params["pooler"]["kernel"] + params["pooler"]["bias"])
    expected = pooled @ params["classifier"]["kernel"] + params["classifier"]["bias"]
    np.testing.assert_allclose(model.apply({"params": params}, x, mask=mask), expected, rtol=1e-4, atol=1e-5)
    junk = jnp.where(mask, x, tokens(18, (BATCH, LENGTH)))  # other tokens in row 1's padded slots
    np.testing.assert_allclose(model.apply({"params": params}, junk, mask=mask), expected, rtol=1e-4, atol=1e-5)


def test_unknown_pooling_is_a_config_error():
    model = get_model("bert_classifier", **TINY_BERT, pooling="max")
    with pytest.raises(ConfigError, match=r"model\.pooling"):
        jax.eval_shape(model.init, key(0), tokens(0, (BATCH, LENGTH)))


def test_seq2seq_ignores_source_padding(seq2seq):
    source, target = tokens(14, (BATCH, SOURCE)), tokens(15, (BATCH, TARGET))
    mask = jnp.arange(SOURCE)[None, :] < jnp.array([[SOURCE], [4]])
    reference = seq2seq(source, target, source_mask=mask)
    junk = jnp.where(mask, source, tokens(16, (BATCH, SOURCE)))  # other tokens in row 1's padded slots
    np.testing.assert_allclose(seq2seq(junk, target, source_mask=mask), reference, rtol=1e-4, atol=1e-7)
    everything = jnp.ones_like(mask)
    assert not np.allclose(seq2seq(junk, target, source_mask=everything), reference, rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------------------------------------- fine-tuning


def test_loading_an_mlm_encoder_copies_exactly_the_encoder(bert_classifier):
    mlm = get_model("bert_mlm", **TINY_BERT)
    mlm_params = random_variables(mlm, tokens(0, (BATCH, LENGTH)), seed=1)["params"]  # "pre-trained" weights
    fresh = bert_classifier.params
    loaded, report = load_pretrained_encoder(fresh, mlm_params)

    flat_loaded = traverse_util.flatten_dict(loaded, sep="/")
    flat_mlm = traverse_util.flatten_dict(mlm_params, sep="/")
    flat_fresh = traverse_util.flatten_dict(fresh, sep="/")
    assert set(flat_loaded) == set(flat_fresh)
    assert report.loaded == sorted(p for p in flat_fresh if p.startswith("encoder/"))
    for path in report.loaded:
        np.testing.assert_array_equal(flat_loaded[path], flat_mlm[path])
        assert not np.array_equal(flat_fresh[path], flat_mlm[path])
    assert report.new == sorted(p for p in flat_fresh if not p.startswith("encoder/"))
    assert {p.split("/")[0] for p in report.new} == {"pooler", "classifier"}
    for path in report.new:
        np.testing.assert_array_equal(flat_loaded[path], flat_fresh[path])
    assert {p.split("/")[0] for p in report.unused} == {"transform", "transform_norm", "output_bias"}


def test_loading_an_encoder_of_another_size_fails(bert_classifier):
    other = get_model("bert_mlm", **{**TINY_BERT, "num_layers": 2})
    mlm_params = jax.eval_shape(other.init, key(1), tokens(0, (1, 4)))["params"]
    with pytest.raises(CheckpointError, match="encoder"):
        load_pretrained_encoder(bert_classifier.params, mlm_params)


# --------------------------------------------------------------------------------------------------- dropout


def assert_dropout_only_in_training(compiled: Compiled, *inputs: jax.Array) -> None:
    train = [compiled(*inputs, train=True, rng=key(seed)) for seed in (1, 2)]
    assert not np.allclose(train[0], train[1])
    evaluation = [compiled(*inputs, train=False) for _ in range(2)]
    np.testing.assert_array_equal(evaluation[0], evaluation[1])
    assert not np.allclose(evaluation[0], train[0])


def test_gpt_dropout_is_random_in_training_and_off_in_evaluation(gpt):
    assert_dropout_only_in_training(gpt, tokens(19, (BATCH, LENGTH)))


def test_bert_dropout_is_random_in_training_and_off_in_evaluation(bert_classifier):
    assert_dropout_only_in_training(bert_classifier, tokens(19, (BATCH, LENGTH)))


def test_seq2seq_dropout_is_random_in_training_and_off_in_evaluation(seq2seq):
    assert_dropout_only_in_training(seq2seq, tokens(19, (BATCH, SOURCE)), tokens(20, (BATCH, TARGET)))


# ---------------------------------------------------------------------------------------------------- config


def test_config_keys_are_validated_against_the_fields():
    with pytest.raises(ConfigError, match="num_layers"):
        get_model("gpt", num_layer=2)


def test_heads_must_divide_the_width():
    model = get_model("gpt", **{**TINY_GPT, "num_heads": 3})
    with pytest.raises(ConfigError, match="num_heads"):
        jax.eval_shape(model.init, key(0), tokens(0, (1, 4)))


def test_attention_maps_are_sown_as_intermediates_rows_sum_to_one_and_respect_the_causal_mask():
    model = get_model("gpt", vocab_size=11, block_size=8, num_layers=2, num_heads=2, embed_dim=16, dropout=0.0)
    tokens = jnp.arange(6)[None] % 11
    variables = model.init(jax.random.key(0), tokens)
    logits, state = model.apply(variables, tokens, mutable=["intermediates"])
    np.testing.assert_array_equal(logits, model.apply(variables, tokens))  # reading them changes nothing
    maps = state["intermediates"]["block_1"]["attention"]["attention_weights"][0]
    assert maps.shape == (1, 2, 6, 6)
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-6)
    assert float(jnp.abs(jnp.triu(maps, k=1)).max()) == 0.0  # no query looks ahead


def test_exact_gelu_written_with_erf_is_jax_gelu_and_its_gradient():
    # The erf form is 3x faster on a CPU than jax.nn.gelu's erfc form; the function and its derivative must not
    # change, down to the tails where 1 + erf(x / sqrt(2)) loses digits.
    x = jnp.linspace(-12.0, 12.0, 4001)
    np.testing.assert_allclose(gelu(x, approximate=False), jax.nn.gelu(x, approximate=False), atol=1e-6, rtol=1e-5)
    derivative = jax.vmap(jax.grad(lambda x, approximate: gelu(x, approximate)), in_axes=(0, None))
    reference = jax.vmap(jax.grad(lambda x: jax.nn.gelu(x, approximate=False)))
    np.testing.assert_allclose(derivative(x, False), reference(x), atol=1e-6, rtol=1e-5)
    np.testing.assert_array_equal(gelu(x, approximate=True), jax.nn.gelu(x, approximate=True))
