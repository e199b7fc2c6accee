"""Character-level LSTM on Shakespeare: Karpathy's char-rnn (Karpathy, Johnson & Fei-Fei 2015).

`char_rnn`: embedding 64 -> 2-layer LSTM, 128 hidden -> dense to the ~80 characters (247,577
parameters), on 64-character windows, batch 32, Adam at 3e-3 with cosine decay, gradients
clipped at norm 5 (char-rnn's setting), 1,000 steps. The corpus and its 90/10 split are those of
experiments/shakespeare_char_gpt.py, so the validation losses compare (nats per character).
Takes under a minute on 2 CPU cores (28 steps/s). Measured (seed 0): validation loss 2.05 (2.95
bits per character, next-character accuracy 40 %) after the 1,000 steps; 2.28 at step 250, 2.13
at step 500, 2.07 at step 750.

Command:
    jaxmodels train --config experiments/shakespeare_char_lstm.py --workdir runs/shakespeare_char_lstm
    jaxmodels sample --workdir runs/shakespeare_char_lstm --prompt "ROMEO:" --num_tokens 300

Variants: `--config.model.cell=gru`, `--config.model.num_layers=3`, `--config.model.hidden_size=512`
(char-rnn's sizes; slow on a CPU).
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.task.name = "lm"
    config.data.name = "shakespeare"
    config.data.tokenizer = "char"
    config.data.block_size = 64
    config.data.batch_size = 32
    config.data.eval_batch_size = 100
    config.model.name = "char_rnn"
    config.model.cell = "lstm"
    config.model.embed_dim = 64
    config.model.hidden_size = 128
    config.model.num_layers = 2
    config.optimizer.learning_rate = 3e-3
    config.optimizer.grad_clip_norm = 5.0
    config.optimizer.schedule = "cosine"
    config.optimizer.final_lr_fraction = 0.1
    config.train.num_steps = 1000
    config.train.eval_every = 250
    config.train.checkpoint_every = 500
    return config
