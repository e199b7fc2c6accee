"""MNIST-1D, the paper's logistic regression (Greydanus 2020, Table 1: 32 +- 1 % test accuracy).

Model: a single linear layer, 410 parameters. Setup as in the paper: Adam at 1e-2, batch 100, 6,000 steps, evaluation every
250 steps. Takes about 5 s on 2 CPU cores and reaches about 33-35 % test accuracy
(docs/results.md has the measured mean +- std over seeds).

Command:
    jaxmodels train --config experiments/mnist1d_logreg.py --workdir runs/mnist1d_logreg
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.model.name = "logistic"
    return config
