"""Genre classification of Shakespeare passages by a tiny BERT, from scratch or fine-tuned (Devlin et al. 2019).

`bert_classifier` on `shakespeare/passages`: 8-line passages labelled comedy, tragedy, history or poetry; the
test split holds the passages of held-out works, so no work is on both sides. The model reads [CLS] + the
first 63 characters of a passage and classifies the average of its encoder states (`model.pooling='mean'`:
the masked LM never trains the [CLS] state, which BERT's next-sentence task would; §4.1 and Figure 1 right
otherwise). Its encoder has the sizes of `shakespeare_bert_mlm.py` (2 post-LN layers, 128 wide, 4 heads,
MLP 512, 64 positions), so the encoder of that masked-LM run loads into it: fine-tuning as in §3.2 / §4,
every parameter trained, only the pooler and the classifier initialised afresh. Batch 32, AdamW at 1e-3 with
10 % warmup and cosine decay, dropout 0.1, 600 steps.

With `checkpoint.init_from` the run also adopts the tokenizer kept in that workdir (or export), so every
embedding row stands for the character it was pretrained on; a source with a tokenizer of another kind is an
error. `data.train_fraction` trains on a fixed subset of the labelled passages (drawn with `seed`): the label
budgets of the pretraining-then-fine-tuning notebook (notebooks/bert_finetune.py), which reports the
accuracies with and without pretraining, at 1 %, 10 % and 100 % of the labels.

Commands:
    # from scratch
    jaxmodels train --config experiments/shakespeare_genre_bert.py --workdir runs/shakespeare_genre_bert
    # fine-tuned from the masked-LM run (train it first: experiments/shakespeare_bert_mlm.py)
    jaxmodels train --config experiments/shakespeare_genre_bert.py --workdir runs/shakespeare_genre_bert_ft \\
        --config.checkpoint.init_from=runs/shakespeare_bert_mlm
    # ... with the encoder at a tenth of the rate (ULMFiT's discriminative fine-tuning): the notebook's best
    ... --config.optimizer.lr_multipliers=encoder:0.1
    # with 5 % of the labels
    ... --config.data.train_fraction=0.05
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.task.name = "classify"
    config.data.name = "shakespeare/passages"
    config.data.tokenizer = "char"
    config.data.block_size = 64
    config.data.batch_size = 32
    config.data.eval_batch_size = 500
    config.model.name = "bert_classifier"
    config.model.max_length = 64
    config.model.num_layers = 2
    config.model.num_heads = 4
    config.model.embed_dim = 128
    config.model.mlp_dim = 512
    config.model.dropout = 0.1
    config.model.pooling = "mean"
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.weight_decay = 0.01
    config.optimizer.grad_clip_norm = 1.0
    config.optimizer.schedule = "warmup_cosine"
    config.optimizer.warmup_steps = 60
    config.optimizer.final_lr_fraction = 0.0
    config.train.num_steps = 600
    config.train.eval_every = 200
    config.train.checkpoint_every = 600
    config.checkpoint.init_subtree = "encoder"  # with checkpoint.init_from: the MLM's encoder, not its head
    return config
