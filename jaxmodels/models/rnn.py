"""Recurrent networks: a sequence classifier and a character-level language model.

Cells, chosen by the `cell` field:
- 'rnn': Elman (1990), "Finding Structure in Time" (`nn.SimpleCell`, tanh).
- 'lstm': Hochreiter & Schmidhuber (1997), "Long Short-Term Memory", with forget gates (`LSTM` below: the
  parameters and outputs of `nn.RNN(nn.OptimizedLSTMCell)`, computed over the whole sequence by `lstm.lstm`).
- 'gru': Cho et al. (2014), "Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine
  Translation", Figure 2 (`GRUCell` below: `nn.GRUCell` with its kernels concatenated).
Layers stack as in Graves (2013), "Generating Sequences With Recurrent Neural Networks", Figure 1 (without the
skip connections); `bidirectional` runs a second RNN backwards, Schuster & Paliwal (1997), "Bidirectional
Recurrent Neural Networks".
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.recurrent import DenseParams, flip_sequences

from jaxmodels.errors import ConfigError
from jaxmodels.models.lstm import at_steps, lstm
from jaxmodels.models.registry import register, suggest

Carry = Any  # a cell's state: h, or (c, h) for the LSTM; one per layer, a (forward, backward) pair if bidirectional


class GRUCell(nn.GRUCell):
    """Flax's `nn.GRUCell` (Cho et al. 2014, Figure 2) with its three input and three recurrent kernels each
    concatenated into one matmul, as `nn.OptimizedLSTMCell` does for the LSTM.

        r = sigmoid(W_ir x + b_ir + W_hr h)          z = sigmoid(W_iz x + b_iz + W_hz h)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))   h' = (1 - z) * n + z * h

    The same parameters (names, shapes, initialisers; the class keeps the name so that the modules it lives in
    name it `GRUCell_k` as before and checkpoints still load) and the same outputs; 2 matmuls a step instead of
    6: the MNIST-1D GRU's gradient 1.5x faster on a CPU.
    """

    @nn.compact
    def __call__(self, carry: jax.Array, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = carry
        features, gates = h.shape[-1], ("r", "z", "n")

        def dense_params(name: str, x: jax.Array, kernel_init: Any, use_bias: bool) -> tuple[jax.Array, Any]:
            return DenseParams(
                features, use_bias, self.param_dtype, kernel_init=kernel_init, bias_init=self.bias_init, name=name
            )(x)

        input_params = [dense_params(f"i{gate}", inputs, self.kernel_init, True) for gate in gates]
        hidden_params = [dense_params(f"h{gate}", h, self.recurrent_kernel_init, gate == "n") for gate in gates]
        x_kernel = jnp.concatenate([kernel for kernel, _ in input_params], axis=-1)
        x_bias = jnp.concatenate([bias for _, bias in input_params], axis=-1)
        h_kernel = jnp.concatenate([kernel for kernel, _ in hidden_params], axis=-1)
        inputs, h, x_kernel, x_bias, h_kernel, n_bias = nn.dtypes.promote_dtype(
            inputs, h, x_kernel, x_bias, h_kernel, hidden_params[2][1], dtype=self.dtype
        )
        x_r, x_z, x_n = jnp.split(inputs @ x_kernel + x_bias, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(h @ h_kernel, 3, axis=-1)
        r = self.gate_fn(x_r + h_r)
        z = self.gate_fn(x_z + h_z)
        n = self.activation_fn(x_n + r * (h_n + n_bias))
        new_h = (1.0 - z) * n + z * h
        return new_h, new_h


class LSTM(nn.Module):
    """One LSTM layer over (batch, time, in) sequences, a drop-in for `nn.RNN(cell)` with an
    `nn.OptimizedLSTMCell`: the same call (`initial_carry`, `seq_lengths`, `return_carry`, `reverse`,
    `keep_order`), the cell's parameters and the same outputs, computed by `lstm.lstm` (the input projections of
    all steps one matmul, the backward pass written by hand: the char LSTM's gradient 1.7x faster on a CPU). The
    carry is (c, h), after each sequence's last real step."""

    cell: nn.OptimizedLSTMCell

    @nn.compact
    def __call__(
        self,
        inputs: jax.Array,
        *,
        initial_carry: Carry | None = None,
        seq_lengths: jax.Array | None = None,
        return_carry: bool = False,
        reverse: bool = False,
        keep_order: bool = False,
        **unused: Any,  # nn.Bidirectional passes init_key and time_major=False; the carry starts at zeros
    ) -> jax.Array | tuple[Carry, jax.Array]:
        batch, time = inputs.shape[:2]
        if reverse:
            inputs = flip_sequences(inputs, seq_lengths, num_batch_dims=1, time_major=False)
        if initial_carry is None:
            zeros = jnp.zeros((batch, self.cell.features), inputs.dtype)
            initial_carry = (zeros, zeros)
        # Flax creates a cell's parameters the first time it runs: one step does (XLA drops it, its result unused).
        self.cell(initial_carry, inputs[:, 0])
        params = self.cell.variables["params"]
        weights = [
            jnp.concatenate([params[f"i{gate}"]["kernel"] for gate in "ifgo"], axis=-1),
            jnp.concatenate([params[f"h{gate}"]["kernel"] for gate in "ifgo"], axis=-1),
            jnp.concatenate([params[f"h{gate}"]["bias"] for gate in "ifgo"], axis=-1),
        ]
        # One dtype throughout, promoted as the cell promotes: `lstm`'s loops carry it unchanged.
        dtype = jnp.result_type(inputs, *weights)
        inputs, *weights = (array.astype(dtype) for array in (inputs, *weights))
        initial_carry = tuple(state.astype(dtype) for state in initial_carry)
        last = jnp.full((batch,), time - 1) if seq_lengths is None else jnp.asarray(seq_lengths) - 1
        h, c_last = lstm(inputs.swapaxes(0, 1), *weights, initial_carry, last)
        carry = (c_last, at_steps(h, last))
        outputs = h.swapaxes(0, 1)
        if reverse and keep_order:
            outputs = flip_sequences(outputs, seq_lengths, num_batch_dims=1, time_major=False)
        return (carry, outputs) if return_carry else outputs


CELLS: dict[str, type[nn.RNNCellBase]] = {"rnn": nn.SimpleCell, "lstm": nn.OptimizedLSTMCell, "gru": GRUCell}


def make_cell(kind: str, hidden_size: int) -> nn.RNNCellBase:
    """A fresh recurrent cell of `kind` ('rnn' | 'lstm' | 'gru') with `hidden_size` units."""
    if kind not in CELLS:
        raise ConfigError(f"unknown cell {kind!r} (config key model.cell).{suggest(kind, sorted(CELLS))}")
    return CELLS[kind](features=hidden_size)


def make_layer(kind: str, hidden_size: int, **kwargs: Any) -> nn.Module:
    """One recurrent layer over whole sequences: `LSTM` for 'lstm', else `nn.RNN`, of a fresh cell (named by its
    class in the calling module, e.g. `OptimizedLSTMCell_0`, where its parameters live)."""
    layer = LSTM if kind == "lstm" else nn.RNN
    return layer(make_cell(kind, hidden_size), **kwargs)


def hidden_state(carry: Carry) -> jax.Array:
    """The hidden state h of one cell's carry: the LSTM carries (c, h), the other cells carry h."""
    return carry[1] if isinstance(carry, tuple) else carry


class StackedRNN(nn.Module):
    """`num_layers` recurrent layers, each reading the previous layer's outputs (Graves 2013, Figure 1).

    (batch, time, features) -> (carries, (batch, time, hidden_size [x2 if bidirectional])). With `seq_lengths`
    (batch,), each carry is the state after the sequence's last real step, and the backward direction starts at
    that step, so right-padding changes nothing. Dropout acts between layers (Zaremba et al. 2014).
    """

    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        *,
        seq_lengths: jax.Array | None = None,
        initial_carry: tuple[Carry, ...] | None = None,
        train: bool = False,
    ) -> tuple[tuple[Carry, ...], jax.Array]:
        carries = []
        for i in range(self.num_layers):
            if i > 0:
                x = nn.Dropout(self.dropout)(x, deterministic=not train)
            if self.bidirectional:
                forward = make_layer(self.cell, self.hidden_size)
                backward = make_layer(self.cell, self.hidden_size)
                layer = nn.Bidirectional(forward, backward, name=f"layer_{i}")
            else:
                layer = make_layer(self.cell, self.hidden_size, name=f"layer_{i}")
            carry, x = layer(
                x,
                seq_lengths=seq_lengths,
                initial_carry=None if initial_carry is None else initial_carry[i],
                return_carry=True,
            )
            carries.append(carry)
        return tuple(carries), x


@register("rnn_classifier")
class RNNClassifier(nn.Module):
    """Sequence classifier: (embedding ->) stacked RNN -> final hidden state(s) -> Dense(num_classes).

    Inputs are (batch, time) int tokens when `vocab_size` > 0, else (batch, time, features) floats, or
    (batch, time) floats read as one feature per step (an MNIST-1D signal). Right-padded
    batches pass `lengths` (batch,) int or `mask` (batch, time) bool (True at real steps); padding does not change
    the logits. Bidirectional: the last layer's forward state (after the last real step) and backward state
    (after step 0) are concatenated, as in Schuster & Paliwal (1997). Every length must be >= 1.
    """

    num_classes: int = 2
    vocab_size: int = 0
    embed_dim: int = 64
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0

    @nn.compact
    def __call__(
        self,
        inputs: jax.Array,
        *,
        lengths: jax.Array | None = None,
        mask: jax.Array | None = None,
        train: bool = False,
    ) -> jax.Array:
        if lengths is not None and mask is not None:
            raise ValueError("pass lengths or mask, not both")
        batch, time = inputs.shape[:2]
        if mask is not None:
            lengths = mask.astype(jnp.int32).sum(axis=-1)
        if lengths is None:
            lengths = jnp.full((batch,), time, dtype=jnp.int32)
        x = nn.Embed(self.vocab_size, self.embed_dim)(inputs) if self.vocab_size else inputs.astype(jnp.float32)
        if not self.vocab_size and x.ndim == 2:
            x = x[..., None]  # a scalar per step: one feature
        rnn = StackedRNN(self.cell, self.hidden_size, self.num_layers, self.bidirectional, self.dropout)
        carries, _ = rnn(x, seq_lengths=lengths, train=train)
        last = carries[-1]
        if self.bidirectional:
            h = jnp.concatenate([hidden_state(last[0]), hidden_state(last[1])], axis=-1)
        else:
            h = hidden_state(last)
        h = nn.Dropout(self.dropout)(h, deterministic=not train)
        return nn.Dense(self.num_classes)(h)


@register("char_rnn")
class CharRNN(nn.Module):
    """Character-level language model: embedding -> stacked RNN -> Dense(vocab_size) (Graves 2013, Figure 1;
    Karpathy, Johnson & Fei-Fei (2015), "Visualizing and Understanding Recurrent Networks").

    (batch, time) int tokens -> (batch, time, vocab_size) next-character logits. With `decode=True` the call
    continues from the carries kept in the 'cache' collection (pass mutable=['cache']) and stores the new ones:
    the protocol of `sampling.generate`.
    """

    vocab_size: int = 65
    embed_dim: int = 64
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.0

    @property
    def context_length(self) -> None:
        """No limit: the carried state summarises all the text read so far."""
        return None

    @nn.compact
    def __call__(self, tokens: jax.Array, *, train: bool = False, decode: bool = False) -> jax.Array:
        x = nn.Embed(self.vocab_size, self.embed_dim)(tokens)
        rnn = StackedRNN(self.cell, self.hidden_size, self.num_layers, dropout=self.dropout)
        cached = decode and self.has_variable("cache", "carry")
        carries, h = rnn(x, initial_carry=self.get_variable("cache", "carry") if cached else None, train=train)
        if decode:
            self.put_variable("cache", "carry", carries)
        h = nn.Dropout(self.dropout)(h, deterministic=not train)
        return nn.Dense(self.vocab_size)(h)
