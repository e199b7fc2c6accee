"""TFDS builder for MNIST-1D (Greydanus 2020)."""

from jaxmodels.data.builders.mnist1d.mnist1d_dataset_builder import Builder

__all__ = ["Builder"]
