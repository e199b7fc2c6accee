"""Image folders: `data.name=images`, one sub-folder of images per class, decoded by Pillow to one size.

    --config.data.name=images --config.data.dir=photos/ [--config.data.image_size='(64, 64)'] [--config.data.channels=1]

    photos/cat/0001.jpg, photos/dog/0002.png, ...                    -> train + a held-out test split
    photos/train/cat/..., photos/train/dog/..., photos/test/cat/...  -> the train and test splits as given

Classes are the train split's sub-folder names in sorted order (label 0, 1, ...); images may sit deeper in a
class folder. Files that are not images by their suffix (a README, .DS_Store) are ignored, and so are hidden
folders. Without a `test/` folder, `data.eval_fraction` of each class's images (rounded, drawn with seed 0 from
its sorted files, so the same files whatever the run's seed) is held out as the 'test' split.

Each image is converted to greyscale or RGB (`data.channels`), resized to cover `data.image_size` (height, width)
with its aspect ratio kept and cropped to it at the centre (`PIL.ImageOps.fit`): JPEG and PNG, greyscale and
colour mixed, give uint8 arrays of one shape. A folder that fits in `data.host_cache_max_mb` once decoded is
decoded when opened, in a few threads, so a bad image stops the run before it starts (or, with
`data.skip_bad_files`, is left out and counted); a larger one is decoded as Grain reads it; `jaxmodels prepare`
decodes it once into ArrayRecord shards, which stream at any size.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageOps

from jaxmodels.data.user.dataset import UserDataset
from jaxmodels.errors import DataError, UnreadableFile

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_MODES = {1: "L", 3: "RGB"}
_DECODE_THREADS = min(8, os.cpu_count() or 1)

Files = tuple[tuple[Path, int], ...]  # (path, label) of each image of a split, sorted


def open(data: ml_collections.ConfigDict) -> UserDataset:
    """The image folder `data.dir`: its splits decoded into memory where they fit, else read as Grain asks."""
    if not data.dir:
        raise DataError("config key 'data.dir' is empty; name your image folder, e.g. --config.data.dir=photos/")
    root = Path(data.dir).expanduser()
    class_names, files = scan(root, data.eval_fraction)
    shape = (*data.image_size, data.channels)
    split_bytes = {split: len(split_files) * int(np.prod(shape)) for split, split_files in files.items()}
    records = {split: ImageFiles(split_files, shape) for split, split_files in files.items()}
    if sum(split_bytes.values()) <= data.host_cache_max_mb * 2**20:
        skipped: list[Path] = []
        records = {split: images.decoded(skipped if data.skip_bad_files else None) for split, images in records.items()}
        if skipped:
            print(f"jaxmodels: left out {len(skipped)} image(s) of {root} that do not decode "
                  f"(data.skip_bad_files), e.g. {skipped[0]}", file=sys.stderr)  # fmt: skip
    features = {
        "image": tfds.features.Tensor(shape=shape, dtype=np.uint8),
        "label": tfds.features.ClassLabel(names=list(class_names)),
    }
    all_files = [path for split_files in files.values() for path, _ in split_files]
    return UserDataset(
        name="images",
        records=records,
        features=features,
        files=all_files,
        supervised_keys=("image", "label"),
        split_bytes=split_bytes,
    )


def scan(root: Path, eval_fraction: float) -> tuple[tuple[str, ...], dict[str, Files]]:
    """(class names, each split's files) of the image folder at `root`; nothing is decoded."""
    if not root.is_dir():
        raise DataError(f"image folder {str(root)!r} is not a directory; set --config.data.dir to a folder of images")
    top = root / "train" if (root / "train").is_dir() else root
    class_names = _class_folders(top)
    train = _labelled_files(top, class_names)
    if not (root / "test").is_dir() or top is root:
        return class_names, _held_out(train, eval_fraction, root)
    unknown = sorted(set(_class_folders(root / "test")) - set(class_names))
    if unknown:
        raise DataError(
            f"image folder {root}: test/ has classes that train/ lacks ({', '.join(unknown)}); give each of them "
            "training images, or remove them from test/"
        )
    present = [name for name in class_names if (root / "test" / name).is_dir()]
    test = _labelled_files(root / "test", present, labels=[class_names.index(name) for name in present])
    return class_names, {"train": train, "test": test}


def _class_folders(folder: Path) -> tuple[str, ...]:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(
            f"image folder {folder} has no class sub-folders; put each class's images in a folder of its own, "
            f"e.g. {folder / 'cat'}/1.jpg"
        )
    return tuple(names)


def _labelled_files(folder: Path, class_names: Sequence[str], labels: Sequence[int] | None = None) -> Files:
    """(path, label) of every image under each class folder of `folder`, sorted by path."""
    files = []
    for name, label in zip(class_names, labels or range(len(class_names)), strict=True):
        images = sorted(
            p for p in (folder / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and _visible(p, folder)
        )
        if not images:
            raise DataError(
                f"class folder {folder / name} has no images ({', '.join(IMAGE_SUFFIXES)}); add some, or remove "
                "the folder"
            )
        files += [(path, label) for path in images]
    return tuple(sorted(files))


def _visible(path: Path, folder: Path) -> bool:
    return path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)


def _held_out(files: Files, fraction: float, root: Path) -> dict[str, Files]:
    """Train and test: `fraction` of each class's files (rounded) held out, at least one per class of two or more."""
    train, test = [], []
    labels = np.array([label for _, label in files])
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(max(round(fraction * len(members)), 1), len(members) - 1)
        held = set(np.random.default_rng(0).permutation(members)[:count].tolist())
        train += [files[i] for i in members if i not in held]
        test += [files[i] for i in members if i in held]
    if not test:
        raise DataError(
            f"image folder {root}: no class has two images, so none can be held out for evaluation; add images, "
            "or give a test/ folder next to a train/ folder"
        )
    return {"train": tuple(sorted(train)), "test": tuple(sorted(test))}


def decode_image(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """The image at `path` as uint8 `shape` (height, width, channels): converted, resized to cover, centre-cropped.

    A file that does not decode is an `UnreadableFile` naming it.
    """
    height, width, channels = shape
    try:
        with Image.open(path) as image:
            fitted = ImageOps.fit(image.convert(_MODES[channels]), (width, height), Image.Resampling.BILINEAR)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadableFile(
            f"image {path} cannot be read ({error}); replace or remove it, or set --config.data.skip_bad_files=True "
            "to leave such files out",
            path,
        ) from None
    array = np.asarray(fitted, np.uint8)
    return array[..., None] if channels == 1 else array


@dataclasses.dataclass(frozen=True)
class ImageFiles(Sequence):
    """A split's image files as records {'image', 'label'}, each decoded when read."""

    files: Files
    shape: tuple[int, int, int]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, label = self.files[index]
        return {"image": decode_image(path, self.shape), "label": np.int64(label)}

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """The records at `indices`, decoded in a few threads (Pillow decodes outside the GIL)."""
        with concurrent.futures.ThreadPoolExecutor(_DECODE_THREADS) as pool:
            return list(pool.map(self.__getitem__, indices))

    def readable(self, skipped: list[Path] | None) -> Iterator[dict[str, Any]]:
        """Every record in order, decoded in a few threads a bounded window at a time (memory does not grow with
        the folder); an unreadable image stops it, or, if `skipped` is a list, is appended to it and left out."""

        def read(index: int) -> dict[str, Any] | None:
            try:
                return self[index]
            except UnreadableFile:
                if skipped is None:
                    raise
                return None

        with concurrent.futures.ThreadPoolExecutor(_DECODE_THREADS) as pool:
            for start in range(0, len(self), 256):
                window = range(start, min(start + 256, len(self)))
                for index, record in zip(window, pool.map(read, window), strict=True):
                    if record is None:
                        skipped.append(self.files[index][0])
                    else:
                        yield record

    def decoded(self, skipped: list[Path] | None) -> DecodedImages:
        """The split decoded into memory, unreadable images left out into `skipped` (a list) or stopping it."""
        images = np.empty((len(self), *self.shape), np.uint8)
        labels = np.empty(len(self), np.int64)
        count = 0
        for record in self.readable(skipped):
            images[count], labels[count] = record["image"], record["label"]
            count += 1
        return DecodedImages(images[:count], labels[:count])


class DecodedImages(Sequence):
    """Decoded images and their labels in memory, read as records {'image', 'label'}."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": self.images[index], "label": self.labels[index]}
