"""torchvision's ResNet state dict (saved as safetensors) <-> jaxmodels' `resnet`.

torchvision saves no config: the sizes are read from the tensors (`describe`): the stem's width (64 in the
published models), the blocks per stage (layerN.K), bottleneck blocks where `conv3` exists (ResNet-50/101/152)
and the classes from `fc`. Convolutions (out, in, h, w) become Flax kernels (h, w, in, out); each BatchNorm's
weight and bias are parameters and its running mean and variance the `batch_stats` collection;
`num_batches_tracked` counts steps and is not read. A state dict is saved in Python with
`safetensors.torch.save_file(model.state_dict(), "DIR/model.safetensors")`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxmodels.pretrained.architecture import Architecture, Arguments, HFConfig
from jaxmodels.pretrained.table import CONV, Row, dense, one

NAME = "torchvision.models.ResNet"
STEM_KEY = "conv1.weight"


def is_state_dict(tensors: Mapping[str, Any]) -> bool:
    """Whether `tensors` have torchvision ResNet's key names."""
    return {STEM_KEY, "bn1.running_mean", "layer1.0.conv1.weight", "fc.weight"} <= set(tensors)


def describe(tensors: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The config torchvision does not save, read from a state dict's keys and shapes."""
    stage_sizes = []
    for stage in range(1, 5):
        blocks = {
            int(match[1]) for name in tensors if (match := re.fullmatch(rf"layer{stage}\.(\d+)\.conv1\.weight", name))
        }
        stage_sizes.append(len(blocks))
    return {
        "architectures": [NAME],
        "num_filters": int(tensors[STEM_KEY].shape[0]),
        "stage_sizes": stage_sizes,
        "block": "bottleneck" if "layer1.0.conv3.weight" in tensors else "basic",
        "num_classes": int(tensors["fc.weight"].shape[0]),
    }


def arguments(config: HFConfig) -> Arguments:
    return {
        "stage_sizes": tuple(config.values["stage_sizes"]),
        "block": config.values["block"],
        "num_filters": config.integer("num_filters"),
        "num_classes": config.integer("num_classes"),
    }


def batch_norm(theirs: str, ours: str) -> list[Row]:
    return [
        one(f"{theirs}.weight", f"params/{ours}/scale"),
        one(f"{theirs}.bias", f"params/{ours}/bias"),
        one(f"{theirs}.running_mean", f"batch_stats/{ours}/mean"),
        one(f"{theirs}.running_var", f"batch_stats/{ours}/var"),
    ]


def rows(arguments: Arguments) -> list[Row]:
    convs = 3 if arguments["block"] == "bottleneck" else 2
    table = [one(STEM_KEY, "params/conv_init/kernel", CONV), *batch_norm("bn1", "bn_init")]
    for stage, num_blocks in enumerate(arguments["stage_sizes"], start=1):
        for block in range(num_blocks):
            theirs, ours = f"layer{stage}.{block}", f"stage{stage}_block{block + 1}"
            for k in range(1, convs + 1):
                table += [one(f"{theirs}.conv{k}.weight", f"params/{ours}/conv{k}/kernel", CONV)]
                table += batch_norm(f"{theirs}.bn{k}", f"{ours}/bn{k}")
            if block == 0 and (stage > 1 or arguments["block"] == "bottleneck"):  # the shape changes: a projection
                table += [one(f"{theirs}.downsample.0.weight", f"params/{ours}/shortcut_conv/kernel", CONV)]
                table += batch_norm(f"{theirs}.downsample.1", f"{ours}/shortcut_bn")
    return [*table, *dense("fc", "params/head")]


def example_input(config: HFConfig) -> np.ndarray:
    return np.zeros((1, 32, 32, 3), np.float32)  # the global pool makes the shapes independent of the image size


RESNET = Architecture(
    name=NAME,
    model_name="resnet",
    arguments=arguments,
    rows=rows,
    example_input=example_input,
    ignorable=(r".*\.num_batches_tracked",),
)
ARCHITECTURES = (RESNET,)
