"""MNIST-1D, the paper's MLP (Greydanus 2020, Table 1: 68 +- 2 % test accuracy).

40-100-100-10 ReLU MLP whose second hidden layer is residual, as in the paper's code
(15,210 parameters).
Setup as in the paper: Adam at 1e-2, batch 100, 6,000 steps, evaluation every 250 steps.
Takes about 12 s on 2 CPU cores, compilation included. Measured final test accuracy over
seeds 0-4: 65.7 +- 1.2 % (2 points under the paper; docs/results.md says why).

Command:
    jaxmodels train --config experiments/mnist1d_mlp.py --workdir runs/mnist1d_mlp
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.model.name = "mnist1d_mlp"
    return config
