"""Specifications of the recurrent models: rnn_classifier and char_rnn.

Each model is compiled once per input shape and reused (a compile costs seconds on a small CPU); keys use the
'rbg' PRNG, whose dropout compiles faster than threefry's. Text generation from char_rnn is specified with
GPT's in test_sampling.py.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmodels.errors import ConfigError
from jaxmodels.models import get_model
from jaxmodels.models.rnn import LSTM, GRUCell

VOCAB = 11
BATCH, LENGTH, PAD = 3, 6, 3
LENGTHS = jnp.array([6, 2, 4])

key = functools.partial(jax.random.key, impl="rbg")


def tokens(seed: int, shape: tuple[int, ...]) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).integers(0, VOCAB, shape), jnp.int32)


def features(seed: int, shape: tuple[int, ...]) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def output_shape(name: str, inputs: jax.Array, **config) -> tuple[int, ...]:
    model = get_model(name, **config)
    variables = jax.eval_shape(model.init, key(0), inputs)
    return jax.eval_shape(model.apply, variables, inputs).shape


def random_variables(model, *inputs: jax.Array, seed: int = 0) -> dict:
    """Variables shaped by `model.init` (traced, not compiled) and filled with N(0, 0.5^2) noise: the behaviours
    tested here hold for any parameters, and compiling the initialisers would cost seconds per model."""
    shapes = jax.eval_shape(model.init, key(0), *inputs)
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(rng.normal(scale=0.5, size=s.shape), s.dtype), shapes)


class Compiled:
    """A model with its variables and a jit-compiled apply."""

    def __init__(self, name: str, inputs: jax.Array, **config) -> None:
        self.model = get_model(name, **config)
        self.variables = random_variables(self.model, inputs)
        self.apply = jax.jit(
            lambda variables, inputs, train=False, rng=None, **kwargs: self.model.apply(
                variables, inputs, train=train, rngs=None if rng is None else {"dropout": rng}, **kwargs
            ),
            static_argnames=("train",),
        )

    def __call__(self, inputs: jax.Array, **kwargs) -> jax.Array:
        return self.apply(self.variables, inputs, **kwargs)


# ----------------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_classifier_maps_tokens_or_features_to_class_logits(cell):
    assert output_shape("rnn_classifier", tokens(0, (4, 7)), num_classes=5, vocab_size=VOCAB, cell=cell) == (4, 5)
    assert output_shape("rnn_classifier", features(0, (4, 7, 3)), num_classes=5, cell=cell, num_layers=2) == (4, 5)
    bidirectional = {"cell": cell, "bidirectional": True, "hidden_size": 8}
    assert output_shape("rnn_classifier", features(0, (4, 7, 3)), num_classes=5, **bidirectional) == (4, 5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_char_rnn_returns_next_character_logits(cell):
    assert output_shape("char_rnn", tokens(0, (2, 9)), vocab_size=VOCAB, cell=cell, hidden_size=8) == (2, 9, VOCAB)


def test_bidirectional_classifier_reads_both_final_states():
    model = get_model("rnn_classifier", num_classes=2, cell="lstm", hidden_size=8, bidirectional=True)
    params = jax.eval_shape(model.init, key(0), features(0, (1, 4, 3)))["params"]
    assert params["Dense_0"]["kernel"].shape == (16, 2)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_backward_half_reads_the_sequence_from_its_end(cell):
    """Swapping the two directions' parameters and the halves of the read-out, the classifier reads the reversed
    sequence exactly as it read the sequence: one half holds the forward state, the other the backward one."""
    x = features(3, (BATCH, LENGTH, 3))
    classifier = Compiled("rnn_classifier", x, num_classes=3, cell=cell, hidden_size=5, bidirectional=True)
    params = classifier.variables["params"]
    first, second = sorted(params["StackedRNN_0"])  # the forward and the backward cell
    kernel = params["Dense_0"]["kernel"]  # (forward 5 + backward 5, classes)
    swapped = {
        "StackedRNN_0": {first: params["StackedRNN_0"][second], second: params["StackedRNN_0"][first]},
        "Dense_0": {"kernel": jnp.concatenate([kernel[5:], kernel[:5]]), "bias": params["Dense_0"]["bias"]},
    }
    logits = classifier(x)
    np.testing.assert_allclose(classifier.apply({"params": swapped}, x[:, ::-1]), logits, rtol=1e-5, atol=1e-6)
    assert np.abs(classifier(x[:, ::-1]) - logits).max() > 1e-2  # the order matters: the test could fail


def test_unknown_cell_is_a_config_error():
    model = get_model("rnn_classifier", cell="lstn")
    with pytest.raises(ConfigError, match="lstm"):
        jax.eval_shape(model.init, key(0), features(0, (1, 4, 3)))


# ------------------------------------------------------------------------------------------------- padding


def padded_batch(inputs: jax.Array, seed: int) -> jax.Array:
    """`inputs` with PAD steps appended and every step past a row's length (LENGTHS) replaced by junk."""
    if inputs.ndim == 2:
        junk = tokens(seed, (BATCH, LENGTH + PAD))
    else:
        junk = features(seed, (BATCH, LENGTH + PAD, inputs.shape[2]))
    real = jnp.arange(LENGTH + PAD)[None, :] < LENGTHS[:, None]
    extended = jnp.concatenate([inputs, junk[:, LENGTH:]], axis=1)
    return jnp.where(real if inputs.ndim == 2 else real[..., None], extended, junk)


@pytest.mark.parametrize(
    ("cell", "bidirectional", "vocab_size", "num_layers"),
    [("lstm", False, VOCAB, 1), ("gru", True, 0, 1), ("lstm", True, VOCAB, 2)],
    ids=["lstm-tokens", "bidirectional-gru-features", "bidirectional-2-layer-lstm-tokens"],
)
def test_appended_padding_never_changes_the_classifier_output(cell, bidirectional, vocab_size, num_layers):
    inputs = tokens(1, (BATCH, LENGTH)) if vocab_size else features(1, (BATCH, LENGTH, 2))
    config = {"cell": cell, "bidirectional": bidirectional, "vocab_size": vocab_size, "num_layers": num_layers}
    classifier = Compiled("rnn_classifier", inputs, num_classes=3, embed_dim=4, hidden_size=5, **config)
    reference = classifier(inputs, lengths=LENGTHS)  # row 0 is unpadded
    padded = padded_batch(inputs, seed=2)
    np.testing.assert_allclose(classifier(padded, lengths=LENGTHS), reference, rtol=1e-5, atol=1e-6)
    full = jnp.full((BATCH,), LENGTH + PAD)
    assert not np.allclose(classifier(padded, lengths=full), reference, rtol=1e-5, atol=1e-6)  # padding is read


def test_a_mask_works_like_lengths():
    inputs = features(1, (BATCH, LENGTH, 2))
    classifier = Compiled("rnn_classifier", inputs, num_classes=3, cell="gru", hidden_size=5, bidirectional=True)
    mask = jnp.arange(LENGTH)[None, :] < LENGTHS[:, None]
    np.testing.assert_allclose(classifier(inputs, mask=mask), classifier(inputs, lengths=LENGTHS), rtol=1e-6)


def test_a_short_sequence_gives_the_same_output_alone_or_padded_in_a_batch():
    inputs = tokens(5, (BATCH, LENGTH))
    classifier = Compiled("rnn_classifier", inputs, num_classes=3, vocab_size=VOCAB, cell="lstm", bidirectional=True)
    alone = classifier(inputs[1:2, : int(LENGTHS[1])])
    np.testing.assert_allclose(classifier(inputs, lengths=LENGTHS)[1:2], alone, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------------- dropout


def test_dropout_is_random_in_training_and_off_in_evaluation():
    inputs = tokens(4, (BATCH, LENGTH))
    config = {"vocab_size": VOCAB, "embed_dim": 4, "hidden_size": 8, "num_layers": 2, "dropout": 0.5}
    classifier = Compiled("rnn_classifier", inputs, num_classes=3, **config)
    train = [classifier(inputs, train=True, rng=key(seed)) for seed in (1, 2)]
    assert not np.allclose(train[0], train[1])
    evaluation = [classifier(inputs) for _ in range(2)]
    np.testing.assert_array_equal(evaluation[0], evaluation[1])
    assert not np.allclose(evaluation[0], train[0])


def test_the_fused_gru_cell_is_flax_gru_cell_with_the_same_parameters():
    # One matmul for the three input kernels and one for the three recurrent ones: the parameter tree (names,
    # shapes, initial values) and the outputs must stay those of nn.GRUCell, so GRU checkpoints still load.
    inputs = jax.random.normal(key(0), (BATCH, LENGTH, 5))
    ours, flax_cell = nn.RNN(GRUCell(7)), nn.RNN(nn.GRUCell(7))
    params = ours.init(key(1), inputs)
    flax_params = flax_cell.init(key(1), inputs)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, flax_params)
    jax.tree.map(np.testing.assert_array_equal, params, flax_params)
    assert set(params["params"]["cell"]) == {"ir", "iz", "in", "hr", "hz", "hn"}
    trained = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(key(2), p.shape), params)  # non-zero biases
    np.testing.assert_allclose(ours.apply(trained, inputs), flax_cell.apply(trained, inputs), atol=1e-6)
    grads = jax.grad(lambda p, model: jnp.sum(model.apply(p, inputs) ** 2))
    jax.tree.map(
        functools.partial(np.testing.assert_allclose, atol=1e-5), grads(trained, ours), grads(trained, flax_cell)
    )


@pytest.mark.parametrize(
    "call",
    [
        {},
        {"seq_lengths": LENGTHS},
        {"seq_lengths": LENGTHS, "reverse": True, "keep_order": True},
        {"reverse": True},
    ],
    ids=["whole", "padded", "padded-reversed", "reversed"],
)
def test_the_whole_sequence_lstm_is_flax_lstm_with_the_same_parameters(call):
    # LSTM computes the sequence at once and differentiates it by hand: its parameter tree (names, shapes, initial
    # values), outputs, final carry and gradients (parameters, inputs, initial carry) must stay those of
    # nn.RNN(nn.OptimizedLSTMCell), so LSTM checkpoints still load and training is unchanged.
    inputs = jax.random.normal(key(0), (BATCH, LENGTH, 5))
    ours, flax_lstm = LSTM(nn.OptimizedLSTMCell(7)), nn.RNN(nn.OptimizedLSTMCell(7))
    params = ours.init(key(1), inputs)
    flax_params = flax_lstm.init(key(1), inputs)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, flax_params)
    jax.tree.map(np.testing.assert_array_equal, params, flax_params)
    trained = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(key(2), p.shape), params)  # non-zero biases
    carry = (jax.random.normal(key(3), (BATCH, 7)), jax.random.normal(key(4), (BATCH, 7)))

    def loss(params, inputs, carry, model):
        (c, h), outputs = model.apply(params, inputs, initial_carry=carry, return_carry=True, **call)
        weights = jnp.arange(1.0, LENGTH + 1)[None, :, None]  # a different gradient at every step
        return jnp.sum(outputs**2 * weights) + jnp.sum(jnp.sin(c)) + jnp.sum(h**3)

    ours_out = ours.apply(trained, inputs, initial_carry=carry, return_carry=True, **call)
    flax_out = flax_lstm.apply(trained, inputs, initial_carry=carry, return_carry=True, **call)
    jax.tree.map(functools.partial(np.testing.assert_allclose, atol=1e-6), ours_out, flax_out)
    grads = jax.grad(loss, argnums=(0, 1, 2))
    jax.tree.map(
        functools.partial(np.testing.assert_allclose, atol=1e-5),
        grads(trained, inputs, carry, ours),
        grads(trained, inputs, carry, flax_lstm),
    )


def test_stacked_and_bidirectional_lstm_layers_keep_flax_parameter_names():
    # Checkpoints written when the layers were nn.RNN(nn.OptimizedLSTMCell) name the same parameters.
    inputs = tokens(0, (BATCH, LENGTH))
    model = get_model("rnn_classifier", vocab_size=VOCAB, cell="lstm", hidden_size=4, num_layers=2, bidirectional=True)
    params = jax.eval_shape(model.init, key(0), inputs)["params"]["StackedRNN_0"]
    assert set(params) == {f"OptimizedLSTMCell_{k}" for k in range(4)}  # layer 0 forward, backward, layer 1 ...
    cell = params["OptimizedLSTMCell_3"]
    assert set(cell) == {"ii", "if", "ig", "io", "hi", "hf", "hg", "ho"}
    assert cell["ii"]["kernel"].shape == (8, 4) and cell["hi"]["bias"].shape == (4,)


def test_the_whole_sequence_lstm_promotes_mixed_dtypes_as_flax_does():
    # bfloat16 inputs with float32 parameters (or carries): computed in float32, as nn.OptimizedLSTMCell does,
    # and differentiable (the hand-written backward pass sees one dtype).
    inputs = jax.random.normal(key(0), (BATCH, LENGTH, 5)).astype(jnp.bfloat16)
    ours, flax_lstm = LSTM(nn.OptimizedLSTMCell(7)), nn.RNN(nn.OptimizedLSTMCell(7))
    params = ours.init(key(1), inputs)
    outputs = ours.apply(params, inputs)
    assert outputs.dtype == flax_lstm.apply(params, inputs).dtype == jnp.float32
    np.testing.assert_allclose(outputs, flax_lstm.apply(params, inputs), atol=1e-6)
    grads = jax.grad(lambda p, x: jnp.sum(ours.apply(p, x) ** 2), argnums=(0, 1))(params, inputs)
    assert grads[1].dtype == jnp.bfloat16
    assert all(np.isfinite(g).all() and np.abs(g).sum() > 0 for g in jax.tree.leaves(grads[0]))
