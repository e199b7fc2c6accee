# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Pretraining, then fine-tuning: a tiny BERT that needs fewer labels
#
# BERT's recipe (Devlin et al. 2019, §3) is two stages: pretrain an encoder on unlabelled text with the
# masked-language-model objective, then fine-tune all of it, with a small new head, on the labelled task
# (§3.2, §4). ULMFiT (Howard & Ruder 2018) made the claim that matters most in practice: the pretrained model
# needs far fewer labels — with 100 labelled examples it matched training from scratch on 10-100 times more.
#
# Here both stages run on Shakespeare, on a laptop's CPU:
#
# 1. **Pretraining**: `experiments/shakespeare_bert_mlm.py`, a 2-layer, 128-wide BERT (`bert_mlm`) that
#    reads 64 characters at a time and predicts the 15 % that are masked, on 90 % of the complete works.
# 2. **Fine-tuning**: `experiments/shakespeare_genre_bert.py`, the same encoder under a [CLS] pooler and a
#    classifier (`bert_classifier`), trained to tell the genre of an 8-line passage — comedy, tragedy,
#    history or poetry — from its first 63 characters. The test passages come from **held-out works**
#    (a fifth of each genre's), so names of characters and places do not carry over from train to test.
#    `checkpoint.init_from` loads the pretrained encoder (`checkpoint.init_subtree='encoder'`) and the
#    pretraining run's character vocabulary, so every embedding row keeps the character it was trained on.
#
# The label budget is `data.train_fraction`: a fixed random subset of the 14,731 labelled training passages,
# drawn with the run's seed. At each budget we fine-tune the pretrained encoder and train the same network
# from scratch, with the same steps, learning rate and subset, over two seeds (the whole notebook took 27
# minutes on 2 shared CPU cores). Set `JAXMODELS_FAST=1` for a quick check (a few steps, one seed, one budget).
#
# The outcome, in short: pretraining works, but at this size and length of training the fine-tuned encoder
# does no better than the network trained from scratch (see the last section for why).

# %%
import os
import tempfile
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import jaxmodels as jm

FAST = os.environ.get("JAXMODELS_FAST") == "1"
PRETRAIN_STEPS = 20 if FAST else 1000  # the experiment file's 1,000 in full mode
FINETUNE_STEPS = 10 if FAST else 100
BUDGETS = [0.1] if FAST else [0.01, 0.1, 1.0]  # fractions of the 14,731 labelled training passages
SEEDS = [0] if FAST else [0, 1]
EXPERIMENTS = Path("..") / "experiments"
WORKDIRS = Path(tempfile.mkdtemp(prefix="bert_finetune_"))
# Runs that differ only in seed or initialisation compile the same step: let XLA reuse it from disk.
jax.config.update("jax_compilation_cache_dir", str(WORKDIRS / "jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

COMMON = ["train.progress_bar=False"]
mlm = jm.train(
    jm.load_config(
        EXPERIMENTS / "shakespeare_bert_mlm.py",
        [
            *COMMON,
            f"train.num_steps={PRETRAIN_STEPS}",
            f"train.eval_every={PRETRAIN_STEPS // 4}",
            f"train.checkpoint_every={PRETRAIN_STEPS}",
            f"optimizer.warmup_steps={PRETRAIN_STEPS // 10}",  # the experiment's 100 of 1,000
        ],
    ),
    WORKDIRS / "mlm",
)

# %% [markdown]
# ## Stage 1: the masked language model
#
# Validation loss on the masked characters of the held-out 10 % of the text. The dotted line is the unigram
# level: the entropy of the masked characters' own frequencies, what a model that ignores the context
# reaches. A long plateau there is typical of this model: only once attention starts to read the neighbours
# does the loss fall below it.

# %%
targets = mlm.eval_examples["targets"][mlm.eval_examples["target_weights"] > 0]
frequencies = np.bincount(targets) / len(targets)
unigram = -np.sum(frequencies[frequencies > 0] * np.log(frequencies[frequencies > 0]))
train_rows = [row for row in mlm.history if "train/loss" in row]
val_rows = [row for row in mlm.history if "val/loss" in row]

fig, ax = plt.subplots(figsize=(8, 3.2))
ax.plot([r["step"] for r in train_rows], [r["train/loss"] for r in train_rows], alpha=0.4, label="train")
ax.plot([r["step"] for r in val_rows], [r["val/loss"] for r in val_rows], "o-", color="C0", label="validation")
ax.axhline(unigram, color="k", ls=":", label=f"unigram level ({unigram:.2f})")
ax.set_xlabel("step")
ax.set_ylabel("masked-LM loss (nats / character)")
ax.set_ylim(2.0, 4.0)
ax.legend(fontsize=8)
plt.show()
print(
    f"after {mlm.step} steps: validation loss {mlm.final['val/loss']:.3f} (unigram level {unigram:.3f}), "
    f"masked-character accuracy {100 * mlm.final['val/accuracy']:.1f} %"
)

# %% [markdown]
# ## Stage 2: fine-tuning at several label budgets
#
# Every run is `experiments/shakespeare_genre_bert.py` with a budget, a seed and, for the pretrained curve,
# `checkpoint.init_from` set to the masked-LM workdir; all take the same number of steps (batch 32, AdamW at
# 1e-3, warmup then cosine decay), so the smallest budget is seen many times and the whole set less than once.


# %%
def finetune(fraction: float, seed: int, pretrained: bool) -> jm.Run:
    name = f"{'pretrained' if pretrained else 'scratch'}_{fraction}_{seed}"
    overrides = [
        *COMMON,
        f"data.train_fraction={fraction}",
        f"seed={seed}",
        f"train.num_steps={FINETUNE_STEPS}",
        f"train.eval_every={FINETUNE_STEPS}",
        f"train.checkpoint_every={FINETUNE_STEPS}",
        f"optimizer.warmup_steps={FINETUNE_STEPS // 10}",
    ]
    if pretrained:
        overrides.append(f"checkpoint.init_from={WORKDIRS / 'mlm'}")
    return jm.train(jm.load_config(EXPERIMENTS / "shakespeare_genre_bert.py", overrides), WORKDIRS / name)


runs = {
    (pretrained, fraction, seed): finetune(fraction, seed, pretrained)
    for fraction in BUDGETS
    for seed in SEEDS
    for pretrained in (True, False)
}
accuracy = {key: run.final["test/accuracy"] for key, run in runs.items()}
example = runs[True, BUDGETS[0], SEEDS[0]]
assert example.tokenizer.vocab_size == mlm.tokenizer.vocab_size  # the pretrained run's characters, row for row

# %% [markdown]
# ## Test accuracy against the number of labels
#
# Mean and spread (standard deviation) over the seeds (each seed draws its own subset of passages). The baseline
# predicts the most frequent genre of the training passages for every test passage.

# %%
labels = np.asarray(example.eval_examples["label"])
num_train = 14731
majority = float(np.mean(labels == 1))  # tragedy, the most frequent genre among the training passages
sizes = np.array([round(fraction * num_train) for fraction in BUDGETS])

fig, ax = plt.subplots(figsize=(7, 4))
for pretrained, label, color in ((True, "pretrained encoder, fine-tuned", "C0"), (False, "from scratch", "C3")):
    values = np.array([[100 * accuracy[pretrained, f, s] for s in SEEDS] for f in BUDGETS])
    ax.errorbar(sizes, values.mean(1), yerr=values.std(1), fmt="o-", capsize=4, color=color, label=label)
ax.axhline(100 * majority, color="k", ls=":", label="majority genre of the training passages")
ax.set_xscale("log")
ax.set_xlabel("labelled training passages")
ax.set_ylabel("test accuracy (%), held-out works")
ax.set_title("Shakespeare genre from 63 characters: a tiny BERT with and without pretraining")
ax.legend(fontsize=8)
plt.show()

print(f"{'labels':>8} {'pretrained':>16} {'from scratch':>16}")
for fraction, size in zip(BUDGETS, sizes, strict=True):
    cells = []
    for pretrained in (True, False):
        values = np.array([100 * accuracy[pretrained, fraction, s] for s in SEEDS])
        cells.append(f"{values.mean():.1f} ± {values.std():.1f} %")
    print(f"{size:>8} {cells[0]:>16} {cells[1]:>16}")
print(f"majority genre: {100 * majority:.1f} %; four genres at random: 25.0 %")

# %% [markdown]
# ## What we learned
#
# - **Pretraining worked**: after the experiment's 1,000 steps the masked LM reads 2.52 nats per masked character
#   on validation text, against 3.22 for the masked characters' unigram frequencies (its plateau sits near
#   3.0, a little below, because 10 % of the selected characters are left as they are), and gets 31.8 % of them
#   right, the experiment file's numbers.
# - **Fine-tuning showed no gain at this size.** At every budget the fine-tuned encoder and the same network
#   from scratch land within the seeds' spread of each other: 32.9 ± 2.1 vs 32.8 ± 2.5 % with 147 labels,
#   24.3 vs 24.2 % with 1,473, 29.0 ± 1.9 vs 30.5 ± 6.3 % with all 14,731. None of it is far from a network
#   that calls every passage one genre (24.2 % if tragedy, 36.8 % if comedy): in 100 steps neither model leaves
#   that solution, and which genre a run settles on explains most of the scatter, and the dip at 1,473 labels.
#   This notebook does not reproduce the papers' effect; it shows where a model this small, trained this
#   briefly, stands.
# - **Why, as far as we measured.** Sixty-three characters, about one line, are little evidence of a genre, and
#   the test works are held out, so the speaker names that mark a history in training do not recur. A masked LM
#   at 2.52 nats knows spelling and local context, which the labelled passages teach a fresh network about as
#   fast. And the [CLS] state, which the classifier reads, is never trained by the masked-LM objective (no
#   next-sentence task here), so it starts untrained in both networks. Longer fine-tuning did not change the
#   picture: with 10 % of the labels, 300 steps at 5e-4 (outside this notebook, same pretrained run) gave 28.9 %
#   fine-tuned vs 34.1 % from scratch, while both fit 44 % of their training passages. Showing the papers'
#   effect would take longer passages (`data.block_size=256`, pretrained at that length), much longer
#   pretraining and fine-tuning to convergence: hours on this CPU rather than this notebook's half hour.

# %% [markdown]
# The quick mode's checks (`JAXMODELS_FAST=1`):

# %%
if FAST:
    assert mlm.final["val/loss"] < np.log(mlm.tokenizer.vocab_size), mlm.final  # below uniform guessing
    assert all(0.0 <= value <= 1.0 for value in accuracy.values()), accuracy
    assert len(runs) == 2 * len(BUDGETS) * len(SEEDS)
