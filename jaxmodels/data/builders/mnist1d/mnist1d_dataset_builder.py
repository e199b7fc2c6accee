"""MNIST-1D as a TFDS dataset, generated offline by the `mnist1d` package.

Greydanus (2020), "Scaling down deep learning": ten 1-D digit templates, randomly padded,
translated, scaled, sheared and noised, then down-sampled to 40 points. The `mnist1d`
package's default arguments (5,000 samples, seed 42, 80/20 split) give the paper's
4,000 train / 1,000 test examples; this builder stores exactly those arrays, in order,
as float32 (the precision the models train in; TFDS array_record stores floats as float32).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

_SIGNAL_LENGTH = 40


class Builder(tfds.core.GeneratorBasedBuilder):
    """MNIST-1D: 40-point float32 signals of the digits 0-9."""

    name = "mnist1d"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "The paper's dataset: mnist1d.data.make_dataset(get_dataset_args()).",
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "x": tfds.features.Tensor(shape=(_SIGNAL_LENGTH,), dtype=np.float32),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("x", "label"),
            disable_shuffling=True,  # keep the generated order, so records equal mnist1d's arrays index by index
            homepage="https://github.com/greydanus/mnist1d",
            citation="@article{greydanus2020scaling, title={Scaling down deep learning}, "
            "author={Greydanus, Sam}, journal={arXiv preprint arXiv:2011.14439}, year={2020}}",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        del dl_manager  # generated locally: nothing to download
        from mnist1d.data import get_dataset_args, make_dataset

        data = make_dataset(get_dataset_args())
        return {
            "train": self._generate_examples(data["x"], data["y"]),
            "test": self._generate_examples(data["x_test"], data["y_test"]),
        }

    def _generate_examples(self, xs: np.ndarray, ys: np.ndarray) -> Iterator[tuple[int, dict]]:
        for index, (x, y) in enumerate(zip(xs, ys, strict=True)):
            yield index, {"x": x.astype(np.float32), "label": int(y)}
