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
# # MNIST-1D, Table 1: which models need a spatial prior?
#
# Greydanus (2020), *Scaling down deep learning*, builds MNIST-1D: ten 1-D templates of the digits,
# padded, sheared, scaled, translated and blurred into 40-sample signals, 4,000 for training and 1,000 for
# testing. The point of its Table 1 is that this tiny dataset still separates model families the way
# MNIST no longer does: a linear model gets about a third of the test set right, an MLP two thirds,
# while a CNN and a GRU — which assume that *neighbouring samples belong together* — get above 90 %.
#
# Its "shuffled" row tests that reading: one fixed permutation of the 40 positions is applied to every
# signal, train and test alike. No information is lost, so a model without a spatial prior (logistic
# regression, MLP) does as well as before, while the CNN and the GRU fall to the MLP's level.
#
# Here we train all four models of the paper's table with the paper's setup — Adam at 1e-2, batch 100,
# 6,000 steps, evaluation every 250 — over five seeds, on signals in their order and shuffled, through
# jaxmodels' Python API. Every run is exactly what `jaxmodels train --config experiments/mnist1d_<model>.py`
# does. Set `JAXMODELS_FAST=1` for a quick check (one seed, fewer steps).

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import jaxmodels as jm

FAST = os.environ.get("JAXMODELS_FAST") == "1"
SEEDS = [0] if FAST else [0, 1, 2, 3, 4]
STEPS = 400 if FAST else 6000
EXPERIMENTS = Path("..") / "experiments"
WORKDIRS = Path(tempfile.mkdtemp(prefix="mnist1d_table1_"))

MODELS = {  # name in the paper -> experiment file
    "logistic": "mnist1d_logreg.py",
    "MLP": "mnist1d_mlp.py",
    "CNN": "mnist1d_cnn.py",
    "GRU": "mnist1d_gru.py",
}
PAPER = {  # Table 1, test accuracy %: (regular mean, regular std, shuffled)
    "logistic": (32, 1, 32),
    "MLP": (68, 2, 68),
    "CNN": (94, 2, 56),
    "GRU": (91, 2, 57),
}


def train(model: str, seed: int, shuffled: bool) -> jm.Run:
    """One run of the paper's setup; its workdir keeps metrics.jsonl and the final checkpoint."""
    config = jm.load_config(
        EXPERIMENTS / MODELS[model],
        [
            f"seed={seed}",
            f"data.permute_inputs={shuffled}",
            f"train.num_steps={STEPS}",
            f"train.checkpoint_every={STEPS}",
            "train.progress_bar=False",
        ],
    )
    return jm.train(config, WORKDIRS / f"{model}_{'shuffled' if shuffled else 'regular'}_seed{seed}")


SHUFFLED = ["MLP", "CNN"] if FAST else list(MODELS)  # the quick mode checks the two models the row is about
runs = {
    (model, shuffled, seed): train(model, seed, shuffled)
    for model in MODELS
    for shuffled in (False, True)
    if model in SHUFFLED or not shuffled
    for seed in SEEDS
}

# %% [markdown]
# ## Our table beside the paper's
#
# Final test accuracy after the last step (not the best evaluation, which would select on the test set),
# mean ± sample standard deviation over the seeds.


# %%
def accuracies(model: str, shuffled: bool) -> np.ndarray:
    """Final test accuracies (%) over the seeds; empty where the quick mode skipped the run."""
    keys = [(model, shuffled, seed) for seed in SEEDS if (model, shuffled, seed) in runs]
    return np.array([100 * runs[key].final["test/accuracy"] for key in keys])


def mean_std(values: np.ndarray) -> str:
    if len(values) < 2:
        return f"{values[0]:.1f}" if len(values) else "-"
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


print(f"{'model':10} {'paper':>9} {'ours':>12}   {'paper, shuffled':>15} {'ours, shuffled':>15}")
for model, (paper_mean, paper_std, paper_shuffled) in PAPER.items():
    print(
        f"{model:10} {f'{paper_mean} ± {paper_std}':>9} {mean_std(accuracies(model, False)):>12}   "
        f"{paper_shuffled:>15} {mean_std(accuracies(model, True)):>15}"
    )

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
x = np.arange(len(PAPER))
for offset, (label, values, color) in enumerate(
    [
        ("paper", [PAPER[m][0] for m in PAPER], "0.75"),
        ("ours", [accuracies(m, False).mean() for m in PAPER], "C0"),
        ("paper, shuffled", [PAPER[m][2] for m in PAPER], "0.45"),
        ("ours, shuffled", [accuracies(m, True).mean() if m in SHUFFLED else 0 for m in PAPER], "C3"),
    ]
):
    ax.bar(x + (offset - 1.5) * 0.2, values, 0.2, label=label, color=color)
for offset, shuffled in ((-0.5, False), (1.5, True)):  # our seeds as dots
    for i, model in enumerate(PAPER):
        values = accuracies(model, shuffled)
        ax.scatter(np.full(len(values), i + offset * 0.2), values, s=8, color="k", zorder=3)
ax.set_xticks(x, list(PAPER))
ax.set_ylabel("test accuracy (%)")
ax.set_ylim(0, 100)
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside the axes: clear of the bars
ax.set_title("MNIST-1D, Table 1 of Greydanus (2020): paper vs jaxmodels")
plt.show()

# %% [markdown]
# ## Learning curves
#
# Test accuracy at every evaluation (seed 0). With the positions in order the CNN and the GRU pull away
# from the MLP within the first thousand steps; shuffled (dashed), they never do.

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
for i, model in enumerate(PAPER):
    for shuffled, style in ((False, "-"), (True, "--")):
        if (model, shuffled, SEEDS[0]) not in runs:
            continue
        history = [row for row in runs[model, shuffled, SEEDS[0]].history if "test/accuracy" in row]
        steps = [row["step"] for row in history]
        ax.plot(steps, [100 * row["test/accuracy"] for row in history], style, color=f"C{i}",
                label=f"{model}{', shuffled' if shuffled else ''}")  # fmt: skip
ax.set_xlabel("step")
ax.set_ylabel("test accuracy (%)")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside the axes: clear of the curves
plt.show()

# %% [markdown]
# ## What the CNN gets wrong
#
# The confusion matrix of the seed-0 CNN on the 1,000 test signals, from its final checkpoint:
# `run.apply` is the model's inference pass, and its accuracy equals the run's own evaluation exactly.

# %%
cnn = jm.load(runs["CNN", False, SEEDS[0]].workdir)
examples = cnn.eval_examples
predictions = np.asarray(cnn.apply(examples["inputs"])).argmax(-1)
assert np.sum(predictions == examples["label"]) / len(predictions) == cnn.final["test/accuracy"]
confusion = np.zeros((10, 10), int)
np.add.at(confusion, (examples["label"], predictions), 1)

fig, ax = plt.subplots(figsize=(4.5, 4))
ax.imshow(confusion, cmap="Blues")
for (i, j), count in np.ndenumerate(confusion):
    if count:
        ax.text(j, i, count, ha="center", va="center", fontsize=7, color="w" if count > confusion.max() / 2 else "k")
ax.set_xticks(range(10))
ax.set_yticks(range(10))
ax.set_xlabel("predicted digit")
ax.set_ylabel("true digit")
ax.set_title(f"CNN, seed {SEEDS[0]}: {100 * cnn.final['test/accuracy']:.1f} % correct")
plt.show()

# %% [markdown]
# ## What we learned
#
# - The spatial-prior result reproduces: shuffling the positions takes the CNN from 93.6 to 59.5 % and the GRU
#   from 90.1 to 52.3 % — down to the MLP's level or below — and leaves logistic regression (31.9 %) and the MLP
#   (65.8 %) where they were.
# - The CNN, GRU and logistic rows land inside the paper's ranges. The MLP lands about two points under the
#   paper's mean (65.7 vs 68); initialisation and the paper's unshuffled data order were ruled out
#   (docs/results.md). The likely cause is the dataset itself: the paper used a pickled 2020 build of MNIST-1D,
#   and we train on the one the `mnist1d` package regenerates offline; the MLP, which sees positions rather
#   than shapes, is the model most sensitive to such changes.
# - Shuffled, our CNN lands 3.5 points above the paper's 56 % and our GRU 4.7 points below its 57 %. The
#   paper gives no spread for that row and uses one permutation; ours is another fixed permutation, and which
#   neighbourhoods it happens to keep moves these two numbers by a few points.

# %% [markdown]
# The ranges the quick mode (`JAXMODELS_FAST=1`, 500 steps, one seed) must reach — they fail if the
# library breaks, and they are checked on every test run:

# %%
if FAST:
    regular = {model: accuracies(model, False).mean() for model in PAPER}
    shuffled = {model: accuracies(model, True).mean() for model in SHUFFLED}
    assert 25 < regular["logistic"] < 40 and 45 < regular["MLP"] < 75, regular
    assert regular["CNN"] > regular["MLP"] + 5 and regular["GRU"] > regular["logistic"] + 10, regular
    assert shuffled["CNN"] < regular["CNN"] - 5, (regular, shuffled)
    assert abs(shuffled["MLP"] - regular["MLP"]) < 10, (regular, shuffled)
