"""Image folders, TFDS builder directories and `jaxmodels prepare`, on images and datasets the tests write.

An image folder (PNG and JPEG, greyscale and RGB, of several sizes, written with Pillow) classifies with LeNet-5
and ResNet, resumes exactly, and serves the same batches through the resident and Grain loaders;
`jaxmodels prepare` turns it (and text files) into ArrayRecord shards from which a run reads the same batches;
a TFDS dataset prepared offline is read by its builder directory and by its name. Every bad input is one
`jaxmodels: error:` line, exit status 2, and nothing written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import jaxmodels as jm
from jaxmodels.data import feeds, views
from jaxmodels.experiment import make_feed
from tests.conftest import EXPERIMENTS, Result, assert_one_error_line, run_cli

pytestmark = pytest.mark.usefixtures("compilation_cache_dir")  # the same tiny models, built many times

CLASSES = ("cat", "dog", "owl")
PER_CLASS = 16
SHORT = ["train.num_steps=8", "train.eval_every=4", "train.log_every=4", "train.checkpoint_every=4",
         "train.progress_bar=False", "data.batch_size=8", "data.eval_batch_size=16"]  # fmt: skip
SMALL_IMAGES = ["data.image_size=(8, 8)", "data.channels=1"]


def write_image(path: Path, pixels: np.ndarray) -> None:
    """`pixels` (uint8, HxW or HxWx3) as the file `path`; its suffix picks PNG or JPEG."""
    Image.fromarray(pixels).save(path)


def write_folder(root: Path, rng: np.random.Generator, per_class: int = PER_CLASS) -> Path:
    """Three classes of mean brightness 50, 128, 200; every other image greyscale, every third a JPEG."""
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            shape = (10 + i % 3, 12) + (() if i % 2 else (3,))
            pixels = np.clip(rng.normal((50, 128, 200)[label], 20, shape), 0, 255).astype(np.uint8)
            write_image(root / name / f"{i:02d}.{'jpg' if i % 3 == 0 else 'png'}", pixels)
    (root / "README.txt").write_text("not an image")  # ignored: not in a class folder, not an image
    (root / "cat" / "notes.txt").write_text("not an image either")
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("photos"), np.random.default_rng(0))


def config_of(experiment: str, *overrides: str):
    return jm.load_config(EXPERIMENTS / experiment, [f"--config.{item}" for item in overrides])


def images_config(folder: Path, *changes: str, experiment: str = "digits_lenet5.py"):
    return config_of(experiment, "data.name=images", f"data.dir={folder}", *SMALL_IMAGES, *SHORT, *changes)


def prepare(out: Path, *data: str) -> dict:
    result = run_cli("prepare", "--out", str(out), *(f"--config.{item}" for item in data))
    assert result.status == 0, result.stderr
    return json.loads(result.stdout)


def feed_batches(config, steps: int = 13) -> list[dict[str, np.ndarray]]:
    """The first `steps` train batches of the run `config` describes (into its third epoch here)."""
    feed = make_feed(config, views.build(config, None, view="records"), jax.random.key(config.seed), None)
    if isinstance(feed, feeds.ResidentFeed):
        select = jax.jit(feed.select_batch)
        return [jax.device_get(select(step, *feed.args_for_step(step))) for step in range(steps)]
    return [feed.select_batch(step, *feed.args_for_step(step)) for step in range(steps)]


def assert_same_batches(left: list[dict], right: list[dict]) -> None:
    for a, b in zip(left, right, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def assert_same_params(a: jm.Run, b: jm.Run) -> None:
    for left, right in zip(jax.tree.leaves(a.state.params), jax.tree.leaves(b.state.params), strict=True):
        np.testing.assert_array_equal(left, right)


# ------------------------------------------------------------------------------------------ reading


def test_an_image_folder_gives_classes_splits_and_shapes_from_the_data(photos: Path):
    built = views.build(images_config(photos), None, view="records")
    assert built.model_sizes == {"num_classes": 3}
    held_out = 3 * round(0.1 * PER_CLASS)  # data.eval_fraction of each class
    assert len(built.eval_examples["label"]) == held_out
    assert len(built.train_records) == 3 * PER_CLASS - held_out
    np.testing.assert_array_equal(np.bincount(built.eval_examples["label"]), [held_out // 3] * 3)
    example = views.one_example(built)
    assert example["inputs"].shape == (8, 8, 1) and example["inputs"].dtype == np.float32
    brightness = [built.eval_examples["inputs"][built.eval_examples["label"] == c].mean() * 255 for c in range(3)]
    np.testing.assert_allclose(brightness, [50, 128, 200], atol=12)  # each class folder kept its label


def test_images_are_converted_resized_to_cover_and_centre_cropped(tmp_path: Path):
    stripes = np.zeros((16, 32, 3), np.uint8)  # 16x32: black sides 4 px wide (squashed to 8x8 they would show)
    stripes[:, 4:28] = (255, 0, 0)
    for split, name in [("train", "cat"), ("train", "dog"), ("test", "cat")]:
        (tmp_path / split / name).mkdir(parents=True)
        write_image(tmp_path / split / name / "a.png", stripes)
        write_image(tmp_path / split / name / "b.png", np.full((8, 8), 255, np.uint8))  # a greyscale white square
    grey = views.build(images_config(tmp_path, "data.batch_size=2"), None, view="records")
    rgb = views.build(images_config(tmp_path, "data.channels=3", "data.batch_size=2"), None, view="records")
    red, white = (grey.preprocess(grey.train_records[i])["inputs"] for i in (0, 1))  # (sorted: a, then b)
    assert red.shape == (8, 8, 1)
    # Resized to cover 8x8 (to 8x16), then its centre 8x8 cut out: the black sides are cut off.
    np.testing.assert_allclose(red, round(0.299 * 255) / 255, atol=1 / 255)  # red in greyscale (ITU-R 601-2 luma)
    np.testing.assert_array_equal(white, 1.0)
    red_rgb, white_rgb = (rgb.preprocess(rgb.train_records[i])["inputs"] for i in (0, 1))
    np.testing.assert_array_equal(red_rgb, np.broadcast_to([1.0, 0.0, 0.0], (8, 8, 3)))
    np.testing.assert_array_equal(white_rgb, 1.0)  # greyscale converted to three equal channels


def test_train_and_test_folders_are_the_splits(tmp_path: Path):
    rng = np.random.default_rng(1)
    write_folder(tmp_path / "train", rng, per_class=8)
    write_folder(tmp_path / "test", rng, per_class=3)
    shutil.rmtree(tmp_path / "test" / "owl")  # a class may be missing from test/
    built = views.build(images_config(tmp_path), None, view="records")
    assert len(built.train_records) == 24 and built.model_sizes == {"num_classes": 3}
    np.testing.assert_array_equal(np.bincount(built.eval_examples["label"], minlength=3), [3, 3, 0])


# ----------------------------------------------------------------------------------- training


def test_lenet5_trains_on_an_image_folder_and_resumes_exactly(photos: Path, tmp_path: Path):
    faster = "optimizer.learning_rate=0.01"
    unbroken = jm.train(images_config(photos, faster), tmp_path / "unbroken")
    jm.train(images_config(photos, faster, "train.num_steps=4"), tmp_path / "resumed")
    resumed = jm.train(images_config(photos, faster), tmp_path / "resumed")
    assert unbroken.step == resumed.step == 8
    assert_same_params(unbroken, resumed)
    assert unbroken.final["test/accuracy"] > 0.5  # three brightness levels are easy to tell apart


def test_resnet20_trains_on_rgb_images_with_the_crop_flip_augmentation(photos: Path, tmp_path: Path):
    config = images_config(photos, "data.channels=3", "data.augment=crop_flip", "model.depth=8",
                           experiment="digits_cifar_resnet20.py")  # fmt: skip
    run = jm.train(config, tmp_path)
    assert run.step == 8 and np.isfinite(run.final["test/loss"])
    assert run.state.params["Conv_0"]["kernel"].shape[2] == 3  # RGB inputs


def test_the_resident_and_grain_loaders_serve_the_same_batches(photos: Path):
    resident = feed_batches(images_config(photos, "data.loader=resident"))
    streamed = feed_batches(images_config(photos, "data.loader=grain", "data.host_cache_max_mb=0"))  # decoded by Grain
    assert_same_batches(resident, streamed)


# ------------------------------------------------------------------------------------- prepare


def test_prepared_images_give_the_source_batches_through_grain_workers_and_resume_exactly(photos: Path, tmp_path: Path):
    data = ["data.name=images", f"data.dir={photos}", *SMALL_IMAGES]
    summary = prepare(tmp_path / "prepared", *data)
    assert summary["records"] == {"train": 42, "test": 6} and summary["skipped"] == 0
    prepared = ["data.name=tfds_dir", f"data.dir={tmp_path / 'prepared'}"]
    grain = ["data.loader=grain", "data.host_cache_max_mb=0"]
    from_source = feed_batches(images_config(photos, *grain))
    assert_same_batches(from_source, feed_batches(images_config(photos, *prepared, *grain, "data.workers=1")))
    source_view = views.build(images_config(photos), None, view="records")
    prepared_view = views.build(images_config(photos, *prepared), None, view="records")
    for key in ("inputs", "label"):
        np.testing.assert_array_equal(source_view.eval_examples[key], prepared_view.eval_examples[key])
    unbroken = jm.train(images_config(photos, *prepared, *grain), tmp_path / "unbroken")
    jm.train(images_config(photos, *prepared, *grain, "train.num_steps=4"), tmp_path / "resumed")
    resumed = jm.train(images_config(photos, *prepared, *grain), tmp_path / "resumed")
    assert_same_params(unbroken, resumed)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four text files of random sentences (one with a non-ASCII letter)."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(2)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "héllo"]
    for i in range(4):
        (root / f"{i}.txt").write_text("\n".join(" ".join(rng.choice(words, 8)) for _ in range(150)) + "\n")
    return root


def text_config(*data: str, tokenizer: str = "char"):
    model = ["model.num_layers=1", "model.embed_dim=16", "model.num_heads=2", "optimizer.schedule=constant"]
    text = ["data.block_size=16", "data.batch_size=4", "data.eval_windows=5", f"data.tokenizer={tokenizer}"]
    return config_of("shakespeare_char_gpt.py", *data, *text, *model, *SHORT[:5], "parallel.cpu_devices=1")


def test_prepared_text_gives_the_text_files_batches_and_resumes_exactly(corpus: Path, tmp_path: Path):
    files = ["data.name=text", f"data.files={corpus}/*.txt"]
    summary = prepare(tmp_path / "prepared", *files, "data.block_size=16")
    assert summary["records"] == {"train": 2}  # 4 x 150 lines of ~30 characters: two records of 16,384 ids
    prepared = ["data.name=tfds_dir", f"data.dir={tmp_path / 'prepared'}"]
    source_view = views.build(text_config(*files), None, view="lm_windows")
    prepared_view = views.build(text_config(*prepared), None, view="lm_windows")
    assert (
        prepared_view.model_sizes == source_view.model_sizes == {"vocab_size": 5 + len(set(" \nabcehlmnost") | {"é"})}
    )
    for key in ("inputs", "targets"):
        np.testing.assert_array_equal(source_view.eval_examples[key], prepared_view.eval_examples[key])
    source_feed, prepared_feed = (
        make_feed(text_config(*data), view, jax.random.key(0), None)
        for data, view in ((files, source_view), (prepared, prepared_view))
    )
    assert_same_batches(*([feed.args_for_step(step)[0] for step in range(6)] for feed in (source_feed, prepared_feed)))
    assert views.one_example(views.build(text_config(*prepared), None, view="mlm_windows"))["inputs"].shape == (16,)
    unbroken = jm.train(text_config(*prepared), tmp_path / "unbroken")
    jm.train(text_config(*prepared, "train.num_steps=4"), tmp_path / "resumed")
    resumed = jm.train(text_config(*prepared), tmp_path / "resumed")
    assert_same_params(unbroken, resumed)
    gpt = str(EXPERIMENTS / "shakespeare_char_gpt.py")
    result = run_cli("train", "--config", gpt, "--workdir", str(tmp_path / "refused"),
                     *(f"--config.{item}" for item in [*prepared, "data.tokenizer=word"]))  # fmt: skip
    refused(result, tmp_path / "refused", "prepared with the 'char' tokenizer", "--config.data.tokenizer=char")


def test_prepared_text_with_held_out_files_and_bpe_keeps_the_split(corpus: Path, tmp_path: Path):
    data = ["data.name=text", f"data.files={corpus}/*.txt", f"data.eval_files={corpus}/3.txt", "data.vocab_size=300"]
    summary = prepare(tmp_path / "prepared", *data, "data.tokenizer=bpe")
    assert set(summary["records"]) == {"train", "test"}
    built = views.build(text_config("data.name=tfds_dir", f"data.dir={tmp_path / 'prepared'}", tokenizer="bpe"), None,
                        view="lm_windows")  # fmt: skip
    assert built.tokenizer.kind == "bpe"
    held_out = built.tokenizer.encode((corpus / "3.txt").read_text())
    np.testing.assert_array_equal(built.eval_examples["inputs"][0], held_out[:16])  # validation = the held-out file


# ----------------------------------------------------------------------------------------- TFDS


class TinyShapes(tfds.core.GeneratorBasedBuilder):
    """A TFDS dataset built here offline: 4x4 greyscale squares, dark (0) or bright (1)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(4, 4, 1), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=2),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples(40, seed=0), "test": self._generate_examples(16, seed=1)}

    def _generate_examples(self, count: int, seed: int):
        rng = np.random.default_rng(seed)
        for i in range(count):
            label = i % 2
            yield i, {"image": rng.integers(0, 100, (4, 4, 1)).astype(np.uint8) + 150 * label, "label": label}


@pytest.fixture(scope="module")
def tiny_shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TFDS data dir in which `tiny_shapes` is prepared (as array_record, read without TensorFlow)."""
    data_dir = tmp_path_factory.mktemp("tfds")
    TinyShapes(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    return data_dir


def test_a_tfds_builder_directory_and_a_prepared_catalog_name_read_the_same_records(tiny_shapes: Path, tmp_path: Path):
    shapes = ["data.batch_size=8", "data.loader=grain", "data.host_cache_max_mb=0"]
    by_dir = images_config(tmp_path, "data.name=tfds_dir", f"data.dir={tiny_shapes / 'tiny_shapes' / '1.0.0'}", *shapes)
    by_name = images_config(tmp_path, "data.name=tiny_shapes", f"data.data_dir={tiny_shapes}", *shapes)
    assert_same_batches(feed_batches(by_dir), feed_batches(by_name))
    run = jm.train(images_config(tmp_path, "data.name=tfds_dir", f"data.dir={tiny_shapes / 'tiny_shapes' / '1.0.0'}",
                                 "data.batch_size=8", "optimizer.learning_rate=0.01"), tmp_path / "run")  # fmt: skip
    assert run.step == 8 and run.final["test/accuracy"] > 0.5


# ------------------------------------------------------------------------------------- bad input


def train_cli(workdir: Path, *changes: str) -> Result:
    overrides = [f"--config.{item}" for item in (*SMALL_IMAGES, *SHORT, *changes)]
    return run_cli("train", "--config", str(EXPERIMENTS / "digits_lenet5.py"), "--workdir", str(workdir), *overrides)


def refused(result: Result, workdir: Path, *fragments: str) -> None:
    assert_one_error_line(result.status, result.stderr, *fragments)
    assert not workdir.exists()


def test_an_empty_folder_is_refused(tmp_path: Path):
    (tmp_path / "photos").mkdir()
    result = train_cli(tmp_path / "run", "data.name=images", f"data.dir={tmp_path / 'photos'}")
    refused(result, tmp_path / "run", "has no class sub-folders", "photos/cat")


def test_a_class_folder_without_images_is_refused(photos: Path, tmp_path: Path):
    shutil.copytree(photos, tmp_path / "photos")
    for path in (tmp_path / "photos" / "owl").iterdir():
        path.unlink()
    result = train_cli(tmp_path / "run", "data.name=images", f"data.dir={tmp_path / 'photos'}")
    refused(result, tmp_path / "run", "class folder", "owl has no images")


def test_a_truncated_image_is_named_or_skipped_and_counted(photos: Path, tmp_path: Path):
    shutil.copytree(photos, tmp_path / "photos")
    bad = tmp_path / "photos" / "dog" / "01.png"
    bad.write_bytes(bad.read_bytes()[:60])
    data = ["data.name=images", f"data.dir={tmp_path / 'photos'}"]
    refused(train_cli(tmp_path / "run", *data), tmp_path / "run", f"image {bad} cannot be read", "skip_bad_files")
    out = tmp_path / "prepared"
    result = run_cli("prepare", "--out", str(out), *(f"--config.{item}" for item in [*data, *SMALL_IMAGES]))
    refused(result, out, f"image {bad} cannot be read")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no partial output either
    summary = prepare(out, *data, *SMALL_IMAGES, "data.skip_bad_files=True")
    assert summary["skipped"] == 1 and sum(summary["records"].values()) == 3 * PER_CLASS - 1
    skipping = train_cli(tmp_path / "run", *data, "data.skip_bad_files=True")
    assert skipping.status == 0 and "left out 1 image(s)" in skipping.stderr and str(bad) in skipping.stderr


def test_a_split_smaller_than_one_batch_is_refused(photos: Path, tmp_path: Path):
    result = train_cli(tmp_path / "run", "data.name=images", f"data.dir={photos}", "data.batch_size=64")
    refused(result, tmp_path / "run", "has 42 examples", "fewer than data.batch_size=64")


def test_a_folder_changed_under_a_resumed_run_is_refused(photos: Path, tmp_path: Path):
    shutil.copytree(photos, tmp_path / "photos")
    data = ["data.name=images", f"data.dir={tmp_path / 'photos'}"]
    assert train_cli(tmp_path / "run", *data, "train.num_steps=4").status == 0
    write_image(tmp_path / "photos" / "cat" / "new.png", np.zeros((8, 8), np.uint8))
    before = sorted((p.relative_to(tmp_path), p.stat().st_size) for p in (tmp_path / "run").rglob("*"))
    result = train_cli(tmp_path / "run", *data)
    assert_one_error_line(result.status, result.stderr, "the data changed on disk", "cat/new.png is new")
    assert sorted((p.relative_to(tmp_path), p.stat().st_size) for p in (tmp_path / "run").rglob("*")) == before


@pytest.mark.parametrize(
    "data, fragments",
    [
        (["data.name=tfds_dir", "data.dir={tmp}"], ("is not a TFDS builder directory", "dataset_info.json")),
        (["data.name=mnist1d"], ("prepare converts your own files", "images")),
        (["data.name=images", "data.dir={tmp}/nowhere"], ("is not a directory",)),
        (["data.name=images", "data.dir="], ("'data.dir' is empty",)),
    ],
)
def test_bad_prepare_and_tfds_dir_inputs_are_refused(tmp_path: Path, data: list[str], fragments: tuple[str, ...]):
    out = tmp_path / "out"
    overrides = [f"--config.{item.format(tmp=tmp_path)}" for item in data]
    refused(run_cli("prepare", "--out", str(out), *overrides), out, *fragments)
    if data[0] == "data.name=tfds_dir":
        refused(
            train_cli(tmp_path / "run", *(item.format(tmp=tmp_path) for item in data)), tmp_path / "run", *fragments
        )


def test_prepare_refuses_an_out_folder_that_holds_files(photos: Path, tmp_path: Path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    result = run_cli(
        "prepare", "--out", str(tmp_path / "out"), "--config.data.name=images", f"--config.data.dir={photos}"
    )
    assert_one_error_line(result.status, result.stderr, "already exists and is not an empty folder")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
