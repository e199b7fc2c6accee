"""A released model directory read into a jaxmodels model's variables: config -> model, tensors -> parameters.

    release = read_release(Path("gpt2"))   # config.json + model.safetensors (or shards), or a torchvision dict
    release.model_name, release.arguments  # 'gpt', {'num_layers': 12, 'embed_dim': 768, ...}
    release.variables                      # {'params': ..., 'batch_stats': ...} as float32 JAX arrays

Everything is checked before anything is returned: the directory's files, the architecture, every tensor's
shape against the sizes in config.json, tied copies; each problem is one `JaxmodelsError` that names it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from flax import traverse_util

from jaxmodels.errors import CheckpointError
from jaxmodels.files import read_json_object
from jaxmodels.models import get_model
from jaxmodels.pretrained import torchvision_resnet
from jaxmodels.pretrained.architecture import Architecture, HFConfig
from jaxmodels.pretrained.registry import architecture_named
from jaxmodels.pretrained.table import to_variables
from jaxmodels.pretrained.weights_files import INDEX_FILE, WEIGHTS_FILE, read_weights, refuse_pickles, weight_files

CONFIG_FILE = "config.json"
# Old releases (bert-base-uncased) name LayerNorm parameters as TensorFlow did; transformers reads both.
OLD_NAMES = (
    (re.compile(r"LayerNorm\.gamma$"), "LayerNorm.weight"),
    (re.compile(r"LayerNorm\.beta$"), "LayerNorm.bias"),
)


@dataclasses.dataclass
class Release:
    """A released model, converted: the jaxmodels model `model_name(**arguments)` and its `variables`."""

    directory: Path
    architecture: str  # 'GPT2LMHeadModel', ..., 'torchvision.models.ResNet'
    source_config: dict[str, Any]  # config.json as the release has it (for torchvision: read from the tensors)
    model_name: str
    arguments: dict[str, Any]
    variables: dict[str, Any]  # {'params': ..., and 'batch_stats' where the model has BatchNorm}: JAX arrays

    @property
    def model(self) -> nn.Module:
        return get_model(self.model_name, **self.arguments)

    @property
    def model_config(self) -> dict[str, Any]:
        """The `model` section of a jaxmodels config that builds this model."""
        return {"name": self.model_name, **self.arguments}


def read_release(directory: str | Path) -> Release:
    """Reads and converts the release in `directory` (see the module docstring); nothing is written."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{str(directory)!r} is not a directory; give --from a downloaded model's directory")
    config_path = directory / CONFIG_FILE
    if config_path.is_file():
        config = read_json_object(config_path, CheckpointError)
        architecture = architecture_named(config, str(config_path))
        weight_files(directory)  # no weights: say so before reading anything
        tensors = read_weights(directory)
        source = str(config_path)
    else:
        tensors = _tensors_without_config(directory)
        config = torchvision_resnet.describe(tensors)
        architecture, source = torchvision_resnet.RESNET, f"the state dict in {directory}"
    hf_config = HFConfig(config, source)
    arguments = architecture.arguments(hf_config)
    model = get_model(architecture.model_name, **arguments)
    expected = _variable_shapes(model, architecture.example_input(hf_config))
    tensors = _normalised(tensors, architecture)
    _check_tied(tensors, architecture, source)
    sizes = ", ".join(f"{key}={value}" for key, value in arguments.items() if isinstance(value, int | tuple))
    flat = to_variables(
        architecture.rows(arguments),
        tensors,
        expected,
        ignorable=architecture.ignorable,
        described_as=f"{source} ({sizes})",
    )
    if set(flat) != set(expected):  # a bug in a table, not a user error
        raise ValueError(f"{architecture.name} table misses {sorted(set(expected) - set(flat))}")
    del tensors  # now only `flat` holds the arrays read: each is freed once it is on the device
    variables = traverse_util.unflatten_dict({tuple(path.split("/")): array for path, array in _on_device(flat)})
    return Release(directory, architecture.name, config, architecture.model_name, arguments, variables)


def _on_device(flat: dict[str, np.ndarray]) -> Iterator[tuple[str, jax.Array]]:
    """The arrays of `flat` as JAX arrays, emptying it as it goes: a release is held about once in memory."""
    while flat:
        path, array = flat.popitem()
        yield path, jax.device_put(array)


def _tensors_without_config(directory: Path) -> dict[str, np.ndarray]:
    """A directory without config.json: a torchvision ResNet state dict's tensors, or an error saying what lacks."""
    has_weights = (directory / WEIGHTS_FILE).is_file() or (directory / INDEX_FILE).is_file()
    if not has_weights:
        refuse_pickles(directory)
        raise CheckpointError(
            f"{directory} holds no {CONFIG_FILE} and no weights; a model directory has {CONFIG_FILE} and "
            f"{WEIGHTS_FILE} (e.g. from `huggingface-cli download NAME --local-dir DIR`)"
        )
    tensors = read_weights(directory)
    if not torchvision_resnet.is_state_dict(tensors):
        raise CheckpointError(
            f"{directory} has no {CONFIG_FILE}, which a Hugging Face model needs next to its weights "
            "(only a torchvision ResNet state dict comes without one); download the whole release"
        )
    return tensors


def _normalised(tensors: dict[str, np.ndarray], architecture: Architecture) -> dict[str, np.ndarray]:
    """Tensor names as the table writes them: the base model's prefix dropped, old LayerNorm names renamed."""
    renamed = {}
    for name, tensor in tensors.items():
        if architecture.prefix and name.startswith(architecture.prefix):
            name = name[len(architecture.prefix) :]
        for pattern, replacement in OLD_NAMES:
            name = pattern.sub(replacement, name)
        renamed[name] = tensor
    return renamed


def _check_tied(tensors: dict[str, np.ndarray], architecture: Architecture, source: str) -> None:
    """A tied copy a file holds (GPT-2's lm_head.weight) must equal the tensor jaxmodels' model uses for both."""
    for copy, original in architecture.tied:
        if copy in tensors and original in tensors and not np.array_equal(tensors[copy], tensors[original]):
            raise CheckpointError(
                f"tensor {copy!r} differs from {original!r}, which {architecture.name} ties it to and jaxmodels' "
                f"model shares; an untied {copy!r} ({source}) is not supported"
            )


def _variable_shapes(model: nn.Module, example: np.ndarray) -> dict[str, tuple[int, ...]]:
    """{'params/.../kernel': shape, 'batch_stats/.../mean': shape}: the model's variables, built abstractly."""
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), example, train=False))
    flat = traverse_util.flatten_dict(dict(shapes), sep="/")
    return {path: tuple(leaf.shape) for path, leaf in flat.items()}
