"""Synthetic datasets, generated from a seed: labelled images and token sequences of any shape.

For tests and benchmarks that need data of a given shape without a real dataset. Both kinds
are learnable, so a short training run can show that the loss falls:
- images: each class has a random uint8 template; an example is its class's template plus
  Gaussian noise (std 32), clipped to 0..255. Labels are uniform over the classes.
- tokens: sequences walk a random sparse Markov chain: each token has 4 possible successors,
  chosen uniformly. Token ids lie in [NUM_SPECIAL, vocab_size): the ids below are left free for
  the special tokens of `jaxmodels.data.tokenizers` (pad, unk, mask, cls, sep).
Record `i` of split `s` is drawn from `np.random.default_rng([seed, s, i])` (s: 0 train, 1 test),
so any record can be regenerated alone and the data do not depend on how many records there are.

Predefined configs: `synthetic/images` (32x32x3, 10 classes) and `synthetic/tokens` (length 128,
vocabulary 256), 512 train and 128 test records each. Other shapes: `tfds.builder('synthetic',
config=images_config(shape=(28, 28, 1)))` or `tokens_config(...)`, whose names encode every
parameter, so different configs never share a directory in the data dir.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

from jaxmodels.data.tokenizers import NUM_SPECIAL

_NOISE_STD = 32.0
_SUCCESSORS = 4


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
    """What to generate: `kind` 'images' (image_shape, num_classes) or 'tokens' (sequence_length, vocab_size)."""

    kind: str = "images"
    num_train: int = 512
    num_test: int = 128
    seed: int = 0
    image_shape: tuple[int, ...] = (32, 32, 3)
    num_classes: int = 10
    sequence_length: int = 128
    vocab_size: int = 256


def images_config(
    shape: tuple[int, ...] = (32, 32, 3),
    num_classes: int = 10,
    num_train: int = 512,
    num_test: int = 128,
    seed: int = 0,
) -> SyntheticConfig:
    """A config for uint8 images of `shape` labelled with `num_classes` classes."""
    name = f"images_{'x'.join(map(str, shape))}_classes{num_classes}_train{num_train}_test{num_test}_seed{seed}"
    return SyntheticConfig(
        name=name,
        kind="images",
        image_shape=tuple(shape),
        num_classes=num_classes,
        num_train=num_train,
        num_test=num_test,
        seed=seed,
    )


def tokens_config(
    sequence_length: int = 128, vocab_size: int = 256, num_train: int = 512, num_test: int = 128, seed: int = 0
) -> SyntheticConfig:
    """A config for int32 token sequences of `sequence_length` ids below `vocab_size`."""
    if vocab_size <= NUM_SPECIAL:
        raise ValueError(f"vocab_size must exceed the {NUM_SPECIAL} special token ids, got {vocab_size}")
    name = f"tokens_length{sequence_length}_vocab{vocab_size}_train{num_train}_test{num_test}_seed{seed}"
    return SyntheticConfig(
        name=name,
        kind="tokens",
        sequence_length=sequence_length,
        vocab_size=vocab_size,
        num_train=num_train,
        num_test=num_test,
        seed=seed,
    )


class Builder(tfds.core.GeneratorBasedBuilder):
    """Seeded synthetic images with labels, or token sequences."""

    name = "synthetic"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Class templates + noise; sparse Markov-chain tokens."}
    BUILDER_CONFIGS: ClassVar[list[SyntheticConfig]] = [
        SyntheticConfig(name="images", kind="images", description="32x32x3 uint8 images, 10 classes."),
        SyntheticConfig(name="tokens", kind="tokens", description="int32 sequences of 128 ids below 256."),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.builder_config
        if config.kind == "images":
            features = {
                "image": tfds.features.Tensor(shape=tuple(config.image_shape), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=config.num_classes),
            }
            supervised_keys = ("image", "label")
        elif config.kind == "tokens":
            features = {"tokens": tfds.features.Tensor(shape=(config.sequence_length,), dtype=np.int32)}
            supervised_keys = None
        else:
            raise ValueError(f"synthetic: unknown kind {config.kind!r}; expected 'images' or 'tokens'")
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(features),
            supervised_keys=supervised_keys,
            disable_shuffling=True,  # record i is generated from (seed, split, i): keep that order
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        del dl_manager  # generated locally: nothing to download
        config = self.builder_config
        sizes = {"train": config.num_train, "test": config.num_test}  # split index 0, 1 seeds the records
        return {split: self._generate_examples(index, size) for index, (split, size) in enumerate(sizes.items())}

    def _generate_examples(self, split_index: int, size: int) -> Iterator[tuple[int, dict]]:
        config = self.builder_config
        make_example = _image_maker(config) if config.kind == "images" else _token_maker(config)
        for index in range(size):
            yield index, make_example(np.random.default_rng([config.seed, split_index, index]))


def _image_maker(config: SyntheticConfig) -> Callable[[np.random.Generator], dict]:
    """Draws a label, then that class's template plus noise; templates come from the config's seed."""
    templates = np.random.default_rng(config.seed).integers(0, 256, (config.num_classes, *config.image_shape))

    def make(rng: np.random.Generator) -> dict:
        label = int(rng.integers(config.num_classes))
        noisy = templates[label] + rng.normal(0.0, _NOISE_STD, templates.shape[1:])
        return {"image": np.clip(np.rint(noisy), 0, 255).astype(np.uint8), "label": label}

    return make


def _token_maker(config: SyntheticConfig) -> Callable[[np.random.Generator], dict]:
    """Walks the Markov chain drawn from the config's seed: each token has a few equally likely successors."""
    successors = np.random.default_rng(config.seed).integers(
        NUM_SPECIAL, config.vocab_size, (config.vocab_size, _SUCCESSORS)
    )

    def make(rng: np.random.Generator) -> dict:
        return {"tokens": _markov_walk(successors, config.sequence_length, rng)}

    return make


def _markov_walk(successors: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A sequence that starts at a uniform non-special token and then steps to a random successor."""
    vocab_size = successors.shape[0]
    tokens = np.empty(length, np.int32)
    tokens[0] = rng.integers(NUM_SPECIAL, vocab_size)
    choices = rng.integers(0, successors.shape[1], length)
    for position in range(1, length):
        tokens[position] = successors[tokens[position - 1], choices[position]]
    return tokens
