"""scikit-learn digits (8x8), a two-hidden-layer MLP: the smallest image classifier of the zoo.

64-256-256-10 ReLU MLP with dropout 0.1 on the flattened image (85,002 parameters), Adam at 1e-3,
batch 100, 2,000 steps (about 220 epochs of the 898 training images), tested on the other 899
(scikit-learn's SVC example split, where SVC(gamma=0.001) scores 96.9 %).
Takes about 30 s on 2 CPU cores shared with other jobs, compilation and the one-off generation
of the dataset included. Measured (seed 0): test accuracy 95.8 % after the 2,000 steps (94.7 %
at step 250); the training loss is 0.001 by then, so more steps only overfit.

Command:
    jaxmodels train --config experiments/digits_mlp.py --workdir runs/digits_mlp

The same MLP on a prepared catalog dataset (`tfds build mnist --file_format=array_record`):
    jaxmodels train --config experiments/digits_mlp.py --workdir runs/mnist_mlp --config.data.name=mnist
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.data.name = "digits"
    config.model.name = "mlp"
    config.model.hidden_sizes = (256, 256)
    config.model.dropout = 0.1
    config.optimizer.learning_rate = 1e-3
    config.train.num_steps = 2000
    config.train.eval_every = 250
    return config
