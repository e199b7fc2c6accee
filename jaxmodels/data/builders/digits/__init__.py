"""TFDS builder for scikit-learn's 8x8 handwritten digits."""

from jaxmodels.data.builders.digits.digits_dataset_builder import Builder, to_sklearn_values

__all__ = ["Builder", "to_sklearn_values"]
