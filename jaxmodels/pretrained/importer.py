"""`jaxmodels import` and `jm.from_pretrained`: a released model as an ordinary jaxmodels export, or in memory.

    jaxmodels import --from gpt2 --out exports/gpt2       # huggingface-cli download gpt2 --local-dir gpt2
    model = jm.from_pretrained("gpt2")                    # or an export: jm.from_pretrained("exports/gpt2")
    model.apply(tokens)                                   # logits; model.tokenizer, model.variables, model.config

The export is what `jaxmodels export` writes (params/ and jaxmodels_export.json, see jaxmodels.params_io), so
`checkpoint.init_from`, `optimizer.lr_multipliers`, `sample --model` and `fill-mask --model` use it unchanged;
its jaxmodels_export.json also records the release's architecture and config.json, and its `tokenizer/`
directory keeps the release's tokenizer files. Every check (files, architecture, shapes, the tokenizer's
vocabulary against the model's) runs before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import ml_collections

from jaxmodels import config as config_lib
from jaxmodels.data.pretrained_tokenizers import (
    KEPT_DIR,
    PretrainedTokenizer,
    has_tokenizer_files,
    load_pretrained_tokenizer,
)
from jaxmodels.exported import ExportedModel, load_export
from jaxmodels.masked_lm import check_tokenizer_fits
from jaxmodels.params_io import EXPORT_FILE, check_new_export_dir, write_export
from jaxmodels.pretrained.release import Release, read_release

# The task each imported model is trained for, as jaxmodels_export.json records it (none for a bare encoder).
TASKS = {"gpt": "lm", "bert_mlm": "mlm", "bert_classifier": "classify", "resnet": "classify"}


def import_release(source: str | Path, out: str | Path) -> dict[str, Any]:
    """Converts the release in `source` into a new export at `out`; returns its jaxmodels_export.json."""
    source, out = Path(source), Path(out)
    check_new_export_dir(out)
    release = read_release(source)
    tokenizer = _release_tokenizer(release)
    model_state = {name: tree for name, tree in release.variables.items() if name != "params"}
    info = {
        "source": str(source.absolute()),
        "step": 0,
        "model": release.model_config,
        "task": _task(release),
        "pretrained": {"architecture": release.architecture, "config": release.source_config},
    }
    info = write_export(out, {"params": release.variables["params"], "model_state": model_state}, info)
    if tokenizer is not None:
        tokenizer.save(out / KEPT_DIR)
    return info


def from_pretrained(path: str | Path) -> ExportedModel:
    """A released model directory (as `jaxmodels import` reads it) or an export, ready to predict or fine-tune:
    `.config`, `.model`, `.variables`, `.apply(...)` and `.tokenizer` (None where the release has none).
    `jm.sample` and `jm.fill_mask` take it."""
    path = Path(path)
    if (path / EXPORT_FILE).is_file():
        return load_export(path)
    release = read_release(path)
    config = config_lib.base_config()
    config.model = ml_collections.ConfigDict(release.model_config)
    config.task.name = _task(release) or config.task.name
    variables = jax.device_put(release.variables)
    return ExportedModel(path, config, release.model, variables, _release_tokenizer(release))


def _task(release: Release) -> str | None:
    if release.model_name == "vit":
        return "classify" if release.arguments["num_classes"] else None
    return TASKS.get(release.model_name)


def _release_tokenizer(release: Release) -> PretrainedTokenizer | None:
    """The release's tokenizer (None if it has none); ConfigError if its vocabulary is not the model's."""
    if not has_tokenizer_files(release.directory):
        return None
    tokenizer = load_pretrained_tokenizer(release.directory)
    check_tokenizer_fits(release.model, tokenizer)
    return tokenizer
