"""The four MNIST-1D baselines of Greydanus (2020), "Scaling down deep learning", Table 1.

Each mirrors the paper's PyTorch code (github.com/greydanus/mnist1d, `models.py`): inputs
are (batch, 40) float signals, outputs are (batch, 10) logits. With `torch_init=True` (the
default) weights *and* biases start as PyTorch's defaults do, U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
instead of Flax's LeCun-normal kernels and zero biases: the paper's numbers were measured
with that initialisation, and the small GRU in particular trains differently without it.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmodels.models.registry import register
from jaxmodels.models.rnn import GRUCell


def torch_uniform(fan_in: int) -> nn.initializers.Initializer:
    """PyTorch's default Linear/Conv/RNN initialiser: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _initialisers(torch_init: bool, fan_in: int) -> dict:
    """kernel_init/bias_init keyword arguments for a layer: PyTorch's, or Flax's defaults."""
    return {"kernel_init": torch_uniform(fan_in), "bias_init": torch_uniform(fan_in)} if torch_init else {}


@register("logistic")
class LogisticRegression(nn.Module):
    """A single linear layer on the flattened input: the paper's 'logistic regression' row."""

    num_classes: int = 10
    torch_init: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.num_classes, **_initialisers(self.torch_init, x.shape[-1]))(x)


@register("mnist1d_mlp")
class MNIST1DMLP(nn.Module):
    """40-100-100-10 ReLU MLP; as in the paper's code, the second hidden layer is residual.

    `residual=False` gives the plain 40-h-h-10 MLP of the MNIST-1D repository's double-descent notebook.
    """

    hidden: int = 100
    num_classes: int = 10
    torch_init: bool = True
    residual: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        x = x.reshape(x.shape[0], -1)
        h = nn.relu(nn.Dense(self.hidden, **_initialisers(self.torch_init, x.shape[-1]))(x))
        second = nn.relu(nn.Dense(self.hidden, **_initialisers(self.torch_init, self.hidden))(h))
        h = h + second if self.residual else second
        return nn.Dense(self.num_classes, **_initialisers(self.torch_init, self.hidden))(h)


@register("mnist1d_cnn")
class MNIST1DCNN(nn.Module):
    """Three strided Conv1d + ReLU, then a linear read-out of the flattened features (5,210 parameters).

    Signal length 40 -> 19 -> 10 -> 5 positions, 25 channels each: 125 features -> 10 logits.
    """

    channels: int = 25
    num_classes: int = 10
    torch_init: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        h = x[..., None]  # (batch, length, 1 channel)
        for kernel in (5, 3, 3):
            init = _initialisers(self.torch_init, kernel * h.shape[-1])
            h = nn.relu(nn.Conv(self.channels, (kernel,), strides=(2,), padding=((1, 1),), **init)(h))
        h = h.reshape(h.shape[0], -1)
        return nn.Dense(self.num_classes, **_initialisers(self.torch_init, h.shape[-1]))(h)


@register("mnist1d_gru")
class MNIST1DGRU(nn.Module):
    """Bidirectional GRU (hidden 6) over the 40 scalar steps; all step outputs feed one linear layer."""

    hidden: int = 6
    num_classes: int = 10
    torch_init: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        sequence = x[..., None].astype(jnp.float32)  # (batch, time, 1 feature)
        # PyTorch draws every GRU weight and bias from U(-1/sqrt(hidden), 1/sqrt(hidden)).
        init = torch_uniform(self.hidden)
        inits = {"kernel_init": init, "recurrent_kernel_init": init, "bias_init": init} if self.torch_init else {}
        outputs = nn.Bidirectional(nn.RNN(GRUCell(self.hidden, **inits)), nn.RNN(GRUCell(self.hidden, **inits)))(
            sequence
        )
        outputs = outputs.reshape(outputs.shape[0], -1)
        return nn.Dense(self.num_classes, **_initialisers(self.torch_init, outputs.shape[-1]))(outputs)
