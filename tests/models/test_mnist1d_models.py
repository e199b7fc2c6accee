"""The four MNIST-1D baselines of Greydanus (2020): sizes, shapes and registry errors."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
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


@pytest.mark.parametrize("name", ["logistic", "mnist1d_mlp", "mnist1d_cnn", "mnist1d_gru"])
def test_forward_gives_one_logit_per_class(name):
    model = get_model(name)
    x = jax.random.normal(jax.random.key(1), (3, 40))
    variables = model.init(jax.random.key(0), x)
    logits = model.apply(variables, x, train=False)
    assert logits.shape == (3, 10)
    assert jnp.all(jnp.isfinite(logits))


def test_gru_reads_the_sequence_in_both_directions():
    model = get_model("mnist1d_gru")
    x = jax.random.normal(jax.random.key(1), (40,))
    variables = model.init(jax.random.key(0), x[None])

    def step_outputs(x):  # the Bidirectional layer's outputs: 40 steps x (6 forward + 6 backward features)
        _, captured = model.apply(
            variables,
            x[None],
            capture_intermediates=lambda module, _: isinstance(module, nn.Bidirectional),
            mutable="intermediates",
        )
        return captured["intermediates"]["Bidirectional_0"]["__call__"][0][0]

    jacobian = jnp.abs(jax.jacobian(step_outputs)(x))  # (output step t, feature, input step s)
    forward, backward = jacobian[:, :6].max(axis=1), jacobian[:, 6:].max(axis=1)  # (t, s)
    later = jnp.triu(jnp.ones((40, 40), bool), k=1)  # s > t
    # The forward half at step t has read x[:t + 1] only, the backward half x[t:] only...
    assert int(jnp.count_nonzero(forward[later])) == 0 and int(jnp.count_nonzero(backward[later.T])) == 0
    # ... and each has really read all of it: the backward output at t=0 depends on x[-1], and vice versa.
    assert forward[0, 0] > 0 and forward[-1, 0] > 0 and backward[-1, -1] > 0 and backward[0, -1] > 0


def test_unknown_model_suggests_the_closest_name():
    with pytest.raises(ConfigError, match=r"unknown model 'mnist1d_cn'.*Did you mean 'mnist1d_cnn'"):
        get_model("mnist1d_cn")


def test_unknown_model_argument_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"model 'mnist1d_cnn' has no argument 'chanels'.*'channels'"):
        get_model("mnist1d_cnn", chanels=3)


def test_registry_lists_the_paper_models():
    assert {"logistic", "mnist1d_mlp", "mnist1d_cnn", "mnist1d_gru"} <= set(available_models())
