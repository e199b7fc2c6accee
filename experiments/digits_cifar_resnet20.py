"""scikit-learn digits (8x8), the CIFAR ResNet-20 of He et al. (2016, section 4.2): a BatchNorm network.

3x3 conv (16) -> three stages of 3 basic blocks (16/32/64 filters; here on 8x8/4x4/2x2 maps) ->
global average pool -> dense; option-A shortcuts, 269,434 parameters on 1-channel images.
BatchNorm statistics live in the train state's `batch_stats`. The paper's optimiser: SGD with momentum 0.9, weight decay
1e-4, learning rate 0.1 (here with cosine decay), batch 128, 400 steps on the 898 training
images; tested on the other 899.
Takes about 40 s on 2 quiet CPU cores (15 steps/s; minutes when they are shared). Measured (seed 0):
test accuracy 94.8 % after the 400 steps (94.2 % at step 100; the training set is fitted,
loss < 0.001, from step 200 on).

Command:
    jaxmodels train --config experiments/digits_cifar_resnet20.py --workdir runs/digits_cifar_resnet20

The paper's setting on CIFAR-10: 64k steps of batch 128, the rate divided by 10 at 32k and 48k,
random crops and flips (prepare the data once with `tfds build cifar10 --file_format=array_record`;
a GPU job; the paper reports 8.75 % test error for ResNet-20, 6.97 % for ResNet-56; not measured here):
    jaxmodels train --config experiments/digits_cifar_resnet20.py --workdir runs/cifar10_resnet56 \\
        --config.data.name=cifar10 --config.data.augment=crop_flip --config.model.depth=56 \\
        --config.train.num_steps=64000 --config.optimizer.schedule=step
Deeper networks: `--config.model.depth=32` (44, 56, 110; any 6n+2), or the paper's sizes by name,
`--config.model.name=cifar_resnet56` (also cifar_resnet20, 32, 44, 110), which fix the depth. The ImageNet
ResNets (resnet18 ... resnet152) and VGG (vgg11 ... vgg19; `--config.model.batch_norm=True` for the
BN variants) need images of at least 32x32 and AlexNet of at least 64x64, so they run on catalog
datasets, e.g. `--config.data.name=cifar10 --config.model.name=resnet18` (on a GPU).
On a CPU host, 32x32 inputs train 1.02-1.1x faster as two JAX devices, `--config.parallel.cpu_devices=2`
(on 2 cores; docs/benchmarks.md); the 8x8 digits gain nothing from it, so one device stays the default.
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.data.name = "digits"
    config.data.batch_size = 128
    config.model.name = "cifar_resnet"  # the family, so that --config.model.depth chooses the depth
    config.model.depth = 20
    config.optimizer.name = "sgd"
    config.optimizer.learning_rate = 0.1
    config.optimizer.momentum = 0.9
    config.optimizer.weight_decay = 1e-4
    config.optimizer.schedule = "cosine"
    config.train.num_steps = 400
    config.train.eval_every = 100
    return config
