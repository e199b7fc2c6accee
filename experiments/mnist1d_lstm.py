"""MNIST-1D, an LSTM classifier reading the 40-sample signal one scalar per step.

`rnn_classifier` with an LSTM cell (hidden 64; 17,546 parameters): the final hidden state feeds a
dense layer. Adam at 3e-3, batch 100, 6,000 steps, evaluation every 250 steps; compare with the
paper's bidirectional GRU (experiments/mnist1d_gru.py, 91 +- 2 %). Gradients are clipped at norm 1.
Takes about 4 minutes on 2 CPU cores shared with other jobs (20-50 steps/s). Measured (seed 0):
test accuracy 96.7 % after the 6,000 steps (94.4 % at step 1,250, 97.0 % at step 3,000).

Command:
    jaxmodels train --config experiments/mnist1d_lstm.py --workdir runs/mnist1d_lstm

Variants: `--config.model.cell=gru`, `--config.model.bidirectional=True`, `--config.model.num_layers=2`.
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.model.name = "rnn_classifier"
    config.model.cell = "lstm"
    config.model.hidden_size = 64
    config.optimizer.learning_rate = 3e-3
    config.optimizer.grad_clip_norm = 1.0
    return config
