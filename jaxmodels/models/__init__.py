"""Flax Linen models, selected by name through the registry.

Importing a family module registers its models; `get_model(name, **kwargs)` builds one.
Calling convention for every model: `model.apply(variables, inputs, train=bool, ...)`;
dropout draws from the 'dropout' RNG stream, BatchNorm keeps its statistics in the
'batch_stats' collection.
"""

from jaxmodels.models import cnn  # noqa: F401, I001  (ruff would merge these imports into one statement)
from jaxmodels.models import mnist1d  # noqa: F401  (registers the MNIST-1D paper models)
from jaxmodels.models import rnn  # noqa: F401  (registers the recurrent models)
from jaxmodels.models import transformer  # noqa: F401  (registers GPT, BERT and the encoder-decoder)
from jaxmodels.models import word2vec  # noqa: F401  (registers skip-gram and CBOW)
from jaxmodels.models import vit  # noqa: F401
from jaxmodels.models.registry import available_models, get_model, register

__all__ = ["available_models", "get_model", "register"]
