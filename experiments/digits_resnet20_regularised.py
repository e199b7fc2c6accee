"""scikit-learn digits (8x8), the CIFAR ResNet-20 of digits_cifar_resnet20.py with the regularisers turned on.

The same network, data, optimiser and 400 steps, plus what a small training set (898 images, fitted to a loss
below 0.001 by step 200 in the plain run) calls for:
  - label smoothing 0.1 (`task.label_smoothing`; Szegedy et al. 2016, section 7): the targets become
    0.9 one-hot + 0.01 per class, so the loss stops rewarding ever larger logits once the set is fitted;
  - weight decay 5e-4 instead of 1e-4 (never on biases or BatchNorm scales);
  - gradient clipping at norm 1 (`optimizer.grad_clip_norm`), which keeps the first steps at rate 0.1 tame.
No augmentation: a flip changes what a digit is, and 4-pixel crops of 8x8 images cut most of it away.
Measured (seed 0): test accuracy 96.3 % after the 400 steps (the plain run: 94.8 %), 95.6 % already at step 100.
The test loss (0.63, against 0.23) is not comparable: it is the smoothed targets' cross-entropy, whose floor
is about 0.5. Compare the two runs with `jaxmodels compare runs/digits_cifar_resnet20 runs/digits_resnet20_regularised`.

Command:
    jaxmodels train --config experiments/digits_resnet20_regularised.py --workdir runs/digits_resnet20_regularised
"""

from pathlib import Path

from jaxmodels.config import load_config_file


def get_config():
    config = load_config_file(Path(__file__).with_name("digits_cifar_resnet20.py"))
    config.task.label_smoothing = 0.1
    config.optimizer.weight_decay = 5e-4
    config.optimizer.grad_clip_norm = 1.0
    return config
