"""The supported architectures, and which one a release directory holds.

A Hugging Face directory names its class in config.json's `architectures`; a torchvision ResNet state dict has
no config and is recognised by its tensor names (torchvision_resnet.py). Unsupported classes are refused with
the list of supported ones.
"""

from __future__ import annotations

from jaxmodels.errors import CheckpointError, ConfigError
from jaxmodels.pretrained import hf_bert, hf_gpt2, hf_vit, torchvision_resnet
from jaxmodels.pretrained.architecture import Architecture, Arguments

ARCHITECTURES: dict[str, Architecture] = {
    architecture.name: architecture
    for architecture in (
        *hf_gpt2.ARCHITECTURES,
        *hf_bert.ARCHITECTURES,
        *hf_vit.ARCHITECTURES,
        *torchvision_resnet.ARCHITECTURES,
    )
}
SUPPORTED = ", ".join(ARCHITECTURES)


def architecture_named(config: dict, source: str) -> Architecture:
    """The supported architecture a release's config names (its `architectures` list's first entry)."""
    names = config.get("architectures")
    if not isinstance(names, list) or not names or not isinstance(names[0], str):
        raise CheckpointError(
            f"{source} names no architecture (its 'architectures' list); jaxmodels imports {SUPPORTED}"
        )
    if names[0] not in ARCHITECTURES:
        raise CheckpointError(f"{source} holds a {names[0]}, which jaxmodels does not import; supported: {SUPPORTED}")
    return ARCHITECTURES[names[0]]


def architecture_for_model(family: str, arguments: Arguments) -> Architecture:
    """The transformers class a jaxmodels model of `family` is exported as; ConfigError if it has none."""
    for architecture in ARCHITECTURES.values():
        if architecture.model_name == family and architecture.to_config and architecture.exports(arguments):
            return architecture
    exportable = sorted({a.model_name for a in ARCHITECTURES.values() if a.to_config})
    raise ConfigError(
        f"a {family!r} model has no Hugging Face counterpart, so --format hf cannot write it (it writes "
        f"{', '.join(exportable)} models); export it in the default --format jaxmodels"
    )
