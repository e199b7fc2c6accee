"""jaxmodels: pure-function Flax models trained by one jit-compiled step.

Config (ml_collections) -> model (Flax Linen, by name) + task (loss, metrics) + optimizer
(Optax) + data (TFDS, Grain) -> `train_step` -> Orbax checkpoints. See README.md and docs/api.md.

The Python API (`import jaxmodels as jm`): `jm.load_config`, `jm.train`, `jm.load`, `jm.evaluate`,
`jm.sample`, `jm.compile` and `jm.Run`, from `jaxmodels.run`, `jm.sweep` (hyper-parameter sweeps on Optuna),
from `jaxmodels.sweeps.runner`, `jm.fill_mask` (jaxmodels.masked_lm), `jm.load_export` (jaxmodels.exported) and
`jm.from_pretrained` (a released model directory or an export; jaxmodels.pretrained.importer) and
`jm.provenance` (the commit, software and CPU a result was computed on; jaxmodels.reproducibility).
They are loaded on first use, so that importing the package (e.g. for `jaxmodels --help`) does not load JAX or
Optuna.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = [
    "Run",
    "compile",
    "evaluate",
    "fill_mask",
    "from_pretrained",
    "load",
    "load_config",
    "load_export",
    "provenance",
    "sample",
    "sweep",
    "train",
]
_HOMES = {  # every other name lives in jaxmodels.run
    "sweep": "jaxmodels.sweeps.runner",
    "fill_mask": "jaxmodels.masked_lm",
    "load_export": "jaxmodels.exported",
    "from_pretrained": "jaxmodels.pretrained.importer",
    "provenance": "jaxmodels.reproducibility",
}


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(_HOMES.get(name, "jaxmodels.run")), name)
    raise AttributeError(f"module 'jaxmodels' has no attribute {name!r}")
