"""Sequence reversal with the Transformer encoder-decoder (Vaswani et al. 2017, Figure 1), a classic toy task.

The source is the first 16 tokens of a `synthetic/tokens` record (Markov-chain sequences over a
256-token vocabulary; 512 train and 128 test records), the target that sequence reversed,
teacher-forced from [CLS]. `transformer_seq2seq` with 2 encoder and 2 decoder layers, 128 wide,
4 heads, MLP 512, no dropout, tied embeddings (958,464 parameters); batch 64, Adam at 1e-3
with warmup and cosine decay, 500 steps. `test/accuracy` is per target token.
Takes about 2.5 minutes on 2 CPU cores shared with other jobs (4 steps/s). Measured (seed 0):
test token accuracy 99.9 %, test loss 0.034, after the 500 steps; 60 % at step 100 and 99.6 %
at step 200.

Command:
    jaxmodels train --config experiments/reverse_seq2seq.py --workdir runs/reverse_seq2seq

Longer sequences: `--config.data.block_size=64` (up to 128, the record length). The paper's base
model (6 layers, 512 wide, 8 heads) is the model's default: drop the model.* sizes below, i.e.
`--config.model.num_layers=6 --config.model.embed_dim=512 --config.model.num_heads=8
--config.model.mlp_dim=2048`.
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.task.name = "seq2seq"
    config.data.name = "synthetic/tokens"
    config.data.block_size = 16
    config.data.batch_size = 64
    config.data.eval_batch_size = 128
    config.model.name = "transformer_seq2seq"
    config.model.num_layers = 2
    config.model.num_heads = 4
    config.model.embed_dim = 128
    config.model.mlp_dim = 512
    config.model.dropout = 0.0
    config.optimizer.learning_rate = 1e-3
    config.optimizer.grad_clip_norm = 1.0
    config.optimizer.schedule = "warmup_cosine"
    config.optimizer.warmup_steps = 100
    config.train.num_steps = 500
    config.train.eval_every = 100
    return config
