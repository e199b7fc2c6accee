"""Specifications of jaxmodels.models.conv: XLA's convolution with a CPU filter gradient written per kernel tap.

The function must be `lax.conv_general_dilated` to its callers: the same outputs, and gradients equal to
XLA's own (to float32 rounding, since it sums in another order) for every stride, padding and rank in its
scope; outside its scope it is XLA's convolution itself.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxmodels.models import get_model
from jaxmodels.models.conv import Conv, conv_general_dilated, filter_gradient


def normal(seed: int, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), dtype)


def channels_last(x_shape: tuple[int, ...], kernel_shape: tuple[int, ...]) -> lax.ConvDimensionNumbers:
    spatial = "HWD"[: len(x_shape) - 2]
    return lax.conv_dimension_numbers(x_shape, kernel_shape, (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"))


def loss_and_grads(conv, x, kernel, strides, padding, **options):
    numbers = channels_last(x.shape, kernel.shape)

    def loss(x, kernel):
        out = conv(x, kernel, strides, padding, dimension_numbers=numbers, **options)
        return jnp.sum(jnp.sin(out.astype(jnp.float32))), out

    (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(x, kernel)
    return out, grads


CASES = {
    # name: (input shape, kernel shape, strides, padding)
    "3x3 same": ((2, 9, 9, 5), (3, 3, 5, 7), (1, 1), ((1, 1), (1, 1))),
    "3x3 stride 2, odd size": ((2, 9, 9, 5), (3, 3, 5, 7), (2, 2), ((1, 1), (1, 1))),
    "3x3 stride 2, even size": ((2, 8, 8, 5), (3, 3, 5, 7), (2, 2), ((1, 1), (1, 1))),
    "1x1 stride 2 (ResNet projection)": ((2, 8, 8, 5), (1, 1, 5, 7), (2, 2), ((0, 0), (0, 0))),
    "3x2 'SAME', mixed strides": ((2, 12, 11, 3), (3, 2, 3, 4), (2, 1), "SAME"),
    "3x3 'VALID'": ((2, 12, 11, 3), (3, 3, 3, 4), (1, 1), "VALID"),
    "asymmetric padding": ((2, 7, 7, 3), (3, 3, 3, 4), (1, 1), ((2, 0), (0, 1))),
    "1-D, stride 2": ((3, 40, 4), (3, 4, 6), (2,), ((1, 1),)),
    "3-D": ((2, 5, 6, 4, 3), (3, 3, 3, 3, 2), (1, 2, 1), "SAME"),
    "7x7 stride 2 (ResNet stem)": ((2, 16, 15, 3), (7, 7, 3, 4), (2, 2), ((3, 3), (3, 3))),
    "4x4 stride 4 (ViT patches)": ((2, 16, 16, 3), (4, 4, 3, 6), (4, 4), "VALID"),
    "11x11 stride 4 (AlexNet)": ((1, 31, 31, 3), (11, 11, 3, 4), (4, 4), ((2, 2), (2, 2))),
}


@pytest.mark.parametrize("case", CASES)
def test_outputs_and_gradients_equal_xla(case):
    x_shape, kernel_shape, strides, padding = CASES[case]
    x, kernel = normal(0, x_shape), normal(1, kernel_shape)
    out, (dx, dkernel) = loss_and_grads(conv_general_dilated, x, kernel, strides, padding)
    want_out, (want_dx, want_dkernel) = loss_and_grads(lax.conv_general_dilated, x, kernel, strides, padding)
    np.testing.assert_array_equal(out, want_out)  # the forward pass is XLA's
    np.testing.assert_array_equal(dx, want_dx)  # so is the input gradient
    np.testing.assert_allclose(dkernel, want_dkernel, rtol=1e-5, atol=1e-5 * float(jnp.abs(want_dkernel).max()))


def test_filter_gradient_is_the_kernels_vjp():
    x, grad = normal(2, (4, 10, 9, 6)), normal(3, (4, 5, 5, 8))
    kernel_shape, strides, pads = (3, 3, 6, 8), (2, 2), ((1, 1), (1, 1))
    _, vjp = jax.vjp(
        lambda k: lax.conv_general_dilated(x, k, strides, pads, dimension_numbers=("NHWC", "HWIO", "NHWC")),
        jnp.zeros(kernel_shape),
    )
    np.testing.assert_allclose(
        filter_gradient(x, grad, kernel_shape, strides, pads), vjp(grad)[0], rtol=1e-5, atol=1e-4
    )


@pytest.mark.parametrize("case", ["3x3 same", "3x3 stride 2, even size", "3x2 'SAME', mixed strides", "3-D"])
def test_filter_gradient_multiplies_each_input_with_each_gradient_it_produced_once(case):
    """The FLOPs are 2 x batch x output positions x taps x in x out, strided or not: no stride's zeros multiplied."""
    x_shape, kernel_shape, strides, padding = CASES[case]
    x = normal(0, x_shape)
    numbers = channels_last(x_shape, kernel_shape)
    out_shape = jax.eval_shape(
        lambda x: lax.conv_general_dilated(x, jnp.zeros(kernel_shape), strides, padding, dimension_numbers=numbers), x
    ).shape
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(x_shape[1:-1], kernel_shape[:-2], strides, padding)
    grad = normal(1, out_shape)
    compiled = (
        jax.jit(lambda x, grad: filter_gradient(x, grad, kernel_shape, strides, tuple(padding)))
        .lower(x, grad)
        .compile()
    )
    taps, products = np.prod(kernel_shape[:-2]), np.prod(out_shape[:-1]) * kernel_shape[-2] * kernel_shape[-1]
    assert compiled.cost_analysis()["flops"] == 2 * taps * products


def test_bfloat16_keeps_dtypes_and_sums_in_float32():
    x_shape, kernel_shape, strides, padding = CASES["3x3 stride 2, odd size"]
    x, kernel = normal(0, x_shape, jnp.bfloat16), normal(1, kernel_shape, jnp.bfloat16)
    out, (dx, dkernel) = loss_and_grads(conv_general_dilated, x, kernel, strides, padding)
    assert out.dtype == dx.dtype == dkernel.dtype == jnp.bfloat16
    _, (_, exact) = loss_and_grads(
        lax.conv_general_dilated, x.astype(jnp.float32), kernel.astype(jnp.float32), strides, padding
    )
    np.testing.assert_allclose(dkernel.astype(jnp.float32), exact, rtol=0.05, atol=0.05 * float(jnp.abs(exact).max()))


@pytest.mark.parametrize(
    "case, options",
    [
        ("5x5 kernel", {}),
        ("5x5 kernel, strided in one dimension only", {}),
        ("dilated kernel", {"rhs_dilation": (2, 2)}),
        ("feature groups", {"feature_group_count": 2}),
    ],
)
def test_out_of_scope_convolutions_are_xlas_own(case, options):
    x_shape, kernel_shape, strides = (2, 12, 12, 4), (3, 3, 4, 6), (1, 1)
    if case.startswith("5x5 kernel"):
        kernel_shape = (5, 5, 4, 6)
    if case == "5x5 kernel, strided in one dimension only":
        strides = (2, 1)
    if case == "feature groups":
        kernel_shape = (3, 3, 2, 6)
    x, kernel = normal(0, x_shape), normal(1, kernel_shape)
    assert not uses_tap_gradient(x, kernel, strides, **options)
    got = loss_and_grads(conv_general_dilated, x, kernel, strides, "SAME", **options)
    want = loss_and_grads(lax.conv_general_dilated, x, kernel, strides, "SAME", **options)
    jax.tree.map(np.testing.assert_array_equal, got, want)  # bit for bit: the same XLA computation


def uses_tap_gradient(x, kernel, strides, **options) -> bool:
    numbers = channels_last(x.shape, kernel.shape)
    jaxpr = jax.make_jaxpr(
        lambda x, k: conv_general_dilated(x, k, strides, "SAME", dimension_numbers=numbers, **options)
    )
    return "_conv_with_tap_gradient" in str(jaxpr(x, kernel))


@pytest.mark.parametrize("case", CASES)
def test_cases_in_scope_use_the_tap_gradient(case):
    x_shape, kernel_shape, strides, _ = CASES[case]
    assert uses_tap_gradient(jnp.zeros(x_shape), jnp.zeros(kernel_shape), strides)


def test_conv_module_is_flax_conv_with_this_convolution():
    x = normal(0, (2, 8, 8, 3))
    ours, flax_conv = Conv(4, (3, 3), strides=2), nn.Conv(4, (3, 3), strides=2)
    variables = flax_conv.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x)) == jax.tree.map(jnp.shape, variables)

    def grads(module):
        return jax.grad(lambda v: jnp.sum(module.apply(v, x) ** 2))(variables)

    np.testing.assert_array_equal(ours.apply(variables, x), flax_conv.apply(variables, x))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), grads(ours), grads(flax_conv))


def test_resnet_parameters_keep_their_names():
    """Checkpoints of the residual networks load as before: the convolutions are still Flax's `Conv_k`."""
    model = get_model("cifar_resnet20")
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    block = variables["params"]["CIFARBasicBlock_0"]
    assert sorted(block) == ["BatchNorm_0", "BatchNorm_1", "Conv_0", "Conv_1"]
    assert block["Conv_0"]["kernel"].shape == (3, 3, 16, 16)
    assert variables["params"]["Conv_0"]["kernel"].shape == (3, 3, 3, 16)
