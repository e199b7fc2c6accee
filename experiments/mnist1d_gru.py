"""MNIST-1D, the paper's GRU (Greydanus 2020, Table 1: 91 +- 2 % test accuracy).

Model: a bidirectional GRU (hidden 6) whose 40 step outputs feed one linear layer, 5,110 parameters. Setup as in the paper: Adam at 1e-2, batch 100, 6,000 steps, evaluation every
250 steps. Takes a few minutes on 2 CPU cores and reaches about 88-92 % test accuracy
(docs/results.md has the measured mean +- std over seeds).

Command:
    jaxmodels train --config experiments/mnist1d_gru.py --workdir runs/mnist1d_gru
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.model.name = "mnist1d_gru"
    return config
