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
# # Pretraining, then fine-tuning: does a tiny BERT need fewer labels?
#
# BERT's recipe (Devlin et al. 2019, §3) is two stages: pretrain an encoder on unlabelled text with the
# masked-language-model objective, then fine-tune all of it, with a small new head, on the labelled task
# (§3.2, §4). ULMFiT (Howard & Ruder 2018, §5) made the claim that matters most in practice: the pretrained model
# needs far fewer labels — with 100 labelled examples it matched training from scratch on 10 to 100 times more.
#
# Here both stages run on Shakespeare, on a laptop's CPU:
#
# 1. **Pretraining**: `experiments/shakespeare_bert_mlm.py`, a small BERT (`bert_mlm`) that reads a short
#    window of characters and predicts the masked ones, BERT's 15 % of them, on the first part of the complete
#    works (the rest is the validation text).
# 2. **Fine-tuning**: `experiments/shakespeare_genre_bert.py`, the same encoder under a pooler and a
#    classifier (`bert_classifier`), trained to tell the genre of a passage — comedy, tragedy, history or
#    poetry — from its first characters. The test passages come from **held-out works** (a fifth of each
#    genre's), so names of characters and places do not carry over from train to test.
#    `checkpoint.init_from` loads the pretrained encoder (`checkpoint.init_subtree='encoder'`) and the
#    pretraining run's character vocabulary, so every embedding row keeps the character it was trained on.
#    The classifier reads the average of the encoder's states (`model.pooling='mean'`): the masked LM never
#    trains the [CLS] state, which BERT's next-sentence task does.
#
# The label budget is `data.train_fraction`: a fixed random subset of the labelled training passages, drawn
# with the run's seed. At each budget we fine-tune the pretrained encoder two ways and train the same network
# from scratch, with the same steps, learning rate and subset, over three seeds, and set them beside a classical
# baseline on the same characters. Every run below trains from its first step in this one execution of the
# notebook (the table after the runs shows each one's steps and time). Set `JAXMODELS_FAST=1` for a quick check
# (a few steps, one seed, one budget). The first output says which commit, software and CPU made these numbers:
# each seed's result is reproducible bit for bit on the same machine type and software; on another CPU, expect
# differences within the seed spread.

# %%
import os
import tempfile
import time
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

import jaxmodels as jm
from jaxmodels.data import sources

print(jm.provenance())
NOTEBOOK_START = time.perf_counter()
FAST = os.environ.get("JAXMODELS_FAST") == "1"
PRETRAIN_STEPS = 20 if FAST else 4000  # the experiment file's 4,000 in full mode
BUDGETS = [0.1] if FAST else [0.01, 0.1, 1.0]  # fractions of the labelled training passages
# Fine-tuning steps per budget: the experiment file's 600, and 1,800 with all the labels (600 steps are 1.3
# passes over them, and test accuracy still rises then; by 1,800 it has levelled off).
FINETUNE_STEPS = {fraction: 10 if FAST else 1800 if fraction == 1.0 else 600 for fraction in BUDGETS}
SEEDS = [0] if FAST else [0, 1, 2]
PRETRAIN_EVALS, FINETUNE_EVALS = (1, 1) if FAST else (8, 3)  # evaluations per run
EXPERIMENTS = Path("..") / "experiments"
# The runs go to a fresh temporary folder, so every run below trains from its first step. (Set
# JAXMODELS_NOTEBOOK_RUNS to a folder to keep them; running the notebook again then resumes each finished run
# from its last checkpoint instead of training it anew, and the table of runs says so.)
WORKDIRS = Path(os.environ.get("JAXMODELS_NOTEBOOK_RUNS") or tempfile.mkdtemp(prefix="bert_finetune_"))
# Runs that differ only in seed or initialisation compile the same step: let XLA reuse it from disk.
jax.config.update("jax_compilation_cache_dir", str(WORKDIRS / "jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
COMMON = ["train.progress_bar=False"]
trained = []  # (run name, steps trained in this execution, seconds): the record of this sitting


def train(config, name: str) -> jm.Run:
    """jm.train into WORKDIRS/name, recording how many steps it trained here (0 when resumed whole)."""
    checkpoints = WORKDIRS / name / "checkpoints"
    before = max((int(p.name) for p in checkpoints.glob("[0-9]*")), default=0) if checkpoints.exists() else 0
    start = time.perf_counter()
    run = jm.train(config, WORKDIRS / name)
    trained.append((name, run.step - before, time.perf_counter() - start))
    return run


mlm_config = jm.load_config(
    EXPERIMENTS / "shakespeare_bert_mlm.py",
    [
        *COMMON,
        f"train.num_steps={PRETRAIN_STEPS}",
        f"train.eval_every={PRETRAIN_STEPS // PRETRAIN_EVALS}",
        f"train.checkpoint_every={PRETRAIN_STEPS}",
        f"optimizer.warmup_steps={PRETRAIN_STEPS // 10}",  # the experiment's 400 of 4,000
    ],
)
model = mlm_config.model
print(
    f"bert_mlm: {model.num_layers} layers, {model.embed_dim} wide, {model.num_heads} heads, MLP {model.mlp_dim}; "
    f"windows of {mlm_config.data.block_size} characters; {100 * (1 - mlm_config.data.eval_fraction):.0f} % of "
    f"the text to train on; batch {mlm_config.data.batch_size}, {PRETRAIN_STEPS} steps"
)
mlm = train(mlm_config, "mlm")
encoder_parameters = sum(x.size for x in jax.tree.leaves(mlm.variables["params"]["encoder"]))
print(f"encoder parameters: {encoder_parameters:,}")

# %% [markdown]
# ## Stage 1: the masked language model
#
# Validation loss on the masked characters of the held-out tail of the text. The dotted line is the unigram
# level: the entropy of the masked characters' own frequencies, what a model that ignores the context
# reaches. A long plateau there is typical of this model: only once attention starts to read the neighbours
# does the loss fall below it.

# %%
targets = mlm.eval_examples["targets"][mlm.eval_examples["target_weights"] > 0]
frequencies = np.bincount(targets) / len(targets)
unigram = -np.sum(frequencies[frequencies > 0] * np.log(frequencies[frequencies > 0]))
train_rows = [row for row in mlm.history if "train/loss" in row]
val_rows = [row for row in mlm.history if "val/loss" in row]
# The first step whose validation loss is clearly below the unigram level: where attention starts to help.
below_unigram = next((r["step"] for r in val_rows if r["val/loss"] < unigram - 0.1), None)

fig, ax = plt.subplots(figsize=(8, 3.2))
ax.plot([r["step"] for r in train_rows], [r["train/loss"] for r in train_rows], alpha=0.4, label="train")
ax.plot([r["step"] for r in val_rows], [r["val/loss"] for r in val_rows], "o-", color="C0", label="validation")
ax.axhline(unigram, color="k", ls=":", label=f"unigram level ({unigram:.2f})")
ax.set_xlabel("step")
ax.set_ylabel("masked-LM loss (nats / character)")
ax.set_ylim(1.2, 4.0)
ax.legend(fontsize=8)
plt.show()
print("validation loss by step: " + ", ".join(f"{r['step']}: {r['val/loss']:.3f}" for r in val_rows))
print(
    f"after {mlm.step} steps: validation loss {mlm.final['val/loss']:.3f} (unigram level {unigram:.3f}), "
    f"masked-character accuracy {100 * mlm.final['val/accuracy']:.1f} %"
)

# %% [markdown]
# ## Stage 2: fine-tuning at several label budgets
#
# Every run is `experiments/shakespeare_genre_bert.py` with a budget, a seed and, for the pretrained curves,
# `checkpoint.init_from` set to the masked-LM workdir (AdamW, warmup then cosine decay). With the two smaller
# budgets every run takes the experiment's own number of steps; with all the labels, three times as many, by
# when test accuracy has stopped rising (the output below gives the steps and the passes over the passages).
# The pretrained encoder is fine-tuned two ways:
#
# - **as BERT**: every parameter at the same learning rate (§3.2);
# - **with a tenth of the rate for the encoder**, `optimizer.lr_multipliers='encoder:0.1'`: the new pooler and
#   classifier learn at the full rate while the pretrained layers move slowly, ULMFiT's discriminative
#   fine-tuning (§3.2 there), which guards what pretraining learnt against the first, noisy steps of a fresh head.
#
# The same network trained from scratch has every parameter at the full rate.


# %%
HOW = {  # name -> the overrides of its runs
    "fine-tuned": [f"checkpoint.init_from={WORKDIRS / 'mlm'}"],
    "encoder at 0.1x": [f"checkpoint.init_from={WORKDIRS / 'mlm'}", "optimizer.lr_multipliers=encoder:0.1"],
    "scratch": [],
}


def finetune(fraction: float, seed: int, how: str) -> jm.Run:
    overrides = [
        *COMMON,
        f"data.train_fraction={fraction}",
        f"seed={seed}",
        f"train.num_steps={FINETUNE_STEPS[fraction]}",
        f"train.eval_every={FINETUNE_STEPS[fraction] // FINETUNE_EVALS}",
        f"train.checkpoint_every={FINETUNE_STEPS[fraction]}",
        f"optimizer.warmup_steps={FINETUNE_STEPS[fraction] // 10}",
        *HOW[how],
        *(["train.log_every=2"] if FAST else []),  # the quick checks compare the first and last logged losses
    ]
    config = jm.load_config(EXPERIMENTS / "shakespeare_genre_bert.py", overrides)
    return train(config, f"{how.replace(' ', '_')}_{fraction}_{seed}")


runs = {(how, fraction, seed): finetune(fraction, seed, how) for fraction in BUDGETS for seed in SEEDS for how in HOW}
accuracy = {key: run.final["test/accuracy"] for key, run in runs.items()}
example = runs["fine-tuned", BUDGETS[0], SEEDS[0]]
assert example.tokenizer.vocab_size == mlm.tokenizer.vocab_size  # the pretrained run's characters, row for row
passages = sources.open_dataset("shakespeare/passages")
num_train = len(sources.open_split(passages, "train"))
sizes = [max(1, round(fraction * num_train)) for fraction in BUDGETS]  # data.train_fraction's subset sizes
batch = example.config.data.batch_size
print(f"classifier input: the first {example.config.data.block_size - 1} characters of a passage, after [CLS]")
for size, fraction in zip(sizes, BUDGETS, strict=True):
    steps = FINETUNE_STEPS[fraction]
    print(f"{size:>6,} labelled passages: {steps:,} steps of {batch}, {steps * batch / size:.1f} passes")

print(f"\n{'run':<28}{'steps trained here':>20}{'minutes':>10}")
for name, steps, seconds in trained:
    print(f"{name:<28}{steps:>20,}{seconds / 60:>10.1f}")
print(f"{sum(steps > 0 for _, steps, _ in trained)} of {len(trained)} runs trained in this execution")

# %% [markdown]
# ## A classical baseline on the same characters
#
# What can be read from a passage's first characters without any network? A bag of character n-grams (2 to 4
# letters within words, TF-IDF weighted) and a logistic regression (scikit-learn), trained on random subsets of
# the same sizes with the same seeds, scored on the same held-out works. It sees exactly the characters the BERT
# reads.

# %%
WINDOW = example.config.data.block_size - 1  # the characters after [CLS]


def first_characters(split: str, length: int = WINDOW) -> tuple[list[str], np.ndarray]:
    records = sources.open_split(passages, split)
    rows = [records[i] for i in range(len(records))]
    return [row["text"].decode()[:length] for row in rows], np.array([int(row["genre"]) for row in rows])


def ngram_accuracy(length: int, fraction: float, seed: int) -> float:
    """Test accuracy of the n-gram classifier on the first `length` characters, trained on a seed's subset."""
    train_text, train_genre = first_characters("train", length)
    test_text, test_genre = first_characters("test", length)
    ngrams = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True)
    train_features, test_features = ngrams.fit_transform(train_text), ngrams.transform(test_text)
    subset = np.random.default_rng(seed).permutation(len(train_genre))[: round(fraction * len(train_genre))]
    classifier = LogisticRegression(C=10, max_iter=2000).fit(train_features[subset], train_genre[subset])
    return float(np.mean(classifier.predict(test_features) == test_genre))


baseline = {(fraction, seed): ngram_accuracy(WINDOW, fraction, seed) for fraction in BUDGETS for seed in SEEDS}
# How much the passage's length limits it: the same classifier, all labels, on longer openings.
LENGTHS = [WINDOW] if FAST else [WINDOW, 2 * WINDOW + 1, 4 * WINDOW + 3]
by_length = {length: ngram_accuracy(length, 1.0, SEEDS[0]) for length in LENGTHS}
print(
    "n-grams with all labels, by characters read: " + ", ".join(f"{n}: {100 * a:.1f} %" for n, a in by_length.items())
)

# %% [markdown]
# ## Test accuracy against the number of labels
#
# Mean and spread over the seeds (each seed draws its own subset of passages); every ± here is the sample
# standard deviation over the seeds (ddof=1). The dotted line answers every test passage with the genre most
# frequent among the training passages, as counted from the labels.

# %%
train_genre = first_characters("train")[1]
test_genre = np.asarray(example.eval_examples["label"])
GENRES = ["comedy", "tragedy", "history", "poetry"]
most_frequent = int(np.bincount(train_genre).argmax())
majority = float(np.mean(test_genre == most_frequent))
LABELS = {  # column -> legend
    "fine-tuned": "pretrained encoder, fine-tuned",
    "encoder at 0.1x": "pretrained encoder at 0.1x the rate",
    "scratch": "from scratch",
    "n-grams": "character n-grams + logistic regression",
}
COLORS = {"fine-tuned": "C0", "encoder at 0.1x": "C2", "scratch": "C3", "n-grams": "C7"}
results = {how: {(f, s): accuracy[how, f, s] for f in BUDGETS for s in SEEDS} for how in HOW}
results["n-grams"] = baseline
ddof = 1 if len(SEEDS) > 1 else 0  # one seed (the quick mode) has no spread
mean = {c: {f: 100 * np.mean([v[f, s] for s in SEEDS]) for f in BUDGETS} for c, v in results.items()}
std = {c: {f: 100 * np.std([v[f, s] for s in SEEDS], ddof=ddof) for f in BUDGETS} for c, v in results.items()}

fig, ax = plt.subplots(figsize=(7, 4))
for column in results:
    style = "s--" if column == "n-grams" else "o-"
    ax.errorbar(
        sizes,
        [mean[column][f] for f in BUDGETS],
        yerr=[std[column][f] for f in BUDGETS],
        fmt=style,
        capsize=4,
        color=COLORS[column],
        label=LABELS[column],
    )
ax.axhline(
    100 * majority, color="k", ls=":", label=f"majority genre of the training passages ({GENRES[most_frequent]})"
)
ax.set_xscale("log")
ax.set_xlabel("labelled training passages")
ax.set_ylabel("test accuracy (%), held-out works")
ax.set_title(f"Shakespeare genre from {WINDOW} characters (mean ± sample std over {len(SEEDS)} seeds)")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
plt.show()


def cell(column: str, fraction: float) -> str:
    return f"{mean[column][fraction]:.1f} ± {std[column][fraction]:.1f}"


header = "| labels | " + " | ".join(LABELS[c] for c in results) + " |\n|---|" + "---|" * len(results) + "\n"
rows = "".join(
    f"| {size:,} | " + " | ".join(cell(c, f) for c in results) + " |\n" for size, f in zip(sizes, BUDGETS, strict=True)
)
display(
    Markdown(
        header + rows + f"\nTest accuracy %, mean ± sample std over {len(SEEDS)} seeds. Majority genre "
        f"({GENRES[most_frequent]}, the most frequent among the training passages): {100 * majority:.1f} %; four "
        f"genres at random: 25.0 %."
    )
)

# %% [markdown]
# ## How the two networks learn, with a tenth of the labels
#
# Accuracy on the training batches (a running average over the logging interval) and on the held-out works at
# each evaluation, averaged over the seeds.

# %%
MIDDLE = 0.1
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
train_accuracy = {}  # how -> mean training-batch accuracy (%) at the last logged step
for how in HOW:
    for ax, key in zip(axes, ("train/accuracy", "test/accuracy"), strict=True):
        curves = [[(r["step"], r[key]) for r in runs[how, MIDDLE, s].history if key in r] for s in SEEDS]
        steps = [step for step, _ in curves[0]]
        curve = np.mean([[100 * value for _, value in c] for c in curves], axis=0)
        ax.plot(steps, curve, "o-" if key.startswith("test") else "-", color=COLORS[how], label=LABELS[how])
        if key == "train/accuracy":
            train_accuracy[how] = curve[-1]
for ax, title in zip(axes, ("training batches", "held-out works (test)"), strict=True):
    ax.set_title(title)
    ax.set_xlabel("fine-tuning step")
    ax.axhline(100 * majority, color="k", ls=":")
axes[0].set_ylabel("accuracy (%)")
axes[0].legend(fontsize=8)
plt.show()
print(
    f"training-batch accuracy at step {FINETUNE_STEPS[MIDDLE]}: "
    + ", ".join(f"{how} {value:.0f} %" for how, value in train_accuracy.items())
)

# %% [markdown]
# ## What we learned
#
# Rendered from the numbers above.

# %%
ALL = BUDGETS[-1]
tenth, full, scratch, ngram = (mean[c] for c in ("encoder at 0.1x", "fine-tuned", "scratch", "n-grams"))
best_network = {f: max(mean[c][f] for c in HOW) for f in BUDGETS}
gaps = [ngram[f] - best_network[f] for f in BUDGETS]
# The smallest budget at which the tenth-rate encoder beats the scratch network trained on all the labels.
beats_all = next((f for f in BUDGETS if tenth[f] > scratch[ALL]), None)
minutes = (time.perf_counter() - NOTEBOOK_START) / 60


def series(column: str) -> str:
    return " / ".join(cell(column, f) for f in BUDGETS) + " %"


labels_list = " / ".join(f"{size:,}" for size in sizes)
lines = [
    f"- **Pretraining worked**: after {mlm.step:,} steps the masked LM reads {mlm.final['val/loss']:.3f} nats per "
    f"masked character of validation text, against {unigram:.2f} for the masked characters' unigram frequencies, "
    f"and gets {100 * mlm.final['val/accuracy']:.1f} % of them right."
    + (
        f" Its validation loss first falls clearly below the unigram level at step {below_unigram:,}."
        if below_unigram
        else ""
    ),
    f"- **Encoder at a tenth of the rate**: {series('encoder at 0.1x')} with {labels_list} labels, against "
    f"{series('scratch')} from scratch (± is the sample std over {len(SEEDS)} seeds)."
    + (
        f" With {sizes[BUDGETS.index(beats_all)]:,} labels it beats the network trained from scratch on all "
        f"{sizes[-1]:,} ({tenth[beats_all]:.1f} against {scratch[ALL]:.1f} %): pretraining is worth "
        f"{ALL / beats_all:.0f}x the labels here, ULMFiT's claim on a small model and a laptop's CPU."
        if beats_all is not None and beats_all < ALL
        else " It does not beat the scratch network trained on all the labels at a smaller budget."
    ),
    f"- **Fine-tuned at the full rate, BERT's recipe**: {series('fine-tuned')}, "
    f"{'below' if all(full[f] < tenth[f] for f in BUDGETS) else 'not always below'} the tenth rate. With a "
    f"tenth of the labels it fits its training batches to {train_accuracy['fine-tuned']:.0f} % by step "
    f"{FINETUNE_STEPS[MIDDLE]:,} (at the tenth rate {train_accuracy['encoder at 0.1x']:.0f} %, from scratch "
    f"{train_accuracy['scratch']:.0f} %), and reaches {cell('fine-tuned', MIDDLE)} % on held-out works against "
    f"{cell('encoder at 0.1x', MIDDLE)} % at the tenth rate.",
    f"- **The classical baseline**: character n-grams and a logistic regression on the same {WINDOW} characters "
    f"get {series('n-grams')}; minus the best network's mean at each budget, that is "
    + " / ".join(f"{gap:+.1f}" for gap in gaps)
    + " points. Given longer openings, with all labels, "
    + ", ".join(f"{n} characters give {100 * a:.1f} %" for n, a in by_length.items())
    + f". The encoder has {encoder_parameters:,} parameters; longer passages and a larger encoder are the next "
    "steps, each hours on this CPU.",
    f"- This execution trained {sum(steps > 0 for _, steps, _ in trained)} of {len(trained)} runs from their "
    f"first step and took {minutes:.0f} minutes.",
]
display(Markdown("\n".join(lines)))

# %% [markdown]
# The quick mode's checks (`JAXMODELS_FAST=1`): each fails if its stage is broken.

# %%
if FAST:
    # Pretraining learns: within its few steps the masked LM beats uniform guessing over the vocabulary by a
    # margin, which a frozen or diverging model does not.
    assert mlm.final["val/loss"] < np.log(mlm.tokenizer.vocab_size) - 0.5, mlm.final
    # Every run trained from its first step in this execution.
    assert all(steps > 0 for _, steps, _ in trained), trained

    def encoder_distance(run: jm.Run) -> float:
        """L2 distance between a run's encoder and the masked LM's."""
        pairs = zip(
            jax.tree.leaves(run.variables["params"]["encoder"]),
            jax.tree.leaves(mlm.variables["params"]["encoder"]),
            strict=True,
        )
        return float(np.sqrt(sum(np.sum((np.asarray(a) - np.asarray(b)) ** 2) for a, b in pairs)))

    distance = {how: encoder_distance(runs[how, BUDGETS[0], SEEDS[0]]) for how in HOW}
    print("encoder distance from the masked LM's:", distance)
    # init_from loaded the pretrained encoder: the tenth-rate one stayed far closer to the masked LM's than the
    # scratch network's encoder is (whose initialisation the masked LM started from, before its own steps);
    # lr_multipliers slowed it: it moved much less than the full-rate one (Adam's steps scale with the rate).
    assert distance["encoder at 0.1x"] < 0.3 * distance["scratch"], distance
    assert 0 < distance["encoder at 0.1x"] < 0.3 * distance["fine-tuned"], distance
    # Fine-tuning learns: the classifier's training loss fell from its first logged value.
    losses = [r["train/loss"] for r in runs["encoder at 0.1x", BUDGETS[0], SEEDS[0]].history if "train/loss" in r]
    assert losses[-1] < losses[0], losses
