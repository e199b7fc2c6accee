"""Image classifiers: MLP, LeNet-5, the Keras MNIST CNN, AlexNet, VGG and ResNet (ImageNet and CIFAR).

Families `vgg`, `resnet` and `cifar_resnet` take their depth as a hyperparameter; their published sizes are
one-line variants under each class (`vgg16`, `resnet50`, `cifar_resnet20`, ...; see `registry.register_variant`).

Every model takes NHWC float images and returns (batch, num_classes) logits:
`model.apply(variables, images, train=bool)`. Dropout draws from the 'dropout' RNG stream and
is active only when `train=True`. BatchNorm keeps its statistics in the 'batch_stats'
collection (apply with `mutable=['batch_stats']` when training); `bn_axis_name` names the pmap
axis over which batch statistics are averaged.

The ImageNet models follow torchvision's layouts, so their parameter counts equal torchvision's.
Flattening happens in NHWC order, so porting torchvision weights into the first dense layer of
AlexNet or VGG needs a (C, H, W) -> (H, W, C) permutation of its input rows.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmodels.errors import ConfigError
from jaxmodels.models.conv import Conv
from jaxmodels.models.registry import register, register_variant, suggest

# He et al. (2015), "Delving deep into rectifiers": N(0, 2 / fan_out), torchvision's choice for
# VGG and ResNet convolutions. It keeps the activation scale constant through deep ReLU stacks;
# with smaller inits plain VGG stalls (the VGG paper initialised its deeper nets from net A).
he_normal_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

# The convolutions of the residual networks: no bias (the BatchNorm that follows has one) and
# explicit symmetric padding, not 'SAME', which pads even-sized inputs asymmetrically when strided;
# so feature maps line up with torchvision's and its weights can be ported.
conv3x3 = partial(Conv, kernel_size=(3, 3), padding=((1, 1), (1, 1)), use_bias=False, kernel_init=he_normal_fan_out)
conv1x1 = partial(Conv, kernel_size=(1, 1), use_bias=False, kernel_init=he_normal_fan_out)


def batch_norm(train: bool, axis_name: str | None, **kwargs: Any) -> nn.BatchNorm:
    """The framework's BatchNorm: batch statistics when training, running averages otherwise.

    Must be called inside a compact method (the new module binds to the calling module).
    """
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, axis_name=axis_name, **kwargs)


def adaptive_avg_pool(x: jax.Array, output_size: tuple[int, int]) -> jax.Array:
    """PyTorch's `AdaptiveAvgPool2d` on NHWC input: output row i averages rows [floor(i*H/h), ceil((i+1)*H/h)).

    Bins overlap when H is not a multiple of h, and repeat input cells when H < h (a 1x1 map
    becomes a constant h x w map), exactly as in PyTorch. Sizes are static, so this unrolls into
    h * w slices; when the input already has the output size it returns the input unchanged.
    """
    height, width = x.shape[1:3]
    out_h, out_w = output_size
    if (height, width) == (out_h, out_w):
        return x

    def bins(size: int, out: int) -> list[tuple[int, int]]:
        return [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]

    rows = [
        jnp.stack([x[:, h0:h1, w0:w1, :].mean(axis=(1, 2)) for w0, w1 in bins(width, out_w)], axis=1)
        for h0, h1 in bins(height, out_h)
    ]
    return jnp.stack(rows, axis=1)


def flatten(x: jax.Array) -> jax.Array:
    """(batch, ...) -> (batch, features)."""
    return x.reshape(x.shape[0], -1)


@register("mlp")
class MLP(nn.Module):
    """Multilayer perceptron on the flattened image: [Dense -> ReLU -> Dropout] per hidden size, then Dense."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    dropout: float = 0.0
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        x = flatten(x)
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size)(x))
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes)(x)


@register("keras_mnist_cnn")
class KerasMNISTCNN(nn.Module):
    """The CNN of the Keras/TensorFlow 'Convolutional Neural Network' tutorial (93,322 parameters on 28x28x1).

    Conv32 3x3 -> maxpool 2 -> Conv64 3x3 -> maxpool 2 -> Conv64 3x3 -> Flatten -> Dense64 -> Dense10,
    ReLU after every hidden layer, VALID padding: 28 -> 26 -> 13 -> 11 -> 5 -> 3, so 3*3*64 = 576 features.
    """

    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        x = nn.relu(nn.Conv(32, (3, 3), padding="VALID")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(64, (3, 3), padding="VALID")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(64, (3, 3), padding="VALID")(x))
        x = nn.relu(nn.Dense(64)(flatten(x)))
        return nn.Dense(self.num_classes)(x)


@register("lenet5")
class LeNet5(nn.Module):
    """LeNet-5 of LeCun, Bottou, Bengio & Haffner (1998), "Gradient-based learning applied to document
    recognition", Fig. 2: C1 conv6 5x5 -> S2 pool -> C3 conv16 5x5 -> S4 pool -> C5 fc120 -> F6 fc84 -> output.

    61,706 parameters. Inputs smaller than 32x32 are zero-padded, centred, to 32x32 first, as the
    paper placed its 28x28 MNIST digits in a 32x32 field; so 28x28 MNIST and 32x32 inputs give the
    same network (a 5x5x16 map before C5). Larger inputs give a larger C5 weight matrix.

    Departures from the paper, as in most modern reproductions: S2/S4 are plain 2x2 average pools
    (the paper's subsampling layers also had a trainable coefficient and bias per map), C3 connects
    to all 6 maps (the paper's Table I connected each map to a subset: 1,516 instead of 2,416
    weights), C5 is a dense layer on the flattened 5x5x16 map (identical to a 5x5 VALID conv
    there), and the output is a linear layer rather than Euclidean RBF units. Activations are tanh.
    """

    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        pad_h, pad_w = max(0, 32 - x.shape[1]), max(0, 32 - x.shape[2])
        x = jnp.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
        x = jnp.tanh(nn.Conv(6, (5, 5), padding="VALID", name="C1")(x))  # 32 -> 28
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))  # S2: 28 -> 14
        x = jnp.tanh(nn.Conv(16, (5, 5), padding="VALID", name="C3")(x))  # 14 -> 10
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))  # S4: 10 -> 5
        x = jnp.tanh(nn.Dense(120, name="C5")(flatten(x)))
        x = jnp.tanh(nn.Dense(84, name="F6")(x))
        return nn.Dense(self.num_classes, name="output")(x)


@register("alexnet")
class AlexNet(nn.Module):
    """AlexNet of Krizhevsky, Sutskever & Hinton (2012), "ImageNet classification with deep convolutional
    neural networks", Fig. 2, in torchvision's single-tower layout (61,100,840 parameters at 224x224x3).

    torchvision follows Krizhevsky (2014), "One weird trick...": 64/192/384/256/256 filters, no local
    response normalisation, and an adaptive average pool to 6x6 (the identity at 224x224, and what
    lets smaller inputs such as 64x64 through) before the 9216 -> 4096 -> 4096 -> classes classifier.
    """

    num_classes: int = 1000
    dropout: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        x = nn.relu(nn.Conv(64, (11, 11), strides=(4, 4), padding=((2, 2), (2, 2)))(x))  # 224 -> 55
        x = nn.max_pool(x, (3, 3), strides=(2, 2))  # -> 27
        x = nn.relu(nn.Conv(192, (5, 5), padding=((2, 2), (2, 2)))(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2))  # -> 13
        x = nn.relu(nn.Conv(384, (3, 3), padding=((1, 1), (1, 1)))(x))
        x = nn.relu(nn.Conv(256, (3, 3), padding=((1, 1), (1, 1)))(x))
        x = nn.relu(nn.Conv(256, (3, 3), padding=((1, 1), (1, 1)))(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2))  # -> 6
        x = flatten(adaptive_avg_pool(x, (6, 6)))
        for width in (4096, 4096):
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.num_classes)(x)


@register("vgg")
class VGG(nn.Module):
    """VGG of Simonyan & Zisserman (2015), "Very deep convolutional networks for large-scale image
    recognition", Table 1, in torchvision's layout.

    Five stages of 3x3 convolutions (stride 1, padding 1, ReLU) with 64/128/256/512/512 filters,
    each followed by a 2x2 max pool; an adaptive average pool to 7x7 (the identity at 224x224);
    then 25088 -> 4096 -> 4096 -> classes with ReLU and dropout. With `batch_norm=True` a BatchNorm
    follows every convolution, which keeps its bias, as torchvision's `vgg*_bn` do.
    `convs_per_stage` chooses the depth: the paper's configurations A, B, D and E are the variants below.
    """

    convs_per_stage: tuple[int, ...]
    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    batch_norm: bool = False
    dropout: float = 0.5
    num_classes: int = 1000
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        for num_convs, width in zip(self.convs_per_stage, self.widths, strict=True):
            for _ in range(num_convs):
                x = Conv(width, (3, 3), padding=((1, 1), (1, 1)), kernel_init=he_normal_fan_out)(x)
                if self.batch_norm:
                    x = batch_norm(train, self.bn_axis_name)(x)
                x = nn.relu(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = flatten(adaptive_avg_pool(x, (7, 7)))
        # torchvision initialises the classifier with N(0, 0.01) weights and zero biases.
        dense_init = nn.initializers.normal(0.01)
        for width in (4096, 4096):
            x = nn.relu(nn.Dense(width, kernel_init=dense_init)(x))
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, kernel_init=dense_init)(x)


# Table 1 of the paper, convolutions per stage; parameter counts at 224x224 and 1000 classes, as torchvision's.
register_variant("vgg11", "vgg", convs_per_stage=(1, 1, 2, 2, 2))  # configuration A: 132,863,336 parameters
register_variant("vgg13", "vgg", convs_per_stage=(2, 2, 2, 2, 2))  # configuration B: 133,047,848 parameters
register_variant("vgg16", "vgg", convs_per_stage=(2, 2, 3, 3, 3))  # configuration D: 138,357,544 parameters
register_variant("vgg19", "vgg", convs_per_stage=(2, 2, 4, 4, 4))  # configuration E: 143,667,240 parameters


def last_batch_norm(train: bool, axis_name: str | None, zero_init: bool, name: str | None = None) -> nn.BatchNorm:
    """The BatchNorm closing a residual branch.

    With `zero_init` its scale starts at 0, so every block starts as the identity (Goyal et al. 2017,
    "Accurate, large minibatch SGD"); torchvision's default, and ours, is scale 1. Either way the
    parameter count is the same.
    """
    scale_init = nn.initializers.zeros if zero_init else nn.initializers.ones
    return batch_norm(train, axis_name, scale_init=scale_init, name=name)


def projection_shortcut(
    x: jax.Array, channels: int, strides: int, train: bool, axis_name: str | None, *, named: bool = False
) -> jax.Array:
    """Identity where shapes match; otherwise a strided 1x1 convolution + BN (He et al. 2016, option B), named
    `shortcut_conv` and `shortcut_bn` when `named` (the ImageNet blocks), by creation order otherwise."""
    if x.shape[-1] == channels and strides == 1:
        return x
    x = conv1x1(channels, strides=strides, name="shortcut_conv" if named else None)(x)
    return batch_norm(train, axis_name, name="shortcut_bn" if named else None)(x)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection: He et al. (2016), Fig. 5 left (ResNet-18/34).

    The first convolution carries the stride; the shortcut is the identity, or a 1x1 strided
    convolution + BN where the shape changes (option B of the paper, as in torchvision).
    """

    filters: int
    strides: int = 1
    zero_init_residual: bool = False
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        out = conv3x3(self.filters, strides=self.strides, name="conv1")(x)
        out = nn.relu(batch_norm(train, self.bn_axis_name, name="bn1")(out))
        out = conv3x3(self.filters, name="conv2")(out)
        out = last_batch_norm(train, self.bn_axis_name, self.zero_init_residual, name="bn2")(out)
        shortcut = projection_shortcut(x, out.shape[-1], self.strides, train, self.bn_axis_name, named=True)
        return nn.relu(out + shortcut)


class BottleneckBlock(nn.Module):
    """1x1 reduce -> 3x3 -> 1x1 expand (x4), with a residual connection: He et al. (2016), Fig. 5 right.

    As in torchvision ("ResNet v1.5"), the stride sits on the 3x3 convolution rather than the first
    1x1; this changes no parameter count and is slightly more accurate.
    """

    filters: int
    strides: int = 1
    zero_init_residual: bool = False
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        out = conv1x1(self.filters, name="conv1")(x)
        out = nn.relu(batch_norm(train, self.bn_axis_name, name="bn1")(out))
        out = conv3x3(self.filters, strides=self.strides, name="conv2")(out)
        out = nn.relu(batch_norm(train, self.bn_axis_name, name="bn2")(out))
        out = conv1x1(4 * self.filters, name="conv3")(out)
        out = last_batch_norm(train, self.bn_axis_name, self.zero_init_residual, name="bn3")(out)
        shortcut = projection_shortcut(x, out.shape[-1], self.strides, train, self.bn_axis_name, named=True)
        return nn.relu(out + shortcut)


# The residual block of each stage, by config name: Fig. 5 left (ResNet-18/34) and right (ResNet-50/101/152).
RESNET_BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "bottleneck": BottleneckBlock}


@register("resnet")
class ResNet(nn.Module):
    """ImageNet ResNet of He, Zhang, Ren & Sun (2016), "Deep residual learning for image recognition",
    Table 1, in torchvision's layout.

    Stem: 7x7/2 convolution (64, no bias) -> BN -> ReLU -> 3x3/2 max pool. Then four stages with
    64/128/256/512 base filters and `stage_sizes` blocks each; stages 2-4 halve the resolution in
    their first block. Global average pool, then a dense layer to `num_classes`. Works for any input
    of at least 32x32 (the global pool absorbs the final resolution). `stage_sizes` and `block`
    ('basic' or 'bottleneck', a name so that configs can hold it) choose the depth: the paper's 18 to 152
    layers are the variants below.

    Layers are named after the paper, not by creation order, so a weight converter (jaxmodels.pretrained) can
    point at them: `conv_init`, `bn_init`, then `stage{S}_block{B}` (both from 1) with `conv1`, `bn1`, ...
    `conv3`, `bn3` and, where the shape changes, `shortcut_conv` and `shortcut_bn`; the classifier is `head`.
    """

    stage_sizes: tuple[int, ...]
    block: str
    num_filters: int = 64
    zero_init_residual: bool = False
    num_classes: int = 1000
    bn_axis_name: str | None = None

    def __post_init__(self) -> None:
        if self.block not in RESNET_BLOCKS:
            hint = suggest(self.block, sorted(RESNET_BLOCKS))
            raise ConfigError(f"unknown ResNet block {self.block!r} (config key model.block).{hint}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        x = Conv(
            self.num_filters,
            (7, 7),
            strides=2,
            padding=((3, 3), (3, 3)),
            use_bias=False,
            kernel_init=he_normal_fan_out,
            name="conv_init",
        )(x)
        x = nn.relu(batch_norm(train, self.bn_axis_name, name="bn_init")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for stage, num_blocks in enumerate(self.stage_sizes):
            for block in range(num_blocks):
                x = RESNET_BLOCKS[self.block](
                    filters=self.num_filters * 2**stage,
                    strides=2 if stage > 0 and block == 0 else 1,
                    zero_init_residual=self.zero_init_residual,
                    bn_axis_name=self.bn_axis_name,
                    name=f"stage{stage + 1}_block{block + 1}",
                )(x, train=train)
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.num_classes, name="head")(x)


# Table 1 of the paper, blocks per stage; parameter counts at 224x224 and 1000 classes, as torchvision's.
register_variant("resnet18", "resnet", stage_sizes=(2, 2, 2, 2), block="basic")  # 11,689,512 parameters
register_variant("resnet34", "resnet", stage_sizes=(3, 4, 6, 3), block="basic")  # 21,797,672 parameters
register_variant("resnet50", "resnet", stage_sizes=(3, 4, 6, 3), block="bottleneck")  # 25,557,032 parameters
register_variant("resnet101", "resnet", stage_sizes=(3, 4, 23, 3), block="bottleneck")  # 44,549,160 parameters
register_variant("resnet152", "resnet", stage_sizes=(3, 8, 36, 3), block="bottleneck")  # 60,192,808 parameters


class CIFARBasicBlock(nn.Module):
    """The CIFAR-10 residual block of He et al. (2016), section 4.2: two 3x3 convolutions + shortcut.

    Where a stage doubles the filters and halves the resolution, the shortcut is either
    option A (`shortcut='A'`, the paper's CIFAR choice): the input subsampled by 2 and zero-padded
    with the new channels, split evenly before and after the old ones as in the widely used
    reference code (github.com/akamaster/pytorch_resnet_cifar10), so it adds no parameters; or
    option B (`shortcut='B'`): a strided 1x1 convolution + BN.
    """

    filters: int
    strides: int = 1
    shortcut: str = "A"
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        out = conv3x3(self.filters, strides=self.strides)(x)
        out = nn.relu(batch_norm(train, self.bn_axis_name)(out))
        out = conv3x3(self.filters)(out)
        out = batch_norm(train, self.bn_axis_name)(out)
        if self.shortcut == "B":
            shortcut = projection_shortcut(x, self.filters, self.strides, train, self.bn_axis_name)
        else:
            shortcut = x[:, :: self.strides, :: self.strides, :]
            extra = self.filters - x.shape[-1]
            shortcut = jnp.pad(shortcut, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
        return nn.relu(out + shortcut)


@register("cifar_resnet")
class CIFARResNet(nn.Module):
    """CIFAR-10 ResNet-(6n+2) of He et al. (2016), "Deep residual learning for image recognition", section 4.2.

    3x3 convolution (16 filters) -> BN -> ReLU, then three stages of n basic blocks with 16/32/64
    filters on 32x32/16x16/8x8 maps, global average pool, dense layer to 10 classes. With the
    paper's option A shortcuts ResNet-20 has 269,722 parameters (the paper's "0.27M"); option B
    adds 2,752 (272,474). Convolutions use the paper's He initialisation.

    `depth` is the paper's name and index of these networks: the number of weighted layers, 6n + 2 (ResNet-20
    is depth 20, n = 3 blocks per stage). It is kept rather than renamed to the zoo's `num_layers`, which
    counts the repeated blocks of a stack (a transformer's layers), so `num_layers=20` would mislead here.
    """

    depth: int
    shortcut: str = "A"
    num_classes: int = 10
    bn_axis_name: str | None = None

    def __post_init__(self) -> None:
        if self.depth < 8 or (self.depth - 2) % 6 != 0:
            raise ConfigError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (config key model.depth), got {self.depth}")
        if self.shortcut not in ("A", "B"):
            raise ConfigError(
                f"CIFAR ResNet shortcut must be 'A' or 'B' (config key model.shortcut), got {self.shortcut!r}"
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        blocks_per_stage = (self.depth - 2) // 6
        x = conv3x3(16)(x)
        x = nn.relu(batch_norm(train, self.bn_axis_name)(x))
        for stage, filters in enumerate((16, 32, 64)):
            for block in range(blocks_per_stage):
                x = CIFARBasicBlock(
                    filters=filters,
                    strides=2 if stage > 0 and block == 0 else 1,
                    shortcut=self.shortcut,
                    bn_axis_name=self.bn_axis_name,
                )(x, train=train)
        x = x.mean(axis=(1, 2))
        return nn.Dense(self.num_classes)(x)


# Section 4.2 of the paper, n = 3, 5, 7, 9, 18; parameter counts with option A shortcuts and 10 classes.
register_variant("cifar_resnet20", "cifar_resnet", depth=20)  # 269,722 parameters (the paper's "0.27M")
register_variant("cifar_resnet32", "cifar_resnet", depth=32)  # 464,154 parameters
register_variant("cifar_resnet44", "cifar_resnet", depth=44)  # 658,586 parameters
register_variant("cifar_resnet56", "cifar_resnet", depth=56)  # 853,018 parameters
register_variant("cifar_resnet110", "cifar_resnet", depth=110)  # 1,727,962 parameters
