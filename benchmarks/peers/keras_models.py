"""The cases in Keras 3 on its JAX backend (KERAS_BACKEND=jax), trained with `model.fit`.

The same architectures as jaxmodels' models, written with Keras layers, with the same initialisation where Keras
allows it. Departures, none of which changes the cost of a step by much: the GPT's and BERT's output layers
are untied Dense layers (Keras' `Embedding` has no tied read-out), BERT has no segment embedding (every token
is segment 0 in these batches), and the ResNet's strided convolutions pad 'same' (asymmetrically). Weight decay:
Keras' AdamW (decoupled, biases and normalisation excluded), an L2 kernel regulariser for Adam/SGD.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import layers, ops


def _uniform(fan_in: int) -> keras.initializers.Initializer:
    """PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)): jaxmodels' `torch_init` for the MNIST-1D models."""
    bound = 1 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def _dense(units: int, fan_in: int, **kwargs: Any) -> layers.Dense:
    return layers.Dense(units, kernel_initializer=_uniform(fan_in), bias_initializer=_uniform(fan_in), **kwargs)


def _normal() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=0.02)


def mnist1d_cnn(model: dict[str, Any]) -> keras.Model:
    inputs = keras.Input((40,))
    h = layers.Reshape((40, 1))(inputs)
    for kernel in (5, 3, 3):
        fan_in = kernel * h.shape[-1]
        h = layers.ZeroPadding1D(1)(h)
        init = {"kernel_initializer": _uniform(fan_in), "bias_initializer": _uniform(fan_in)}
        h = layers.Conv1D(model["channels"], kernel, strides=2, activation="relu", **init)(h)
    return keras.Model(inputs, _dense(model["num_classes"], 5 * model["channels"])(layers.Flatten()(h)))


def mnist1d_mlp(model: dict[str, Any]) -> keras.Model:
    inputs, hidden = keras.Input((40,)), model["hidden"]
    h = _dense(hidden, 40, activation="relu")(inputs)
    h = h + _dense(hidden, hidden, activation="relu")(h)
    return keras.Model(inputs, _dense(model["num_classes"], hidden)(h))


def mnist1d_gru(model: dict[str, Any]) -> keras.Model:
    inputs, hidden = keras.Input((40,)), model["hidden"]
    init = {name: _uniform(hidden) for name in ("kernel_initializer", "recurrent_initializer", "bias_initializer")}
    h = layers.Bidirectional(layers.GRU(hidden, return_sequences=True, **init))(layers.Reshape((40, 1))(inputs))
    return keras.Model(inputs, _dense(model["num_classes"], 80 * hidden)(layers.Flatten()(h)))


def char_lstm(model: dict[str, Any]) -> keras.Model:
    tokens = keras.Input((None,), dtype="int32")
    h = layers.Embedding(model["vocab_size"], model["embed_dim"])(tokens)
    cell = {"lstm": layers.LSTM, "gru": layers.GRU, "rnn": layers.SimpleRNN}[model["cell"]]
    for _ in range(model["num_layers"]):
        h = cell(model["hidden_size"], return_sequences=True)(h)
    return keras.Model(tokens, layers.Dense(model["vocab_size"])(h))


class TokensAndPositions(layers.Layer):
    """Token + learned position embeddings, N(0, 0.02)."""

    def __init__(self, vocab_size: int, length: int, dim: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.token = layers.Embedding(vocab_size, dim, embeddings_initializer=_normal())
        self.position = layers.Embedding(length, dim, embeddings_initializer=_normal())

    def call(self, tokens: Any) -> Any:
        return self.token(tokens) + self.position(ops.arange(ops.shape(tokens)[1]))


def _attention(heads: int, dim: int) -> layers.MultiHeadAttention:
    return layers.MultiHeadAttention(heads, dim // heads, kernel_initializer=_normal())


def _feed_forward(x: Any, hidden: int, approximate: bool) -> Any:
    h = layers.Dense(hidden, kernel_initializer=_normal())(x)
    return layers.Dense(x.shape[-1], kernel_initializer=_normal())(keras.activations.gelu(h, approximate=approximate))


def char_gpt(model: dict[str, Any]) -> keras.Model:
    tokens, dim = keras.Input((model["block_size"],), dtype="int32"), model["embed_dim"]
    h = TokensAndPositions(model["vocab_size"], model["block_size"], dim)(tokens)
    for _ in range(model["num_layers"]):
        normed = layers.LayerNormalization(epsilon=1e-5)(h)
        h = h + _attention(model["num_heads"], dim)(normed, normed, use_causal_mask=True)
        h = h + _feed_forward(layers.LayerNormalization(epsilon=1e-5)(h), 4 * dim, approximate=True)
    h = layers.LayerNormalization(epsilon=1e-5)(h)
    return keras.Model(tokens, layers.Dense(model["vocab_size"], kernel_initializer=_normal())(h))


def bert_mlm(model: dict[str, Any]) -> keras.Model:
    tokens, dim = keras.Input((None,), dtype="int32"), model["embed_dim"]
    h = TokensAndPositions(model["vocab_size"], model["max_length"], dim)(tokens)
    h = layers.LayerNormalization(epsilon=1e-12)(h)
    for _ in range(model["num_layers"]):
        h = layers.LayerNormalization(epsilon=1e-12)(h + _attention(model["num_heads"], dim)(h, h))
        h = layers.LayerNormalization(epsilon=1e-12)(h + _feed_forward(h, model["mlp_dim"], approximate=False))
    h = layers.Dense(dim, kernel_initializer=_normal())(h)
    h = layers.LayerNormalization(epsilon=1e-12)(keras.activations.gelu(h, approximate=False))
    return keras.Model(tokens, layers.Dense(model["vocab_size"], kernel_initializer=_normal())(h))


def cifar_resnet20(model: dict[str, Any], weight_decay: float, shape: tuple[int, ...]) -> keras.Model:
    he = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None

    def conv(x: Any, filters: int, stride: int = 1) -> Any:
        return layers.Conv2D(filters, 3, stride, "same", use_bias=False, kernel_initializer=he,
                             kernel_regularizer=regularizer)(x)  # fmt: skip

    def norm(x: Any) -> Any:
        return layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)

    images = keras.Input(shape)
    x = ops.relu(norm(conv(images, 16)))
    for stage, filters in enumerate((16, 32, 64)):
        for block in range((model["depth"] - 2) // 6):
            stride = 2 if stage > 0 and block == 0 else 1
            out = norm(conv(ops.relu(norm(conv(x, filters, stride))), filters))
            shortcut, extra = x[:, ::stride, ::stride, :], filters - x.shape[-1]
            if extra:
                shortcut = ops.pad(shortcut, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
            x = ops.relu(out + shortcut)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, layers.Dense(model["num_classes"], kernel_regularizer=regularizer)(x))


def _schedule(optimizer: dict[str, Any], num_steps: int) -> Any:
    rate, final = optimizer["learning_rate"], optimizer["final_lr_fraction"]
    if optimizer["schedule"] == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, num_steps, alpha=final)
    if optimizer["schedule"] == "warmup_cosine":
        warmup = optimizer["warmup_steps"]
        return keras.optimizers.schedules.CosineDecay(
            0.0, num_steps - warmup, alpha=final, warmup_target=rate, warmup_steps=warmup
        )
    return rate


def make_optimizer(optimizer: dict[str, Any], num_steps: int) -> keras.optimizers.Optimizer:
    """Keras' Adam, AdamW or SGD with the jaxmodels schedule and global gradient-norm clipping."""
    common = {"learning_rate": _schedule(optimizer, num_steps), "global_clipnorm": optimizer["grad_clip_norm"] or None}
    if optimizer["name"] == "sgd":
        return keras.optimizers.SGD(momentum=optimizer["momentum"], nesterov=optimizer["nesterov"], **common)
    adam = {"beta_1": optimizer["b1"], "beta_2": optimizer["b2"], "epsilon": optimizer["eps"], **common}
    if optimizer["name"] == "adamw":
        result = keras.optimizers.AdamW(weight_decay=optimizer["weight_decay"], **adam)
        result.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        return result
    return keras.optimizers.Adam(**adam)


BUILDERS = {
    "mnist1d_cnn": mnist1d_cnn,
    "mnist1d_mlp": mnist1d_mlp,
    "mnist1d_gru": mnist1d_gru,
    "char_lstm": char_lstm,
    "char_gpt": char_gpt,
    "bert_mlm": bert_mlm,
}


class KerasRunner:
    """One case in Keras; `run(n)` is one `model.fit` epoch over n of the shared batches (cycled)."""

    def __init__(self, case: str, batches: dict[str, np.ndarray], config: dict[str, Any]):
        keras.utils.set_random_seed(0)
        settings = config["optimizer"]
        if case == "cifar_resnet20":
            model = cifar_resnet20(config["model"], settings["weight_decay"], batches["inputs"].shape[2:])
        else:
            model = BUILDERS[case](config["model"])
        model.compile(
            optimizer=make_optimizer(settings, config["train"]["num_steps"]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        self.model, self.batches = model, batches
        self.batch_size = batches["inputs"].shape[1]
        self._epochs: dict[int, list[np.ndarray | None]] = {}
        self.run(1)

    def run(self, steps: int) -> None:
        if steps not in self._epochs:  # built once per length, outside the timed calls that follow
            order = np.arange(steps) % len(self.batches["inputs"])
            target = "label" if "label" in self.batches else "targets"
            self._epochs[steps] = [self._rows(key, order) for key in ("inputs", target, "target_weights")]
        x, y, weights = self._epochs[steps]
        self.model.fit(x, y, sample_weight=weights, batch_size=self.batch_size, epochs=1, shuffle=False, verbose=0)

    def _rows(self, key: str, order: np.ndarray) -> np.ndarray | None:
        """The batches `order` of array `key`, as one array of examples (None if the batches lack `key`)."""
        if key not in self.batches:
            return None
        array = self.batches[key][order]
        return array.reshape(-1, *array.shape[2:])
