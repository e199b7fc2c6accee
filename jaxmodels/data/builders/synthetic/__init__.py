"""TFDS builder for seeded synthetic images and token sequences of any shape."""

from jaxmodels.data.builders.synthetic.synthetic_dataset_builder import (
    Builder,
    SyntheticConfig,
    images_config,
    tokens_config,
)

__all__ = ["Builder", "SyntheticConfig", "images_config", "tokens_config"]
