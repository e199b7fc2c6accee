"""A parameter export read back as a model to predict with: `jaxmodels sample --model` and `fill-mask --model`.

    model = jm.load_export("exports/gpt2")        # written by `jaxmodels import` or `jaxmodels export`
    jm.sample(model, "To be, or not to be", 40)   # as on a `Run` of a workdir
    jm.fill_mask(jm.load_export("exports/bert-base-uncased"), "Hello, my [MASK] is cute.")

An export holds the parameters (`params/`), jaxmodels_export.json (the model's config and, for a language model,
its task) and the tokenizer it reads text with: a released one's files in `tokenizer/`, or a `tokenizer_<kind>`
file of jaxmodels' own. Nothing here reads data or builds an optimizer.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import ml_collections

from jaxmodels import config as config_lib
from jaxmodels.data import pretrained_tokenizers, tokenizers
from jaxmodels.errors import CheckpointError
from jaxmodels.files import read_json_object
from jaxmodels.masked_lm import check_tokenizer_fits
from jaxmodels.models import registry
from jaxmodels.params_io import EXPORT_FILE, load_params

# The task a model family is trained for, for exports that do not name theirs (those written before they did).
TASK_OF_MODEL = {"gpt": "lm", "char_rnn": "lm", "bert_mlm": "mlm"}


@dataclasses.dataclass
class ExportedModel:
    """A model read from an export: what `jaxmodels.sample` and `jaxmodels.fill_mask` need of a `Run`."""

    path: Path
    config: ml_collections.ConfigDict  # the base config with the export's model section and task
    model: nn.Module
    variables: dict[str, Any]  # {'params': ..., plus model state such as 'batch_stats'}: what `model.apply` takes
    tokenizer: tokenizers.Tokenizer | None

    @property
    def workdir(self) -> Path:
        """Where the model was read from (the export directory), as a `Run` names its workdir."""
        return self.path

    def apply(self, *inputs: Any, **kwargs: Any) -> Any:
        """The model's inference forward pass (train=False) on a batch of inputs, compiled once per input shape."""
        return jitted_apply(self.model)(self.variables, *inputs, **kwargs)


@functools.cache
def jitted_apply(model: nn.Module) -> Any:
    """`model.apply(variables, *inputs, train=False, **keywords)` jit-compiled, once per model (a `Run`'s too)."""
    return jax.jit(lambda variables, *inputs, **kwargs: model.apply(variables, *inputs, train=False, **kwargs))


def export_info(path: str | Path) -> dict[str, Any]:
    """The export's jaxmodels_export.json; CheckpointError, saying how to make one, when `path` holds none."""
    path = Path(path)
    if not (path / EXPORT_FILE).is_file():
        raise CheckpointError(
            f"{str(path)!r} holds no {EXPORT_FILE}: it is not a parameter export; make one with `jaxmodels import "
            "--from DIR --out EXPORT` (a released model) or `jaxmodels export --workdir RUN --out EXPORT`"
        )
    info = read_json_object(path / EXPORT_FILE, CheckpointError)
    if not isinstance((info.get("model") or {}).get("name"), str):
        raise CheckpointError(f"{path / EXPORT_FILE} names no model (its 'model' has no 'name'); export it again")
    return info


def exported_model_config(path: str | Path, *, until_imported: str | None = None) -> dict[str, Any]:
    """The `model` section of a config that builds the export's model, e.g. {'name': 'bert_mlm', 'num_layers': 12,
    ...}: an experiment that fine-tunes an import takes its sizes from here, whatever the release's size.

    `until_imported` names a published variant (e.g. 'bert_base_mlm') whose family and sizes stand in while `path`
    holds no export yet, so the experiment's config still loads (listings, `compile`); training it then stops at
    `checkpoint.init_from`, saying how to import the release."""
    if until_imported is not None and not (Path(path) / EXPORT_FILE).is_file():
        return {"name": registry.family_of(until_imported), **registry.variant_sizes(until_imported)}
    return dict(export_info(path)["model"])


def load_export(path: str | Path) -> ExportedModel:
    """The model, parameters and tokenizer of the export at `path`. CheckpointError when `path` is no export;
    ConfigError when its tokenizer does not fit its model."""
    path = Path(path)
    info = export_info(path)
    model_section = dict(info["model"])
    name = model_section.pop("name")
    tokenizer = _kept_tokenizer(path)
    if tokenizer is not None and "vocab_size" not in model_section and "vocab_size" in registry.model_fields(name):
        model_section["vocab_size"] = tokenizer.vocab_size  # a size the run took from its data, as training did
    config = config_lib.base_config()
    config.model = ml_collections.ConfigDict({"name": name, **model_section})
    config.task.name = info.get("task") or TASK_OF_MODEL.get(registry.family_of(name), config.task.name)
    arguments, _ = registry.resolve_arguments(name, model_section)
    model = registry.get_model(name, **arguments)
    if tokenizer is not None:
        check_tokenizer_fits(model, tokenizer)
    variables, _ = load_params(path)
    return ExportedModel(path, config, model, {"params": variables["params"], **variables.get("model_state", {})},
                         tokenizer)  # fmt: skip


def _kept_tokenizer(path: Path) -> tokenizers.Tokenizer | None:
    """The tokenizer an export keeps: a released one's directory, or one `tokenizer_<kind>` file; None if none."""
    if (path / pretrained_tokenizers.KEPT_DIR).is_dir():
        return pretrained_tokenizers.load_pretrained_tokenizer(path / pretrained_tokenizers.KEPT_DIR)
    kept = sorted(path.glob("tokenizer_*"))
    return tokenizers.load_tokenizer(kept[0]) if kept else None
