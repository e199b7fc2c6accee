"""scikit-learn's handwritten digits (`sklearn.datasets.load_digits`) as a TFDS dataset.

1,797 8x8 grey images of the digits 0-9 (the UCI "Optical Recognition of Handwritten Digits"
test set), shipped inside scikit-learn, so nothing is downloaded. Pixels are counts 0..16;
we store them as uint8 0..255 by `round(v * 255 / 16)` (numpy rounds half to even, so only
v = 8 meets a tie and becomes 128), which `to_sklearn_values` inverts exactly.

Splits follow scikit-learn's classic SVC example ("Recognizing hand-written digits"):
`train_test_split(..., test_size=0.5, shuffle=False)`, i.e. the first 898 images in
scikit-learn's order train, the last 899 test; SVC(gamma=0.001) scores 96.9% on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

NUM_TRAIN = 898  # 1797 - ceil(0.5 * 1797), as train_test_split(test_size=0.5) cuts it
_MAX_VALUE = 16  # load_digits pixels count set bits in 4x4 blocks of a 32x32 bitmap


def to_sklearn_values(images: np.ndarray) -> np.ndarray:
    """Stored uint8 pixels back to scikit-learn's integer values 0..16 (exact inverse of the scaling)."""
    return np.rint(np.asarray(images, np.float64) * _MAX_VALUE / 255).astype(np.int64)


class Builder(tfds.core.GeneratorBasedBuilder):
    """scikit-learn digits: 8x8x1 uint8 images of the digits 0-9."""

    name = "digits"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "load_digits() scaled to 0..255; first 898 train, last 899 test.",
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,  # keep scikit-learn's order: the split is positional
            homepage="https://scikit-learn.org/stable/auto_examples/classification/plot_digits_classification.html",
            citation="@misc{alpaydin1998optical, title={Optical Recognition of Handwritten Digits}, "
            "author={Alpaydin, E. and Kaynak, C.}, howpublished={UCI Machine Learning Repository}, year={1998}}",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        del dl_manager  # shipped inside scikit-learn: nothing to download
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.rint(digits.images * 255 / _MAX_VALUE).astype(np.uint8)[..., None]
        return {
            "train": self._generate_examples(images[:NUM_TRAIN], digits.target[:NUM_TRAIN]),
            "test": self._generate_examples(images[NUM_TRAIN:], digits.target[NUM_TRAIN:]),
        }

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray) -> Iterator[tuple[int, dict]]:
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            yield index, {"image": image, "label": int(label)}
