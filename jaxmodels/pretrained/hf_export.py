"""`jaxmodels export --format hf`: a model trained (or imported) here, written as transformers reads it.

    jaxmodels export --workdir runs/gpt --out hf/gpt --format hf     # a workdir's latest checkpoint (--step, --best)
    jaxmodels export --workdir exports/gpt2 --out hf/gpt2 --format hf  # an export (e.g. of `jaxmodels import`)

writes `config.json`, `model.safetensors` (float32) and the tokenizer files the source keeps (a released
tokenizer's `tokenizer/` directory), so `transformers.AutoModel*.from_pretrained(DIR)` loads them and gives the
same logits. The conversion is the import's table run backwards (jaxmodels.pretrained.table). GPT (as
GPT2LMHeadModel), BERT (BertForMaskedLM, BertModel, BertForSequenceClassification) and ViT models of any size
have a counterpart; other models (an LSTM, word2vec, a CNN) are refused in one line.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from flax import traverse_util

from jaxmodels.data.pretrained_tokenizers import KEPT_DIR
from jaxmodels.errors import CheckpointError
from jaxmodels.files import make_writable_dir, read_json_object
from jaxmodels.models import get_model, registry
from jaxmodels.params_io import EXPORT_FILE, check_new_export_dir, load_params, read_checkpoint
from jaxmodels.pretrained.registry import architecture_for_model
from jaxmodels.pretrained.release import CONFIG_FILE
from jaxmodels.pretrained.table import to_tensors
from jaxmodels.pretrained.weights_files import WEIGHTS_FILE, write_safetensors

# The classifier of the models with one (bert_classifier, vit): its kernel gives the number of classes.
HEAD_PATHS = ("params/classifier/kernel", "params/head/kernel")


def export_hf(source: str | Path, out: str | Path, *, step: int | None = None, best: bool = False) -> dict[str, Any]:
    """Writes the model of `source` (a workdir: its latest checkpoint, `step`, or with `best` its best; or an
    export) to `out` in Hugging Face's layout. Returns a summary: the architecture, the parameter count, the
    files written."""
    source, out = Path(source), Path(out)
    check_new_export_dir(out)
    model_config, variables, recorded = _read_source(source, step, best)
    flat = traverse_util.flatten_dict({"params": variables["params"], **variables.get("model_state", {})}, sep="/")
    shapes = {path: tuple(np.shape(leaf)) for path, leaf in flat.items()}
    name = model_config.pop("name")
    arguments, _ = registry.resolve_arguments(name, {**_data_sizes(name, shapes), **model_config})
    model = get_model(name, **arguments)
    arguments = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.name not in ("parent", "name")}
    architecture = architecture_for_model(registry.family_of(name), arguments)
    base = recorded.get("config", {}) if recorded.get("architecture") == architecture.name else {}
    hf_config = {**base, **architecture.to_config(arguments, shapes), "dtype": "float32"}
    tensors = to_tensors(architecture.rows(arguments), flat)
    if architecture.prefix:
        tensors = {_prefixed(name, architecture.prefix, architecture.heads): t for name, t in tensors.items()}

    make_writable_dir(out, "export directory", "--out")
    write_safetensors(out / WEIGHTS_FILE, tensors, metadata={"format": "pt"})  # transformers reads only "pt"
    (out / CONFIG_FILE).write_text(json.dumps(hf_config, indent=2) + "\n")
    tokenizer_files = _copy_tokenizer(source, out)
    return {
        "out": str(out),
        "architecture": architecture.name,
        "num_params": int(sum(np.size(t) for t in tensors.values())),
        "files": sorted([CONFIG_FILE, WEIGHTS_FILE, *tokenizer_files]),
    }


def _prefixed(name: str, prefix: str, heads: tuple[str, ...]) -> str:
    """A base model's tensor under the class's prefix ('transformer.wte.weight'); a head's as it is."""
    return name if name.startswith(heads) else prefix + name


def _read_source(source: Path, step: int | None, best: bool) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The model config, variables ({'params', 'model_state'}) and recorded release of an export or workdir."""
    if (source / EXPORT_FILE).is_file():
        if step is not None or best:
            raise CheckpointError(
                f"{str(source)!r} is an export, which holds one set of parameters; drop --step/--best"
            )
        info = read_json_object(source / EXPORT_FILE, CheckpointError)
        variables, _ = load_params(source)
        return dict(info.get("model") or {}), variables, info.get("pretrained") or {}
    if not (source / "checkpoints").is_dir():
        raise CheckpointError(
            f"{str(source)!r} is neither a workdir with checkpoints nor an export (made by `jaxmodels export` or "
            "`jaxmodels import`)"
        )
    variables, info = read_checkpoint(source.absolute(), step=step, best=best)
    return dict(info["model"]), variables, {}


def _data_sizes(name: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, int]:
    """The vocabulary and class counts a model was built with, read from its parameters' shapes: a workdir's
    config leaves out what the data decided."""
    fields = registry.model_fields(name)
    sizes = {}
    for path, shape in shapes.items():
        if "vocab_size" in fields and path.endswith("token/embedding"):
            sizes["vocab_size"] = shape[0]
        if "num_classes" in fields and path in HEAD_PATHS:
            sizes["num_classes"] = shape[-1]
    return sizes


def _copy_tokenizer(source: Path, out: Path) -> list[str]:
    """Copies the released tokenizer files the source keeps (its `tokenizer/` directory) into `out`."""
    kept = source / KEPT_DIR
    if not kept.is_dir():
        return []
    names = []
    for path in sorted(kept.iterdir()):
        if path.is_file():
            shutil.copyfile(path, out / path.name)
            names.append(path.name)
    return names
