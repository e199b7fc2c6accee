"""The four MNIST-1D baselines of Greydanus (2020), "Scaling down deep learning", Table 1.

Each mirrors the paper's PyTorch code (github.com/greydanus/mnist1d, `models.py`):
inputs are (batch, 40) float signals, outputs are (batch, 10) logits.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmodels.models.registry import register


@register("logistic")
class LogisticRegression(nn.Module):
    """A single linear layer on the flattened input: the paper's 'logistic regression' row."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


@register("mnist1d_mlp")
class MNIST1DMLP(nn.Module):
    """40-100-100-10 ReLU MLP; as in the paper's code, the second hidden layer is residual."""

    hidden: int = 100
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        h = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
        h = h + nn.relu(nn.Dense(self.hidden)(h))
        return nn.Dense(self.num_classes)(h)


@register("mnist1d_cnn")
class MNIST1DCNN(nn.Module):
    """Three strided Conv1d + ReLU, then a linear read-out of the flattened features (5,210 parameters).

    Signal length 40 -> 19 -> 10 -> 5 positions, 25 channels each: 125 features -> 10 logits.
    """

    channels: int = 25
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        h = x[..., None]  # (batch, length, 1 channel)
        for kernel in (5, 3, 3):
            h = nn.relu(nn.Conv(self.channels, (kernel,), strides=(2,), padding=((1, 1),))(h))
        return nn.Dense(self.num_classes)(h.reshape(h.shape[0], -1))


@register("mnist1d_gru")
class MNIST1DGRU(nn.Module):
    """Bidirectional GRU (hidden 6) over the 40 scalar steps; all step outputs feed one linear layer."""

    hidden: int = 6
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        sequence = x[..., None].astype(jnp.float32)  # (batch, time, 1 feature)
        outputs = nn.Bidirectional(nn.RNN(nn.GRUCell(self.hidden)), nn.RNN(nn.GRUCell(self.hidden)))(sequence)
        return nn.Dense(self.num_classes)(outputs.reshape(outputs.shape[0], -1))
