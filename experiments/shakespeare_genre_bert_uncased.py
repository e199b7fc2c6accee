"""Genre classification of Shakespeare passages by a released BERT (bert-base-uncased), fine-tuned (Devlin et al. 2019).

`bert_classifier` on `shakespeare/passages` (8-line passages labelled comedy, tragedy, history or poetry; the test
split holds the passages of held-out works), starting from an import of a released BertForMaskedLM: its encoder
(`checkpoint.init_subtree='encoder'`) and its WordPiece vocabulary (`data.tokenizer='pretrained'`, the tokenizer
kept with `checkpoint.init_from`), so passages are lower-cased, accent-stripped and cut into word pieces exactly as
in pretraining, read as [CLS] passage [SEP] (up to 128 tokens). The model's sizes come from the import, so any
BERT depth and width fits. Fine-tuning as §4.1 and Appendix A.3: the [CLS] state through a fresh tanh pooler and
classifier, AdamW with 10 % warmup then cosine decay (the paper decays linearly), batch 32, dropout 0.1, about
one epoch (460 steps); the encoder learns at 2e-5 (the paper's range 2e-5..5e-5) while the fresh head learns at
1e-4 (`optimizer.lr_multipliers='encoder:0.2'`). Not run here (the weights need internet). BERT-base is a GPU job:
a step is about 2.1 TFLOP (6 x 86M encoder parameters x 32 x 128 tokens), some 26 s on 2 CPU cores at the 81
GFLOP/s jaxmodels' char GPT reaches there (docs/benchmarks.md). The tests run it for two steps on a tiny import.

Commands:
    # on a machine with internet: fetch the release (config.json, model.safetensors, vocab.txt, tokenizer files)
    huggingface-cli download bert-base-uncased --local-dir bert-base-uncased
    jaxmodels import --from bert-base-uncased --out exports/bert-base-uncased
    jaxmodels train --config experiments/shakespeare_genre_bert_uncased.py --workdir runs/genre_bert_uncased
    # another BERT import (any size): name it before the command
    JAXMODELS_BERT_EXPORT=exports/my-bert jaxmodels train --config experiments/shakespeare_genre_bert_uncased.py ...
"""

import os

from jaxmodels.config import base_config
from jaxmodels.exported import exported_model_config

EXPORT = os.environ.get("JAXMODELS_BERT_EXPORT", "exports/bert-base-uncased")


def get_config():
    config = base_config()
    config.task.name = "classify"
    config.data.name = "shakespeare/passages"
    config.data.tokenizer = "pretrained"  # the WordPiece vocabulary kept with checkpoint.init_from
    config.checkpoint.init_from = EXPORT
    config.checkpoint.init_subtree = "encoder"  # the pretrained encoder; the pooler and classifier start afresh
    config.model.update(exported_model_config(EXPORT, until_imported="bert_base_mlm"))  # the release's sizes
    config.model.name = "bert_classifier"
    config.model.pooling = "cls"
    config.model.dropout = 0.1
    config.data.block_size = min(128, config.model.max_length)
    config.data.batch_size = 32
    config.data.eval_batch_size = 256
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 1e-4  # the fresh head's rate
    config.optimizer.lr_multipliers = "encoder:0.2"  # the pretrained encoder at 2e-5
    config.optimizer.weight_decay = 0.01
    config.optimizer.grad_clip_norm = 1.0
    config.optimizer.schedule = "warmup_cosine"
    config.optimizer.warmup_steps = 46
    config.train.num_steps = 460  # one epoch of the 14,731 training passages
    config.train.eval_every = 230
    config.train.checkpoint_every = 230
    return config
