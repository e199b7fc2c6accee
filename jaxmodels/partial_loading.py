"""Partial loading: a pre-trained parameter tree (or part of it) copied into a freshly initialised one.

Used to fine-tune (a BERT encoder into a classifier) and by `checkpoint.init_from`. Pure tree surgery on
nested dicts of arrays: no checkpoint I/O, so models can use it without the Orbax stack.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from flax import traverse_util

from jaxmodels.errors import CheckpointError

_MAX_LISTED = 5


def path_name(path: tuple[Any, ...]) -> str:
    """'encoder/blocks_0/attention/query/kernel': a JAX key path (dict keys, sequence indices, attribute
    names) as the '/'-joined path this module, checkpoint reports and `optimizer.lr_multipliers` use."""
    names = []
    for key in path:
        # DictKey, SequenceKey, GetAttrKey
        attribute = next((name for name in ("key", "idx", "name") if hasattr(key, name)), None)
        names.append(str(getattr(key, attribute)) if attribute else str(key))
    return "/".join(names)


def listed(items: list[str]) -> str:
    """The first few items joined by '; ', with a count of the rest."""
    more = f" (and {len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return "; ".join(items[:_MAX_LISTED]) + more


@dataclasses.dataclass
class LoadReport:
    """Which parameter paths ('a/b/c') came from the checkpoint (`loaded`), kept their fresh initialisation
    (`new`), were in the checkpoint but not used (`unused`), or kept their initialisation because the
    checkpoint's shape differs (`mismatched`, as 'path (saved) vs (model)')."""

    loaded: list[str]
    new: list[str]
    unused: list[str]
    mismatched: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        """One line for the log: counts, with the first few paths of each group."""

        def group(name: str, paths: list[str]) -> str:
            shown = ", ".join(paths[:3]) + (", ..." if len(paths) > 3 else "")
            return f"{name} {len(paths)}" + (f" ({shown})" if paths else "")

        parts = [("loaded", self.loaded), ("newly initialised", self.new), ("skipped, other shape", self.mismatched)]
        parts.append(("unused from the checkpoint", self.unused))
        return "; ".join(group(name, paths) for name, paths in parts)


def load_partial(target: Any, source: Any, *, subtree: str = "", strict: bool = False) -> tuple[Any, LoadReport]:
    """Copies the leaves of `source` into `target` where their paths (under `subtree`, if given) match.

    Both are nested dicts of arrays (e.g. 'params' collections). Leaves of `target` not loaded keep their
    values. With `strict`, the paths under `subtree` must agree exactly in both trees, with equal shapes,
    or a CheckpointError names the differences; otherwise differing shapes are skipped and reported.
    """
    flat_target = traverse_util.flatten_dict(dict(target), sep="/")
    flat_source = traverse_util.flatten_dict(dict(source), sep="/")
    prefix = f"{subtree.strip('/')}/" if subtree else ""
    wanted = {path for path in flat_target if path.startswith(prefix)}
    offered = {path for path in flat_source if path.startswith(prefix)}
    where = f"{subtree!r} " if subtree else ""
    if not wanted:
        raise CheckpointError(f"the model has no {where}parameters to load into")
    if strict and wanted != offered:
        differ = sorted(wanted ^ offered)
        raise CheckpointError(f"the checkpoint's {where}parameters do not match the model's (e.g. {differ[:3]})")
    loaded, mismatched = [], []
    for path in sorted(wanted & offered):
        saved, model = np.shape(flat_source[path]), np.shape(flat_target[path])
        if saved != model:
            if strict:
                raise CheckpointError(f"{path}: checkpoint shape {saved} != model shape {model}")
            mismatched.append(f"{path} {saved} vs {model}")
            continue
        flat_target[path] = flat_source[path]
        loaded.append(path)
    if not loaded:
        raise CheckpointError(
            f"nothing in the checkpoint fits the model's {where}parameters ({listed(mismatched or sorted(offered))})"
        )
    report = LoadReport(
        loaded=loaded,
        new=sorted(set(flat_target) - set(loaded)),
        unused=sorted(set(flat_source) - set(loaded)),
        mismatched=mismatched,
    )
    return traverse_util.unflatten_dict(flat_target, sep="/"), report
