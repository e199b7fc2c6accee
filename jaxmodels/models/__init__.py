"""Flax Linen models, selected by name through the registry (registry.py says how to add a model or a size).

Importing a family module registers its models; `get_model(name, **kwargs)` builds one. Calling convention for
every model: `model.apply(variables, inputs, train=bool, ...)`; dropout draws from the 'dropout' RNG stream,
BatchNorm keeps its statistics in the 'batch_stats' collection. Language models (gpt, char_rnn) generate text
through `sampling.generate`.
"""

import importlib
import pkgutil

from jaxmodels.models.registry import available_models, get_model, register

# Every module of this package is a model family or its helpers; importing it registers its models, so a new
# family file needs no edit here.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["available_models", "get_model", "register"]
