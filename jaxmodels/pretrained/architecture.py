"""What jaxmodels knows about one released architecture: how its config maps to a jaxmodels model, and its table.

Each supported class (`GPT2LMHeadModel`, `BertForMaskedLM`, ..., and torchvision's ResNet) is one
`Architecture`, defined in the file of its family (hf_gpt2.py, hf_bert.py, hf_vit.py, torchvision_resnet.py)
and listed in registry.py. Sizes always come from the file's config (or, for a torchvision state dict, from
the tensors' shapes), never from a fixed variant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from jaxmodels.errors import CheckpointError
from jaxmodels.pretrained.table import Row

Arguments = dict[str, Any]  # a jaxmodels model's constructor arguments
Shapes = Mapping[str, tuple[int, ...]]  # variable path ('params/ln_f/scale') -> shape


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One released architecture and the jaxmodels model it loads into.

    `arguments(config)`: the model's constructor arguments from the release's config (a `HFConfig`).
    `rows(arguments)`: the conversion table for a model of those sizes, with the base model's tensors named
    without `prefix` (files may hold them with or without it, as transformers reads both); tensors whose names
    start with one of `heads` belong to the head and never carry the prefix.
    `example_input(config)`: an input batch of one, to build the model's parameter shapes.
    `ignorable`: regular expressions of tensors the files may hold that the model does not use (buffers, a
    head jaxmodels' model lacks); `tied`: (tensor, tensor it must equal) pairs of tied copies a file may hold.
    `to_config(arguments, shapes)`: the config.json that `transformers` reads back, from the model's arguments
    and its variables' shapes (None: no export to this class); `exports(arguments)`: whether a model of the
    family is exported as this class.
    """

    name: str
    model_name: str
    arguments: Callable[[HFConfig], Arguments]
    rows: Callable[[Arguments], list[Row]]
    example_input: Callable[[HFConfig], np.ndarray]
    prefix: str = ""
    heads: tuple[str, ...] = ()
    ignorable: tuple[str, ...] = ()
    tied: tuple[tuple[str, str], ...] = ()
    to_config: Callable[[Arguments, Shapes], dict[str, Any]] | None = None
    exports: Callable[[Arguments], bool] = lambda arguments: True


class HFConfig:
    """A release's config.json, read with errors that name the key: sizes are integers, rates are numbers."""

    def __init__(self, values: Mapping[str, Any], source: str):
        self.values = dict(values)
        self.source = source

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointError(f"{self.source} has {key}={value!r}; it must be a whole number: restore the file")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CheckpointError(f"{self.source} has {key}={value!r}; it must be a number: restore the file")
        return float(value)

    def require(self, key: str, allowed: tuple[Any, ...], default: Any) -> Any:
        """The value of `key`, which jaxmodels' model supports only in the `allowed` settings."""
        value = self.values.get(key, default)
        if value not in allowed:
            raise CheckpointError(
                f"{self.source} sets {key}={value!r}, which jaxmodels' model does not implement "
                f"(supported: {', '.join(repr(a) for a in allowed)})"
            )
        return value

    def num_labels(self) -> int:
        """The classifier's label count: `num_labels`, else the size of `id2label`, else transformers' 2."""
        if "num_labels" in self.values:
            return self.integer("num_labels")
        id2label = self.values.get("id2label")
        return len(id2label) if isinstance(id2label, dict) and id2label else 2


def token_input(config: HFConfig) -> np.ndarray:
    """One sequence of a single token: the text models' parameter shapes do not depend on its length."""
    return np.zeros((1, 1), np.int32)
