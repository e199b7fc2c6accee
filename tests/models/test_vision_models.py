"""Specification of the vision models in `jaxmodels.models.cnn` and `jaxmodels.models.vit`.

Parameter counts are the published ones (torchvision's for the ImageNet CNNs, timm's for ViT),
computed with `jax.eval_shape`, so no weights are allocated; those of the named sizes (vgg16, resnet50,
vit_b16, ...) are checked with every variant's in test_registry.py, the others here. Real forward passes run only on a
few small models, each initialised and compiled once for the whole file (XLA compilation, not
arithmetic, is what costs time on a CPU).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmodels.errors import ConfigError
from jaxmodels.models import available_models, get_model
from jaxmodels.models.cnn import adaptive_avg_pool


def key(seed: int | jax.Array) -> jax.Array:
    # XLA compiles the 'unsafe_rbg' generator much faster than the default threefry on CPU;
    # nothing here depends on which random stream is used.
    return jax.random.key(seed, impl="unsafe_rbg")


def images(batch: int, size: int, channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, size, size, channels), dtype=np.float32)


def count_params(name: str, image_shape: tuple[int, int, int], **kwargs: Any) -> int:
    """Number of entries in the 'params' collection (not 'batch_stats') of model `name`.

    Also checks that the initialising forward pass maps a batch of images to (batch, num_classes) logits.
    """
    model = get_model(name, **kwargs)
    x = jax.ShapeDtypeStruct((2, *image_shape), jnp.float32)
    # `train` is closed over: it must stay a Python bool, not become a traced argument.
    logits, variables = jax.eval_shape(lambda x: model.init_with_output(key(0), x, train=False), x)
    assert logits.shape == (2, model.num_classes)
    return sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))


# Parameter counts.


@pytest.mark.parametrize(
    ("name", "image_shape", "kwargs", "expected"),
    [
        ("mlp", (28, 28, 1), {"hidden_sizes": (100,)}, 784 * 100 + 100 + 100 * 10 + 10),
        ("keras_mnist_cnn", (28, 28, 1), {}, 93_322),
        ("lenet5", (32, 32, 1), {}, 61_706),
        ("lenet5", (28, 28, 1), {}, 61_706),
        ("alexnet", (224, 224, 3), {}, 61_100_840),
        ("vgg16", (224, 224, 3), {"batch_norm": True}, 138_365_992),
        ("resnet", (224, 224, 3), {"stage_sizes": (3, 4, 6, 3), "block": "bottleneck"}, 25_557_032),  # = resnet50
        ("cifar_resnet", (32, 32, 3), {"depth": 20}, 269_722),  # = cifar_resnet20
        ("cifar_resnet20", (32, 32, 3), {"shortcut": "B"}, 272_474),
    ],
    ids=lambda value: ",".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value),
)
def test_parameter_count_matches_published(name, image_shape, kwargs, expected):
    assert count_params(name, image_shape, **kwargs) == expected


def test_option_b_shortcuts_add_two_projections_to_cifar_resnet():
    # 1x1 convs 16->32 and 32->64, each followed by BN (scale + bias): the 272,474 - 269,722 difference.
    projections = 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64
    option_a = count_params("cifar_resnet20", (32, 32, 3))
    assert count_params("cifar_resnet20", (32, 32, 3), shortcut="B") - option_a == projections


def test_num_classes_changes_only_the_classifier():
    assert count_params("resnet50", (64, 64, 3), num_classes=10) == 25_557_032 - 2048 * 990 - 990


# Forward passes of the large models, on small images, traced but not computed.


@pytest.mark.parametrize(
    ("name", "image_size", "kwargs"),
    [
        ("alexnet", 64, {}),  # 64 -> 15 -> 7 -> 7 -> 3 -> 1, then adaptive pooling repeats it to 6x6
        ("vgg11", 32, {"batch_norm": True}),
        ("resnet18", 32, {}),
        ("vit", 32, {}),  # the defaults: 8x8 patches of 4x4 pixels
    ],
)
def test_large_models_map_small_images_to_logits(name, image_size, kwargs):
    model = get_model(name, num_classes=5, **kwargs)
    x = jax.ShapeDtypeStruct((3, image_size, image_size, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(key(0), x, train=False), x)
    logits = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
    assert logits.shape == (3, 5)
    assert logits.dtype == jnp.float32


# Forward passes of small models, computed.

VIT_TINY = {"patch_size": 4, "embed_dim": 16, "num_layers": 1, "num_heads": 2}  # 2x2 patches of an 8x8 image

SMALL_MODELS = {  # name: (image size, channels, kwargs); all have 7 classes
    "mlp": (28, 1, {"hidden_sizes": (32,), "dropout": 0.5}),
    "keras_mnist_cnn": (28, 1, {}),
    "lenet5": (28, 1, {}),
    "cifar_resnet20": (32, 3, {}),
    "vit": (8, 3, {**VIT_TINY, "dropout": 0.1, "head_zero_init": False}),  # a zero head would hide dropout
}


@dataclasses.dataclass(frozen=True)
class Small:
    """A small model, its initial variables, a batch of 2 images and its jit-compiled forward passes."""

    model: nn.Module
    variables: dict
    x: np.ndarray
    # (variables, images, dropout seed) -> (logits, {'batch_stats': new statistics} or {})
    train: Callable[[dict, np.ndarray, int], tuple[jax.Array, dict]]
    evaluate: Callable[[dict, np.ndarray, int], tuple[jax.Array, dict]]


@functools.cache
def small(name: str) -> Small:
    size, channels, kwargs = SMALL_MODELS[name]
    model = get_model(name, num_classes=7, **kwargs)
    x = images(2, size, channels)

    def forward(train: bool) -> Callable[[dict, np.ndarray, int], tuple[jax.Array, dict]]:
        def apply(variables: dict, x: jax.Array, seed: jax.Array) -> tuple[jax.Array, dict]:
            return model.apply(variables, x, train=train, mutable=["batch_stats"], rngs={"dropout": key(seed)})

        return jax.jit(apply)

    variables = jax.jit(lambda x: model.init(key(0), x, train=False))(x)
    return Small(model, variables, x, forward(train=True), forward(train=False))


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_small_models_run_forward(name):
    s = small(name)
    logits, _ = s.evaluate(s.variables, s.x, 0)
    assert logits.shape == (2, 7)
    assert logits.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(logits)))
    assert float(jnp.abs(logits[0] - logits[1]).max()) > 0  # the two images are told apart


def test_lenet5_pads_28x28_inputs_to_the_papers_32x32_field():
    s = small("lenet5")
    padded = np.pad(s.x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    logits_28, _ = s.evaluate(s.variables, s.x, 0)
    logits_32, _ = s.evaluate(s.variables, padded, 0)
    np.testing.assert_allclose(logits_28, logits_32, rtol=1e-5, atol=1e-6)


def test_adaptive_avg_pool_uses_pytorch_bins():
    x = np.arange(5.0).reshape(1, 5, 1, 1) * np.ones((1, 5, 5, 1))  # row i holds the value i
    # PyTorch's bins for 5 -> 3: rows [0, 2), [1, 4), [3, 5).
    np.testing.assert_allclose(adaptive_avg_pool(x, (3, 3))[0, :, 0, 0], [0.5, 2.0, 3.5])
    np.testing.assert_allclose(adaptive_avg_pool(x, (1, 1))[0, 0, 0, 0], 2.0)
    one_pixel = np.full((1, 1, 1, 2), 3.0)
    np.testing.assert_array_equal(adaptive_avg_pool(one_pixel, (6, 6)), np.full((1, 6, 6, 2), 3.0))
    assert adaptive_avg_pool(x, (5, 5)) is x


def test_vit_head_starts_at_zero_by_default():
    model = get_model("vit", **VIT_TINY)
    # Only the head is returned, so XLA compiles (and runs) no other initialiser.
    head = jax.jit(lambda x: model.init(key(0), x)["params"]["head"])(images(1, 8, 3))
    np.testing.assert_array_equal(head["kernel"], np.zeros((16, 10)))
    np.testing.assert_array_equal(head["bias"], np.zeros(10))


# BatchNorm, on the CIFAR ResNet-20.


@pytest.fixture(scope="module")
def resnet20() -> tuple[Small, dict]:
    """The small ResNet-20 and its variables after one training-mode pass, so that the running
    statistics are no longer the initial zeros and ones."""
    s = small("cifar_resnet20")
    _, updates = s.train(s.variables, s.x, 0)
    return s, {"params": s.variables["params"], **updates}


def batches_sharing_the_first_image() -> tuple[np.ndarray, np.ndarray]:
    a, b = images(2, 32, 3, seed=3), images(2, 32, 3, seed=4)
    return a, np.concatenate([a[:1], b[1:]])


def test_batchnorm_train_mode_updates_batch_stats(resnet20):
    s, variables = resnet20
    _, updates = s.train(variables, images(2, 32, 3, seed=2), 0)
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"], updates["batch_stats"])
    assert len(jax.tree.leaves(changed)) == 2 * 19  # mean and var of each of the 19 BatchNorms
    assert all(jax.tree.leaves(changed))


def test_batchnorm_train_mode_output_depends_on_the_rest_of_the_batch(resnet20):
    s, variables = resnet20
    a, mixed = batches_sharing_the_first_image()
    (out_a, _), (out_mixed, _) = s.train(variables, a, 0), s.train(variables, mixed, 0)
    assert float(jnp.abs(out_a[0] - out_mixed[0]).max()) > 1e-3


def test_batchnorm_eval_mode_output_is_per_example(resnet20):
    s, variables = resnet20
    a, mixed = batches_sharing_the_first_image()
    (out_a, _), (out_mixed, _) = s.evaluate(variables, a, 0), s.evaluate(variables, mixed, 0)
    np.testing.assert_allclose(out_a[0], out_mixed[0], rtol=1e-5, atol=1e-5)


def test_batchnorm_eval_mode_leaves_batch_stats_alone(resnet20):
    s, variables = resnet20
    _, updates = s.evaluate(variables, images(2, 32, 3, seed=2), 0)
    jax.tree.map(np.testing.assert_array_equal, updates["batch_stats"], variables["batch_stats"])


# Dropout.


@pytest.mark.parametrize("name", ["mlp", "vit"])
def test_dropout_is_random_in_training(name):
    s = small(name)
    (first, _), (second, _), (again, _) = (s.train(s.variables, s.x, seed) for seed in (1, 2, 1))
    assert float(jnp.abs(first - second).max()) > 1e-4
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("name", ["mlp", "vit"])
def test_dropout_is_off_in_evaluation(name):
    s = small(name)
    (first, _), (second, _) = (s.evaluate(s.variables, s.x, seed) for seed in (1, 2))
    np.testing.assert_array_equal(first, second)


# Configuration.


def test_every_variant_is_registered():
    expected = {
        "mlp",
        "keras_mnist_cnn",
        "lenet5",
        "alexnet",
        *(f"vgg{depth}" for depth in (11, 13, 16, 19)),
        *(f"resnet{depth}" for depth in (18, 34, 50, 101, 152)),
        *(f"cifar_resnet{depth}" for depth in (20, 32, 44, 56, 110)),
        "vgg",
        "resnet",
        "cifar_resnet",
        "vit",
        "vit_ti16",
        "vit_s16",
        "vit_b16",
    }
    assert expected <= set(available_models())


def test_unknown_model_argument_is_a_config_error():
    with pytest.raises(ConfigError, match="bogus"):
        get_model("resnet50", bogus=1)


def test_cifar_resnet_depth_must_be_6n_plus_2():
    with pytest.raises(ConfigError, match=r"6n\+2"):
        get_model("cifar_resnet", depth=21)


def test_unknown_resnet_block_is_a_config_error():
    with pytest.raises(ConfigError, match="bottleneck"):
        get_model("resnet", stage_sizes=(1, 1), block="bottlenek")
