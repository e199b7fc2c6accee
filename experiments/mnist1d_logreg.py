"""MNIST-1D, the paper's logistic regression (Greydanus 2020, Table 1: 32 +- 1 % test accuracy).

A single linear layer on the 40 inputs, 410 parameters.
Setup as in the paper: Adam at 1e-2, batch 100, 6,000 steps, evaluation every 250 steps.
Takes about 7 s on 2 CPU cores, compilation included. Measured final test accuracy over
seeds 0-4: 31.8 +- 0.6 %.

Command:
    jaxmodels train --config experiments/mnist1d_logreg.py --workdir runs/mnist1d_logreg
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.model.name = "logistic"
    return config
