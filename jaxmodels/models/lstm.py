"""The LSTM over a whole sequence, with its backward pass written out by hand.

Hochreiter & Schmidhuber (1997), "Long Short-Term Memory", with the forget gate of Gers, Schmidhuber & Cummins
(2000), as Flax's `nn.OptimizedLSTMCell` computes it at each step t:

    i_t = sigmoid(x_t W_ii + h_{t-1} W_hi + b_i)      f_t = sigmoid(x_t W_if + h_{t-1} W_hf + b_f)
    g_t = tanh(x_t W_ig + h_{t-1} W_hg + b_g)         o_t = sigmoid(x_t W_io + h_{t-1} W_ho + b_o)
    c_t = f_t * c_{t-1} + i_t * g_t                   h_t = o_t * tanh(c_t)

Differentiating a `lax.scan` of that cell is correct but slow on a CPU, so `lstm` gives XLA a program shaped as
cuDNN's and PyTorch's LSTMs are (the char LSTM's gradient: 54 -> 32 ms on 2 CPU cores):
- The input projections x_t W_i of all steps are one matmul before the loop, and the weight and input gradients
  one matmul each after it; only h_{t-1} W_h (forwards) and dz_t W_h^T (backwards) are left in the loops.
- The forward loop keeps the four gates and c_t of each step; the backward loop turns them into the step's
  pre-activation gradient dz_t. Autodiff of the scan instead saves a dozen residuals a step, each its own small
  kernel, and adds up the weight gradients step by step.
- Each per-step quantity is its own (time, batch, hidden) array: XLA's CPU code for a fusion that cuts columns
  out of one row of a (time, batch, 4 x hidden) array ran 7x slower than one reading a whole row (41 vs 6 us).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Carry = tuple[jax.Array, jax.Array]  # (c, h), each (batch, hidden)


def _gates(z: jax.Array) -> list[jax.Array]:
    """(..., 4 x hidden) -> the i, f, g, o blocks, in Flax's order."""
    return jnp.split(z, 4, axis=-1)


def _rows(x: jax.Array) -> jax.Array:
    """(time, batch, k) -> (time x batch, k): XLA's CPU dot is slower on the 3-D form."""
    return x.reshape(-1, x.shape[-1])


def _flat_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """(time, batch, k) @ (k, n) as one 2-D matmul."""
    return (_rows(x) @ w).reshape(*x.shape[:2], -1)


def at_steps(sequence: jax.Array, steps: jax.Array) -> jax.Array:
    """(time, batch, ...) -> (batch, ...): sequence b's entry at step `steps[b]`."""
    return jnp.take_along_axis(sequence, steps[None, :, None], axis=0)[0]


@jax.custom_vjp
def lstm(
    x: jax.Array, input_kernel: jax.Array, recurrent_kernel: jax.Array, bias: jax.Array, carry: Carry, last: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Runs the LSTM over time-major `x` (time, batch, in) from `carry` = (c_{-1}, h_{-1}).

    `input_kernel` (in, 4 x hidden), `recurrent_kernel` (hidden, 4 x hidden) and `bias` (4 x hidden) hold the
    i, f, g, o blocks side by side. Returns h_t for every step (time, batch, hidden) and, per sequence b, the memory
    cell c at step `last[b]` (batch, hidden): a padded sequence's carry ends at its last real step.
    """
    return _forward(x, input_kernel, recurrent_kernel, bias, carry, last)[0]


def _forward(x, input_kernel, recurrent_kernel, bias, carry, last):
    """`lstm`'s outputs and what its backward pass reads: the inputs, and each step's gates, c_t and h_t."""
    projected = _flat_matmul(x, input_kernel) + bias

    def step(carry: Carry, projected_t: list[jax.Array]) -> tuple[Carry, tuple[jax.Array, ...]]:
        c, h = carry
        z_i, z_f, z_g, z_o = (z + p for z, p in zip(_gates(h @ recurrent_kernel), projected_t, strict=True))
        i, f, g, o = jax.nn.sigmoid(z_i), jax.nn.sigmoid(z_f), jnp.tanh(z_g), jax.nn.sigmoid(z_o)
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (c, h), (i, f, g, o, c, h)

    _, (i, f, g, o, c, h) = jax.lax.scan(step, carry, _gates(projected))
    return (h, at_steps(c, last)), (x, input_kernel, recurrent_kernel, carry, last, i, f, g, o, c, h)


def _backward(residuals, cotangents):
    """The gradients of `lstm`'s inputs (none for the integer `last`) from those of its outputs, backwards in time:
    dc_t and dh_t give each step's pre-activation gradient dz_t = (di, df, dg, do) * the gates' derivatives, and
    dh_{t-1} = dz_t W_h^T; the weight and input gradients are then one matmul each over all the steps' dz_t."""
    x, input_kernel, recurrent_kernel, (c0, h0), last, i, f, g, o, c, h = residuals
    dh_out, dc_last = cotangents
    c_prev = jnp.concatenate([c0[None], c[:-1]])
    h_prev = jnp.concatenate([h0[None], h[:-1]])
    recurrent_kernel_t = recurrent_kernel.T

    def step(carry: Carry, xs: tuple[jax.Array, ...]) -> tuple[Carry, jax.Array]:
        dc, dh = carry  # the loss's gradient with respect to c_t and h_t through the steps after t
        t, dh_t, i, f, g, o, c, c_prev = xs
        dh = dh + dh_t
        tanh_c = jnp.tanh(c)
        dc = dc + jnp.where((t == last)[:, None], dc_last, 0.0) + dh * o * (1 - tanh_c * tanh_c)
        dz = jnp.concatenate(
            [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g), dh * tanh_c * o * (1 - o)], axis=-1
        )
        return (dc * f, dz @ recurrent_kernel_t), dz

    steps = jnp.arange(x.shape[0])
    (dc0, dh0), dz = jax.lax.scan(
        step, (jnp.zeros_like(c0), jnp.zeros_like(h0)), (steps, dh_out, i, f, g, o, c, c_prev), reverse=True
    )
    dz_flat = _rows(dz)
    d_input_kernel = _rows(x).T @ dz_flat
    d_recurrent_kernel = _rows(h_prev).T @ dz_flat
    dx = _flat_matmul(dz, input_kernel.T)
    return dx, d_input_kernel, d_recurrent_kernel, dz_flat.sum(axis=0), (dc0, dh0), None


lstm.defvjp(_forward, _backward)
