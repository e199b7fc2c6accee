"""Flax Linen models, selected by name through the registry (registry.py says how to add a model or a size).

Importing a family module registers its models; `get_model(name, **kwargs)` builds one. Calling convention for
every model: `model.apply(variables, inputs, train=bool, ...)`; dropout draws from the 'dropout' RNG stream,
BatchNorm keeps its statistics in the 'batch_stats' collection. Language models (gpt, char_rnn) generate text
through `sampling.generate`.
"""

from jaxmodels.models import cnn, mnist1d, rnn, transformer, vit, word2vec  # noqa: F401  (registers the models)
from jaxmodels.models.registry import available_models, get_model, register

__all__ = ["available_models", "get_model", "register"]
