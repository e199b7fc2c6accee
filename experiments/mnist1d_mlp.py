"""MNIST-1D, the paper's MLP (Greydanus 2020, Table 1: 68 +- 2 % test accuracy).

Model: 40-100-100-10 ReLU with the paper code's residual second layer, 15,210 parameters. Setup as in the paper: Adam at 1e-2, batch 100, 6,000 steps, evaluation every
250 steps. Takes about 8 s on 2 CPU cores and reaches about 64-70 % test accuracy
(docs/results.md has the measured mean +- std over seeds).

Command:
    jaxmodels train --config experiments/mnist1d_mlp.py --workdir runs/mnist1d_mlp
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.model.name = "mnist1d_mlp"
    return config
