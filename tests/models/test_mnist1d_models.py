"""The four MNIST-1D baselines of Greydanus (2020): sizes, shapes and registry errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmodels.errors import ConfigError
from jaxmodels.models import available_models, get_model


def _param_count(model) -> int:
    variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((2, 40)))
    return sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("logistic", 40 * 10 + 10),
        ("mnist1d_mlp", (40 * 100 + 100) + (100 * 100 + 100) + (100 * 10 + 10)),
        ("mnist1d_cnn", 5210),  # the paper's count
        # per direction: 3 gates x (input 1x6 + bias 6 + recurrent 6x6) + the candidate's recurrent bias 6
        # (PyTorch keeps two biases per gate: 5,134 there), then 40 steps x 12 features -> 10
        ("mnist1d_gru", 2 * (3 * (6 + 6 + 36) + 6) + 480 * 10 + 10),
    ],
)
def test_parameter_counts(name, count):
    assert _param_count(get_model(name)) == count


def test_cnn_layer_shapes_follow_the_paper():
    variables = jax.eval_shape(get_model("mnist1d_cnn").init, jax.random.key(0), jnp.zeros((2, 40)))
    params = variables["params"]
    assert params["Conv_0"]["kernel"].shape == (5, 1, 25)
    assert params["Conv_1"]["kernel"].shape == (3, 25, 25)
    assert params["Dense_0"]["kernel"].shape == (125, 10)  # 5 positions x 25 channels


def test_mlp_residual_switch_adds_the_first_hidden_layer_to_the_second():
    """Same parameters, two models: the residual one's logits are the plain one's read out from h1 + h2."""
    x = np.random.default_rng(1).normal(size=(3, 40)).astype(np.float32)
    residual, plain = get_model("mnist1d_mlp", hidden=8), get_model("mnist1d_mlp", hidden=8, residual=False)
    variables = residual.init(jax.random.key(0), x)
    p = jax.tree.map(np.asarray, variables["params"])
    h1 = np.maximum(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"], 0)
    h2 = np.maximum(h1 @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"], 0)
    read_out = lambda h: h @ p["Dense_2"]["kernel"] + p["Dense_2"]["bias"]
    np.testing.assert_allclose(residual.apply(variables, x), read_out(h1 + h2), atol=1e-5)
    np.testing.assert_allclose(plain.apply(variables, x), read_out(h2), atol=1e-5)
    assert np.abs(read_out(h1 + h2) - read_out(h2)).max() > 1e-2


@pytest.mark.parametrize("name", ["logistic", "mnist1d_mlp", "mnist1d_cnn", "mnist1d_gru"])
def test_forward_gives_one_logit_per_class(name):
    model = get_model(name)
    x = jax.random.normal(jax.random.key(1), (3, 40))
    variables = model.init(jax.random.key(0), x)
    logits = model.apply(variables, x, train=False)
    assert logits.shape == (3, 10)
    assert jnp.all(jnp.isfinite(logits))


def test_gru_reads_the_sequence_in_both_directions():
    """Each half of the Bidirectional layer's output, read through the model's logits alone: a read-out that keeps
    only one step's forward (or backward) features makes the logits a function of that half at that step."""
    model = get_model("mnist1d_gru")
    x = jax.random.normal(jax.random.key(1), (40,))
    variables = model.init(jax.random.key(0), x[None])
    kernel = variables["params"]["Dense_0"]["kernel"].reshape(40, 12, 10)  # (step, 6 forward + 6 backward, class)

    def dependence(keep: jax.Array) -> jax.Array:  # |d logits / d x[s]| for every input step s
        params = {**variables["params"], "Dense_0": {"kernel": (kernel * keep).reshape(480, 10), "bias": jnp.zeros(10)}}
        return jnp.abs(jax.jacobian(lambda signal: model.apply({"params": params}, signal[None])[0])(x)).max(axis=0)

    steps = (0, 17, 39)
    keeps = jnp.stack(
        [jnp.zeros((40, 12, 1)).at[t, 6 * half : 6 * half + 6].set(1.0) for t in steps for half in (0, 1)]
    )
    dependences = jax.jit(jax.vmap(dependence))(keeps)  # one compile for the six read-outs
    for index, step in enumerate(steps):
        forward, backward = dependences[2 * index], dependences[2 * index + 1]
        # The forward half at step t has read x[:t + 1] only, the backward half x[t:] only...
        assert int(jnp.count_nonzero(forward[step + 1 :])) == 0 and int(jnp.count_nonzero(backward[:step])) == 0
        # ... and each has really read all of it, from its first step on.
        assert forward[0] > 0 and forward[step] > 0 and backward[-1] > 0 and backward[step] > 0


def test_unknown_model_suggests_the_closest_name():
    with pytest.raises(ConfigError, match=r"unknown model 'mnist1d_cn'.*Did you mean 'mnist1d_cnn'"):
        get_model("mnist1d_cn")


def test_unknown_model_argument_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"model 'mnist1d_cnn' has no argument 'chanels'.*'channels'"):
        get_model("mnist1d_cnn", chanels=3)


def test_registry_lists_the_paper_models():
    assert {"logistic", "mnist1d_mlp", "mnist1d_cnn", "mnist1d_gru"} <= set(available_models())
