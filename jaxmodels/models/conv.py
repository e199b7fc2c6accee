"""A convolution whose filter gradient is written for XLA's CPU backend: `conv_general_dilated` and `Conv`.

Why: on a CPU, XLA computes a convolution's forward pass and its input gradient fast (YNNPACK or Eigen
kernels), but its filter gradient slowly. That gradient contracts over the batch and the spatial positions,
so XLA lays both operands out with the batch innermost: it transposes the layer's input and output gradient,
and its fusion pass recomputes the input inside that transpose, back through every residual block of the
stage (additions and ReLUs are cheap to recompute, but not in a transposed order). In ResNet-20's step on
32x32 images those transposes and the filter-gradient convolutions took more time than everything else.

Here the filter gradient is one matmul per kernel tap, on the arrays as they are laid out (channels last):
with x the layer's input (batch, *spatial, in) and g the output gradient (batch, *out_spatial, out),

    dkernel[tap] = x^T @ window(g, tap),    contracted over batch x spatial positions,

where window(g, tap) places each g[n, j] at the input position it was computed from with that tap
(`lax.pad`, the padding an offset). x is read in place, so nothing recomputes it; only g is shifted. A
strided convolution's window would be mostly zeros (three quarters of it for a stride of 2 in 2-D), so
there each tap takes x's strided window instead, the values that tap met, and contracts it with g as it is:
ResNet-20's two downsampling convolutions' filter gradients, alone, went from 30 and 20 ms to 3.6 and 2.4 ms
(XLA's own: 6.4 and 3.4 ms), and its step on 32x32 images 1.06-1.09x. The forward pass and the input
gradient are XLA's own.

Each tap's matmul reads an array as large as the layer's input (strides of 1) or its output (strided), so
the cost grows with the kernel's taps over the strides' product. Unstrided, it pays for small kernels
(ResNet-20's step on 32x32 images 1.3-1.4x, 8x8 digits 1.07x; a VGG 3x3 layer on 56x56x128 alone 1.9x) and
not for larger ones (LeNet's 5x5 layers 0.3-0.5x). Strided, alone, it pays or draws level for every 2-D
kernel measured: a ResNet 7x7/2 stem on 3 channels 1.9-2.3x, a ViT's 4x4/4 and 16x16/16 patch embeddings
2.1x and 1.5x, a 3x3/2 layer 1.5-2.3x, a 5x5/2 layer on 32 channels and AlexNet's 11x11/4 level; the
MNIST-1D CNN's 1-D 5/2 layers, whose whole filter gradient takes 0.35 ms, 0.7x. So it applies to kernels of
at most `MAX_KERNEL_SIZE` per dimension, and to any kernel whose strides are all above 1; the residual
networks, VGG and the ViT's patch embedding use it (through `Conv`), the MNIST-1D CNN, LeNet and AlexNet
keep Flax's.

It applies on a CPU (`lax.platform_dependent`); on GPUs and TPUs, whose libraries compute the filter
gradient well, and for convolutions outside its scope (larger kernels unstrided, dilations, feature groups,
layouts other than Flax's channels-last), the function is exactly `lax.conv_general_dilated`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Padding = str | Sequence[tuple[int, int]]

MAX_KERNEL_SIZE = 3  # per spatial dimension, unless every stride is above 1: 9 taps in 2-D


def conv_general_dilated(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: Padding,
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """`lax.conv_general_dilated` (same arguments and result) with the CPU filter gradient of this module."""
    plain = partial(
        lax.conv_general_dilated,
        window_strides=window_strides,
        padding=padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count,
        precision=precision,
        preferred_element_type=preferred_element_type,
    )
    spatial = lhs.ndim - 2
    in_scope = (
        all(d == 1 for d in lhs_dilation or ())
        and all(d == 1 for d in rhs_dilation or ())
        and feature_group_count == 1
        and batch_group_count == 1
        and preferred_element_type is None
        and _is_channels_last(lhs.shape, rhs.shape, dimension_numbers)
        and (
            all(size <= MAX_KERNEL_SIZE for size in rhs.shape[:spatial]) or all(stride > 1 for stride in window_strides)
        )
    )
    if not in_scope:
        return plain(lhs, rhs)
    strides = tuple(window_strides)
    if isinstance(padding, str):
        pads = tuple(lax.padtype_to_pads(lhs.shape[1:-1], rhs.shape[:spatial], strides, padding))
    else:
        pads = tuple((int(low), int(high)) for low, high in padding)
    return lax.platform_dependent(
        lhs,
        rhs,
        cpu=lambda x, kernel: _conv_with_tap_gradient(x, kernel, strides, pads, precision),
        default=plain,
    )


def _is_channels_last(lhs_shape: tuple[int, ...], rhs_shape: tuple[int, ...], dimension_numbers: Any) -> bool:
    """Whether the layout is Flax's: input (N, *spatial, C), kernel (*spatial, I, O), output like the input."""
    spatial = len(lhs_shape) - 2
    numbers = lax.conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    channels_last = (0, spatial + 1, *range(1, spatial + 1))
    return (
        tuple(numbers.lhs_spec) == channels_last
        and tuple(numbers.out_spec) == channels_last
        and tuple(numbers.rhs_spec) == (spatial + 1, spatial, *range(spatial))
    )


def _channels_last_conv(
    x: jax.Array, kernel: jax.Array, strides: tuple[int, ...], pads: tuple[tuple[int, int], ...], precision: Any
) -> jax.Array:
    """XLA's convolution in Flax's layout (input N..C, kernel ..IO), with explicit padding."""
    spatial = "".join("HWDUVXYZ"[: x.ndim - 2])
    numbers = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
    return lax.conv_general_dilated(x, kernel, strides, pads, dimension_numbers=numbers, precision=precision)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_with_tap_gradient(
    x: jax.Array, kernel: jax.Array, strides: tuple[int, ...], pads: tuple[tuple[int, int], ...], precision: Any
) -> jax.Array:
    return _channels_last_conv(x, kernel, strides, pads, precision)


def _forward(x, kernel, strides, pads, precision):
    return _channels_last_conv(x, kernel, strides, pads, precision), (x, kernel)


def _backward(strides, pads, precision, residuals, grad):
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda x: _channels_last_conv(x, kernel, strides, pads, precision), x)
    (dx,) = input_vjp(grad)
    return dx, filter_gradient(x, grad, kernel.shape, strides, pads, precision)


_conv_with_tap_gradient.defvjp(_forward, _backward)


def filter_gradient(
    x: jax.Array,
    grad: jax.Array,
    kernel_shape: tuple[int, ...],
    strides: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    precision: Any = None,
) -> jax.Array:
    """The gradient of a channels-last convolution's kernel: one matmul per kernel tap.

    x: the input (batch, *spatial, in); grad: the output's gradient (batch, *out_spatial, out). With strides
    of 1 each tap multiplies x, read in place, by grad shifted onto x's grid (`_gradient_on_input_grid`); a
    strided convolution would leave most of that shifted grid zeros, so there each tap multiplies x's strided
    window (`_input_on_output_grid`) by grad. Accumulates in float32 at least, over batch x spatial
    positions, and returns the kernel's shape in x's dtype.
    """
    *window, in_features, out_features = kernel_shape
    if all(stride == 1 for stride in strides):
        rows = x.reshape(-1, in_features)
        pairs = (
            (rows, _gradient_on_input_grid(grad, tap, x.shape[1:-1], pads).reshape(-1, out_features))
            for tap in itertools.product(*(range(size) for size in window))
        )
    else:
        rows = grad.reshape(-1, out_features)
        padded = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), *((low, high, 0) for low, high in pads), (0, 0, 0)])
        pairs = (
            (_input_on_output_grid(padded, tap, grad.shape[1:-1], strides).reshape(-1, in_features), rows)
            for tap in itertools.product(*(range(size) for size in window))
        )
    accumulate = jnp.promote_types(x.dtype, jnp.float32)
    taps = [
        lax.dot_general(inputs, grads, (((0,), (0,)), ((), ())), precision=precision, preferred_element_type=accumulate)
        for inputs, grads in pairs
    ]
    return jnp.stack(taps).reshape(kernel_shape).astype(x.dtype)


def _gradient_on_input_grid(
    grad: jax.Array, tap: tuple[int, ...], in_spatial: tuple[int, ...], pads: tuple[tuple[int, int], ...]
) -> jax.Array:
    """grad (strides of 1) shifted onto the input's grid for one kernel tap: output position j lands on input
    position j + tap - pad_low (zeros elsewhere), so that input position a meets the gradient it contributed to."""
    config = [(0, 0, 0)]
    for offset, size, (pad_low, _), out_size in zip(tap, in_spatial, pads, grad.shape[1:-1], strict=True):
        low = offset - pad_low
        config.append((low, size - low - out_size, 0))
    config.append((0, 0, 0))
    return lax.pad(grad, jnp.zeros((), grad.dtype), config)


def _input_on_output_grid(
    padded: jax.Array, tap: tuple[int, ...], out_spatial: tuple[int, ...], strides: tuple[int, ...]
) -> jax.Array:
    """The padded input's values that one kernel tap meets: position j * stride + tap for each output position j."""
    start = (0, *tap, 0)
    last = (offset + stride * (size - 1) for offset, stride, size in zip(tap, strides, out_spatial, strict=True))
    limit = (padded.shape[0], *(position + 1 for position in last), padded.shape[-1])
    return lax.slice(padded, start, limit, (1, *strides, 1))


# nn.Conv with this module's convolution: the same parameters, names and forward pass.
Conv = partial(nn.Conv, conv_general_dilated=conv_general_dilated)
