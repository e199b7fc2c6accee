"""A tiny BERT trained with the masked-LM objective on Shakespeare's characters (Devlin et al. 2019, §3.1).

`bert_mlm`: 2 post-LN layers, 128 wide, 4 heads, MLP 512, 64 positions (433,497 parameters),
on 64-token windows of characters ([CLS] + 63), 15 % of positions selected for prediction
(80 % [MASK], 10 % random, 10 % kept). Batch 32, AdamW at 1e-3 with 400 warmup steps and cosine
decay, 4,000 steps. The validation windows are masked once, the same way at every evaluation; loss and
accuracy count the masked positions only.
Takes under 5 minutes on 2 CPU cores, as two JAX devices (15 steps/s; `parallel.cpu_devices=2`, below).
Measured (seed 0): the loss sits near the unigram level (3.0) until about step 600, then attention
starts to use the context; validation loss 1.375, masked-character accuracy 58.1 %, after the 4,000
steps on one device (2.52 at step 1,000, 1.65 at 2,000, 1.46 at 3,000); 1.372 and 57.8 % on two.
notebooks/bert_finetune.py fine-tunes this encoder to tell a passage's genre.

Command:
    jaxmodels train --config experiments/shakespeare_bert_mlm.py --workdir runs/shakespeare_bert_mlm
    jaxmodels eval --workdir runs/shakespeare_bert_mlm

BERT-base's sizes (Devlin et al. 2019: L=12, H=768, A=12; a GPU job) override the ones below:
`--config.model.num_layers=12 --config.model.num_heads=12 --config.model.embed_dim=768
--config.model.mlp_dim=3072`; a subword vocabulary and longer windows suit them:
`--config.data.tokenizer=subword --config.data.vocab_size=8000 --config.data.block_size=128
--config.model.max_length=128`.
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.task.name = "mlm"
    config.data.name = "shakespeare"
    config.data.tokenizer = "char"
    config.data.block_size = 64
    config.data.batch_size = 32
    config.data.eval_batch_size = 100
    config.model.name = "bert_mlm"
    config.model.max_length = 64
    config.model.num_layers = 2
    config.model.num_heads = 4
    config.model.embed_dim = 128
    config.model.mlp_dim = 512
    config.model.dropout = 0.0
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.weight_decay = 0.01
    config.optimizer.grad_clip_norm = 1.0
    config.optimizer.schedule = "warmup_cosine"
    config.optimizer.warmup_steps = 400
    config.optimizer.final_lr_fraction = 0.1
    config.train.num_steps = 4000
    config.train.eval_every = 500
    config.train.checkpoint_every = 1000
    # On a CPU-only host, two JAX devices, each computing half the batch on its own core (dp): 1.18-1.24x the
    # steps/s of one device on 2 cores (docs/parallel.md). No effect on a GPU.
    config.parallel.cpu_devices = 2
    return config
