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
(`lax.pad`: strides become interior zeros, the padding an offset). x is read in place, so nothing
recomputes it; only g is shifted. The forward pass and the input gradient are XLA's own.

Each window is as large as the layer's input, so the cost grows with the kernel's taps and the stride: it
pays for the small kernels of residual networks and VGG (ResNet-20's step on 32x32 images 1.3-1.4x, 8x8
digits 1.07x; a VGG 3x3 layer on 56x56x128 alone 1.9x) and not for large or strided ones (a ResNet 7x7/2
stem 0.2x, AlexNet's 11x11/4 0.02x) or few input channels (LeNet's 5x5 layers 0.5x). So the models use it
for those 3x3 and 1x1 convolutions only, and it applies to kernels of at most `MAX_KERNEL_SIZE` per
dimension with strides of at most `MAX_STRIDE`.

It applies on a CPU (`lax.platform_dependent`); on GPUs and TPUs, whose libraries compute the filter
gradient well, and for convolutions outside its scope (larger kernels or strides, dilations, feature groups,
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

MAX_KERNEL_SIZE = 3  # per spatial dimension: 9 taps in 2-D
MAX_STRIDE = 2


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
        and all(size <= MAX_KERNEL_SIZE for size in rhs.shape[:spatial])
        and all(stride <= MAX_STRIDE for stride in window_strides)
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
    """The gradient of a channels-last convolution's kernel: x^T @ window(grad, tap) for each kernel tap.

    x: the input (batch, *spatial, in); grad: the output's gradient (batch, *out_spatial, out). Accumulates in
    float32 at least, over batch x spatial positions, and returns the kernel's shape in x's dtype.
    """
    *window, in_features, out_features = kernel_shape
    rows = x.reshape(-1, in_features)
    accumulate = jnp.promote_types(x.dtype, jnp.float32)
    taps = [
        lax.dot_general(
            rows,
            _tap_window(grad, tap, x.shape[1:-1], strides, pads).reshape(-1, out_features),
            (((0,), (0,)), ((), ())),
            precision=precision,
            preferred_element_type=accumulate,
        )
        for tap in itertools.product(*(range(size) for size in window))
    ]
    return jnp.stack(taps).reshape(kernel_shape).astype(x.dtype)


def _tap_window(
    grad: jax.Array,
    tap: tuple[int, ...],
    in_spatial: tuple[int, ...],
    strides: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
) -> jax.Array:
    """grad moved onto the input's grid for one kernel tap: output position j lands on input position
    j * stride + tap - pad_low (zeros elsewhere), so that input position a meets the gradient it contributed to."""
    config = [(0, 0, 0)]
    out_spatial = grad.shape[1:-1]
    for offset, size, stride, (pad_low, _), out_size in zip(tap, in_spatial, strides, pads, out_spatial, strict=True):
        low = offset - pad_low
        dilated = stride * (out_size - 1) + 1
        config.append((low, size - low - dilated, stride - 1))
    config.append((0, 0, 0))
    return lax.pad(grad, jnp.zeros((), grad.dtype), config)


# nn.Conv with this module's convolution: the same parameters, names and forward pass.
Conv = partial(nn.Conv, conv_general_dilated=conv_general_dilated)
