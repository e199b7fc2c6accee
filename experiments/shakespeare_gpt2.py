"""A released GPT-2 trained further on Shakespeare with its own byte-level BPE (nanoGPT's finetune_shakespeare).

`gpt` (task lm) on the `shakespeare` corpus, starting from an import of a released GPT2LMHeadModel: every
parameter (`checkpoint.init_from`) and its BPE vocabulary of 50,257 tokens (`data.tokenizer='pretrained'`, the
tokenizer kept with the import), so the text is cut into the very tokens GPT-2 was trained on and its
embedding rows keep their meaning. The model's sizes come from the import (distilgpt2 to gpt2-xl). Windows of 256
tokens, batch 8, AdamW at a constant 3e-5 (nanoGPT fine-tunes GPT-2 on Shakespeare at 3e-5), dropout 0.1, 300
steps; the loss is scored on 40 validation windows. Then `jaxmodels sample` writes with the run's BPE. Not run here
(the weights need internet). GPT-2 small is a GPU job: a step is about 1.5 TFLOP (6 x 124M parameters, the tied
output layer included, x 8 x 256 tokens), some 19 s on 2 CPU cores at the 81 GFLOP/s jaxmodels' char GPT reaches
there (docs/benchmarks.md). The tests run it for two steps on a tiny import.

Commands:
    # on a machine with internet: fetch the release (config.json, model.safetensors, vocab.json, merges.txt, ...)
    huggingface-cli download gpt2 --local-dir gpt2
    jaxmodels import --from gpt2 --out exports/gpt2
    jaxmodels train --config experiments/shakespeare_gpt2.py --workdir runs/shakespeare_gpt2
    jaxmodels sample --workdir runs/shakespeare_gpt2 --prompt "ROMEO:" --num_tokens 100
    # another GPT-2 import (e.g. distilgpt2): name it before the command
    JAXMODELS_GPT2_EXPORT=exports/distilgpt2 jaxmodels train --config experiments/shakespeare_gpt2.py ...
"""

import os

from jaxmodels.config import base_config
from jaxmodels.exported import exported_model_config

EXPORT = os.environ.get("JAXMODELS_GPT2_EXPORT", "exports/gpt2")


def get_config():
    config = base_config()
    config.task.name = "lm"
    config.data.name = "shakespeare"
    config.data.tokenizer = "pretrained"  # the BPE vocabulary kept with checkpoint.init_from
    config.checkpoint.init_from = EXPORT
    config.model.update(exported_model_config(EXPORT, until_imported="gpt2_small"))  # the release's sizes
    config.model.dropout = 0.1
    config.data.block_size = min(256, config.model.block_size)
    config.data.batch_size = 8
    config.data.eval_batch_size = 8
    config.data.eval_windows = 40
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 3e-5
    config.optimizer.weight_decay = 0.01
    config.optimizer.grad_clip_norm = 1.0
    config.train.num_steps = 300
    config.train.eval_every = 100
    config.train.checkpoint_every = 100
    return config
