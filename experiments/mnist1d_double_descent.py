"""MNIST-1D deep double descent: the protocol of the MNIST-1D repository's `deep-double-descent.ipynb`.

A plain 40-h-h-10 ReLU MLP (no residual connection), PyTorch's default initialisation, trained with SGD
(momentum 0.9, learning rate 0.01) on batches of 100 shuffled signals for 500 epochs of the 4,000 training
signals (20,000 steps), with 15 % of the training labels replaced by a uniformly drawn class. Sweep
`model.hidden` over widths to see the test error rise and fall again around the interpolation threshold;
notebooks/double_descent.py runs the whole sweep (on a 12,000-signal test set, as the repository does).
About 3 s (2 hidden units) to 22 s (300) per run on 2 CPU cores.

Command:
    jaxmodels train --config experiments/mnist1d_double_descent.py --workdir runs/dd_47 --config.model.hidden=47
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.model.name = "mnist1d_mlp"
    config.model.hidden = 47
    config.model.residual = False
    config.data.label_noise = 0.15
    config.optimizer.name = "sgd"
    config.optimizer.learning_rate = 0.01
    config.optimizer.momentum = 0.9
    config.train.num_steps = 20_000  # 500 epochs x 40 batches of 100
    config.train.eval_every = 2000
    config.train.checkpoint_every = 20_000
    return config
