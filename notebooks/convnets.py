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
# # Convolutional networks on handwritten digits: LeNet-5, ResNet-20 and a ViT beside an SVM, tuned before judged
#
# scikit-learn ships a small set of handwritten digits as tiny grey images (the UCI "Optical Recognition of
# Handwritten Digits" set). Its example *Recognizing hand-written digits* trains a support vector machine,
# `SVC(gamma=0.001)`, on the first half of them and tests it on the second half. That is the classical
# baseline of this notebook; the cells below compute it and print the sizes of the set and of its halves.
#
# Against it we train neural image classifiers on exactly the same split (jaxmodels' `digits` dataset: the
# first half trains, the second half tests):
#
# - **LeNet-5** (LeCun et al. 1998, *Gradient-based learning applied to document recognition*, Fig. 2):
#   two convolution + average-pooling stages and three dense layers with tanh; the small image is zero-padded,
#   centred, into its larger field, as the paper padded MNIST digits.
# - **ResNet-20** (He et al. 2016, *Deep residual learning for image recognition*, §4.2): the CIFAR
#   ResNet, three stages of residual blocks with BatchNorm, then global average pooling, trained with the
#   paper's SGD (momentum, weight decay, batch and rate as its experiment file sets them; here a cosine decay).
#   `experiments/digits_resnet20_regularised.py` is the same network with label smoothing, more weight decay
#   and gradient clipping, the regularisers a small training set calls for.
# - **ViT** (Dosovitskiy et al. 2021, *An image is worth 16x16 words*): a small Vision Transformer on
#   tiny patches. The paper's point is that transformers lack the convolutions' built-in locality and need
#   far more data than this to make up for it.
# - **an MLP** (`experiments/digits_mlp.py`): two hidden ReLU layers with dropout on the flattened image, the
#   simplest neural baseline.
#
# An untuned network against a baseline tuned for years is no verdict. So, after one run of each experiment
# as its file sets it, the notebook does what a researcher would: it holds out a **validation split** from the
# training half, runs a small **hyper-parameter sweep** (`jm.sweep`, the Python face of `jaxmodels sweep`) on it,
# trains the chosen settings and the hand-set ones over **several seeds**, and only then compares them on the
# test half, beside the SVC as scikit-learn's example sets it and an SVC tuned on the same validation split.
# Every run is what `jaxmodels train --config experiments/digits_<model>.py` does, with the code cells' overrides.
# Set `JAXMODELS_FAST=1` for a quick check (a few dozen steps each, fewer trials and seeds).

# %%
import json
import os
import tempfile
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, PredefinedSplit, train_test_split
from sklearn.svm import SVC

import jaxmodels as jm
from jaxmodels.data.builders.digits import to_sklearn_values
from jaxmodels.errors import DataError

print(jm.provenance())

FAST = os.environ.get("JAXMODELS_FAST") == "1"
EXPERIMENTS = Path("..") / "experiments"
WORKDIRS = Path(tempfile.mkdtemp(prefix="convnets_"))
# The runs of one network differ only in their seed or a few numbers: compile each program once for all of them.
jax.config.update("jax_compilation_cache_dir", str(WORKDIRS / "jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

SEEDS = (0, 1) if FAST else (0, 1, 2)
NUM_TRIALS = 2 if FAST else 6
VALIDATION_SIZE = 180  # the last 180 digits of the training half: a fifth of it


def train(
    experiment: str,
    steps: int,
    name: str,
    overrides: tuple[str, ...] = (),
    *,
    seed: int = 0,
    eval_every: int = 50,
    log_every: int = 50,
) -> jm.Run:
    """One run of an experiment file for `steps` steps; its workdir keeps metrics.jsonl and the final checkpoint."""
    config = jm.load_config(
        EXPERIMENTS / experiment,
        [
            f"seed={seed}",
            f"train.num_steps={steps}",
            f"train.eval_every={min(eval_every, steps)}",
            f"train.log_every={min(log_every, steps)}",
            f"train.checkpoint_every={steps}",
            "train.progress_bar=False",
            *overrides,
        ],
    )
    return jm.train(config, WORKDIRS / f"{name}_seed{seed}")


def parameters(run: jm.Run) -> int:
    """Trained parameters: every leaf of `params` (BatchNorm's running statistics are state, not counted)."""
    return sum(leaf.size for leaf in jax.tree_util.tree_leaves(run.variables["params"]))


def mean_std(values: list[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (ddof=1) over seeds."""
    return float(np.mean(values)), float(np.std(values, ddof=1))


# %% [markdown]
# ## The classical baseline, and a validation split
#
# The scikit-learn example, as it is written: the pixel values as features, `train_test_split` with
# `test_size=0.5, shuffle=False`, an RBF support vector machine with `gamma=0.001`.
#
# Choosing settings by their test score would make the test score a biased estimate, so every choice below is
# made on a **validation split**: the last fifth of the training half (in scikit-learn's order, like its own
# split, so validation digits, as the test digits, come after the ones trained on), the other four fifths
# train. The same split tunes the SVC, with scikit-learn's `GridSearchCV` over `gamma` and `C` on that one
# predefined split, refitted on the whole training half. The networks read the split from two `.npz` files
# (`data.name=arrays`, see docs/data.md), stored as jaxmodels stores the digits: the test digits are not in
# those files at all, so no sweep can see them.

# %%
digits = load_digits()
images, labels = digits.images, digits.target
x_train, x_test, y_train, y_test = train_test_split(
    images.reshape(len(images), -1), labels, test_size=0.5, shuffle=False
)
num_fit = len(y_train) - VALIDATION_SIZE
height, width = images.shape[1:]
print(f"{len(labels):,} digits of {height}x{width} pixels, values {images.min():.0f}-{images.max():.0f}")
print(f"train {len(y_train)} / test {len(y_test)} digits; the training half splits into {num_fit} to fit and")
print(f"{VALIDATION_SIZE} to validate (its last {VALIDATION_SIZE}, {100 * VALIDATION_SIZE / len(y_train):.0f} %)")

svc_accuracy = SVC(gamma=0.001).fit(x_train, y_train).score(x_test, y_test)
print(
    f"SVC(gamma=0.001): {100 * svc_accuracy:.1f} % test accuracy ({round(svc_accuracy * len(y_test))} of {len(y_test)})"
)

grid = {"gamma": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], "C": [1, 10, 100]}
validation_fold = np.where(np.arange(len(y_train)) < num_fit, -1, 0)  # -1: always fit, 0: the validation fold
tuned_svc = GridSearchCV(SVC(), grid, cv=PredefinedSplit(validation_fold), refit=True).fit(x_train, y_train)
tuned_svc_accuracy = tuned_svc.score(x_test, y_test)
print(f"SVC tuned on the validation split over gamma {grid['gamma']} x C {grid['C']}:")
default_index = tuned_svc.cv_results_["params"].index({"C": 1, "gamma": 1e-3})
print(
    f"  chose {tuned_svc.best_params_}: validation {100 * tuned_svc.best_score_:.1f} % "
    f"(the example's gamma=0.001, C=1: {100 * tuned_svc.cv_results_['mean_test_score'][default_index]:.1f} %)"
)
print(f"  refitted on all {len(y_train)}: {100 * tuned_svc_accuracy:.1f} % test accuracy")

# The split as files the networks read: uint8 pixels as jaxmodels stores them (0..255, fed to the networks as 0..1).
stored = np.rint(images * 255 / 16).astype(np.uint8)[..., None]
assert np.array_equal(to_sklearn_values(stored[..., 0]), images)
SPLIT_DIR = WORKDIRS / "validation_split"
SPLIT_DIR.mkdir()
np.savez(SPLIT_DIR / "fit.npz", image=stored[:num_fit], label=labels[:num_fit])
np.savez(SPLIT_DIR / "validation.npz", image=stored[num_fit : len(y_train)], label=labels[num_fit : len(y_train)])
ON_VALIDATION = (  # overrides that train on the fit part and evaluate on the validation part
    "data.name=arrays",
    f"data.files={SPLIT_DIR / 'fit.npz'}",
    f"data.eval_files={SPLIT_DIR / 'validation.npz'}",
    "data.input_keys=image",
)

# %% [markdown]
# ## Every experiment as its file sets it (seed 0)
#
# One run of each experiment file on the whole training half, tested on the test half, with the step counts
# printed below (LeNet-5's and the ViT's shortened: their test accuracy stops moving well before their files'
# ends). The test split the networks are evaluated on is checked to be scikit-learn's: the same labels, and
# the same pixels once scaled back.

# %%
MODELS = {  # name -> (experiment file, steps in full mode, steps in fast mode, overrides in fast mode)
    "LeNet-5": ("digits_lenet5.py", 600, 40, ()),
    "ResNet-20": ("digits_cifar_resnet20.py", 400, 20, ("model.depth=8",)),  # quick mode: ResNet-8 compiles faster
    "ResNet-20 regularised": ("digits_resnet20_regularised.py", 400, 20, ("model.depth=8",)),
    "ViT": ("digits_vit.py", 500, 40, ("optimizer.warmup_steps=4",)),  # its warmup must end before the run does
    "MLP": ("digits_mlp.py", 2000, 100, ()),
}


def steps_and_overrides(name: str) -> tuple[int, tuple[str, ...]]:
    _, full, fast, fast_overrides = MODELS[name]
    return (fast, fast_overrides) if FAST else (full, ())


runs = {}
for name, (experiment, *_) in MODELS.items():
    steps, overrides = steps_and_overrides(name)
    runs[name] = train(experiment, steps, name, overrides)
for name, run in runs.items():
    examples = run.eval_examples
    assert np.array_equal(examples["label"], y_test), name
    assert np.array_equal(np.rint(examples["inputs"] * 16).reshape(len(y_test), -1), x_test), name

accuracy = {name: 100 * run.final["test/accuracy"] for name, run in runs.items()}
print(f"{'seed 0':24} {'steps':>6} {'parameters':>11} {'test accuracy':>14}")
print(f"{'SVC(gamma=0.001)':24} {'':>6} {'':>11} {100 * svc_accuracy:>13.1f}%")
for name, run in runs.items():
    print(f"{name:24} {run.step:>6} {parameters(run):>11,} {accuracy[name]:>13.1f}%")

# %% [markdown]
# Test accuracy at every evaluation, against the SVM's line (the final value counts, not the best: picking the
# best evaluation would select on the test set).

# %%
curves = {  # name -> (steps, test accuracy %)
    name: np.array([(row["step"], 100 * row["test/accuracy"]) for row in run.history if "test/accuracy" in row]).T
    for name, run in runs.items()
}
fig, ax = plt.subplots(figsize=(8, 3.8))
for i, (name, (steps, test_accuracy)) in enumerate(curves.items()):
    ax.plot(steps, test_accuracy, "o-", ms=3, color=f"C{i}", label=f"{name} ({parameters(runs[name]):,} parameters)")
ax.axhline(100 * svc_accuracy, color="k", ls="--", lw=1, label="SVC(gamma=0.001)")
ax.set_xscale("log")
ax.set_xlabel("step")
ax.set_ylabel("test accuracy (%)")
ax.set_ylim(max(0, 10 * (min(test_accuracy.min() for _, test_accuracy in curves.values()) // 10)), 100)
ax.legend(fontsize=8, loc="lower right")
ax.set_title(f"scikit-learn digits: {len(y_train)} training images, {len(y_test)} test images, seed 0")
plt.show()

# %% [markdown]
# ## A sweep on the validation split
#
# We tune the regularised ResNet-20: the paper's network with the regularisers a small training set calls for.
# The search space is `experiments/digits_resnet20_space.json`: the learning rate and the weight decay on log
# scales, the label smoothing, and the one augmentation jaxmodels has for images, `crop_flip` (random crops of
# the zero-padded image and horizontal flips, CIFAR's; a flipped digit is not always the same digit, so the
# sweep has to find out whether it helps). Each trial trains on the fit part and is scored on the validation
# part; the held-out split of `data.name=arrays` is named `test`, so in the trials' metrics `test/accuracy` is
# the **validation** accuracy. A trial evaluates once, at its last step, so its value (the best of its
# evaluations) is its final validation accuracy. Optuna's TPE sampler draws its first points at random, as a
# random search would.
#
# From a shell the same sweep is `jaxmodels sweep --config experiments/digits_resnet20_regularised.py --space
# experiments/digits_resnet20_space.json --workdir sweeps/digits --trials N --pruner none` with the
# `--config.data.*` overrides of the validation split (`jaxmodels sweep --workdir sweeps/digits --report`
# prints the table again).

# %%
SPACE = EXPERIMENTS / "digits_resnet20_space.json"
print(SPACE.read_text())
sweep_steps, sweep_fast_overrides = steps_and_overrides("ResNet-20 regularised")
report = jm.sweep(
    WORKDIRS / "sweep",
    EXPERIMENTS / "digits_resnet20_regularised.py",
    SPACE,
    num_trials=NUM_TRIALS,
    overrides=[
        *ON_VALIDATION,
        f"train.num_steps={sweep_steps}",
        f"train.eval_every={sweep_steps}",
        f"train.log_every={sweep_steps}",
        f"train.checkpoint_every={sweep_steps}",
        "train.progress_bar=False",
        *sweep_fast_overrides,
    ],
    metric="test/accuracy",
    mode="max",
    pruner="none",
)
display(Markdown(report.markdown()))

# %%
# The report's rows: finished trials best first, each with its whole config as dotted keys.
trials = {row.name: row for row in report.comparison.rows if not row.name.endswith("(pruned)")}
chosen = {key: trials[report.best].config[key] for key in json.loads(SPACE.read_text())}
trial_values = {name: row.final for name, row in trials.items()}
print(f"chosen ({report.best}, validation accuracy {100 * trial_values[report.best]:.1f} %):")
for key, value in chosen.items():
    print(f"  {key} = {value!r}")
SWEPT = tuple(f"{key}={value!r}" for key, value in chosen.items())

# %% [markdown]
# ## Several seeds, on the test half
#
# The chosen settings, the hand-set ones of the two ResNet-20 files and the MLP, each trained on the whole
# training half with several seeds (the seed draws the initial weights, the batch order and the dropout masks)
# and scored on the test half at the last step. Seed 0 of the hand-set files is the run above. A ± is the
# sample standard deviation over the seeds (ddof=1); the SVCs are deterministic.

# %%
FINALISTS = {  # name -> (experiment file, steps, overrides)
    "ResNet-20": ("digits_cifar_resnet20.py", *steps_and_overrides("ResNet-20")),
    "ResNet-20 regularised": ("digits_resnet20_regularised.py", *steps_and_overrides("ResNet-20 regularised")),
    "ResNet-20 swept": ("digits_resnet20_regularised.py", sweep_steps, (*sweep_fast_overrides, *SWEPT)),
    "MLP": ("digits_mlp.py", *steps_and_overrides("MLP")),
}
seed_runs = {name: {} for name in FINALISTS}
for name, (experiment, steps, overrides) in FINALISTS.items():
    for seed in SEEDS:
        if seed == 0 and name in runs:
            seed_runs[name][seed] = runs[name]
        else:
            seed_runs[name][seed] = train(
                experiment, steps, name, overrides, seed=seed, eval_every=steps, log_every=steps
            )
seed_accuracy = {
    name: [100 * run.final["test/accuracy"] for run in by_seed.values()] for name, by_seed in seed_runs.items()
}
summary = {name: mean_std(values) for name, values in seed_accuracy.items()}
print(f"test accuracy %, seeds {', '.join(map(str, SEEDS))}; mean ± sample std (ddof=1)")
print(f"{'SVC(gamma=0.001)':24} {100 * svc_accuracy:.1f}")
print(f"{'SVC tuned on validation':24} {100 * tuned_svc_accuracy:.1f}  {tuned_svc.best_params_}")
for name, values in seed_accuracy.items():
    mean, std = summary[name]
    print(f"{name:24} {mean:.1f} ± {std:.1f}  (seeds: {', '.join(f'{v:.1f}' for v in values)})")

# %%
fig, ax = plt.subplots(figsize=(8, 3.2))
for i, (name, values) in enumerate(seed_accuracy.items()):
    mean, std = summary[name]
    ax.errorbar(mean, i, xerr=std, fmt="s", color="k", ms=5, capsize=4, zorder=3)
    ax.plot(values, [i] * len(values), "o", color=f"C{i}", alpha=0.7, ms=6)
ax.axvline(100 * svc_accuracy, color="k", ls="--", lw=1, label=f"SVC(gamma=0.001): {100 * svc_accuracy:.1f} %")
ax.axvline(100 * tuned_svc_accuracy, color="0.5", ls=":", lw=1.5, label=f"SVC tuned: {100 * tuned_svc_accuracy:.1f} %")
ax.set_yticks(range(len(seed_accuracy)), list(seed_accuracy))
ax.invert_yaxis()
ax.set_xlabel(f"test accuracy (%): one dot per seed, square and bar = mean ± sample std over {len(SEEDS)} seeds")
ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)  # above the dots
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What the chosen network gets wrong
#
# The swept ResNet-20's seed 0 (chosen on the validation split, not on the test set), applied to the test
# images with `run.apply` (the inference pass: BatchNorm with its running statistics). Its accuracy equals the
# run's own final evaluation exactly. Every cell shows its count; the colour shows the mistakes only (the
# diagonal, the correct answers, is left white so the mistakes stay visible).

# %%
chosen_run = seed_runs["ResNet-20 swept"][0]
examples = chosen_run.eval_examples
predictions = np.asarray(chosen_run.apply(examples["inputs"])).argmax(-1)
assert np.sum(predictions == examples["label"]) / len(predictions) == chosen_run.final["test/accuracy"]
# Row i: where the test digits labelled i went.
confusion = np.histogram2d(examples["label"], predictions, bins=np.arange(11) - 0.5)[0].astype(int)
mistakes = np.ma.masked_where(np.eye(10, dtype=bool), confusion)

fig, ax = plt.subplots(figsize=(6, 5.2), layout="constrained")
image = ax.imshow(mistakes, cmap="Reds", vmin=0)
fig.colorbar(image, ax=ax, label="test digits (mistakes)", shrink=0.85)
for (row, column), count in np.ndenumerate(confusion):
    on_diagonal = row == column
    if count or on_diagonal:
        dark = not on_diagonal and count > 0.6 * mistakes.max()
        ax.text(
            column,
            row,
            count,
            ha="center",
            va="center",
            fontsize=8,
            color="w" if dark else "k",
            fontweight="bold" if on_diagonal else "normal",
        )
ax.set(xticks=range(10), yticks=range(10), xlabel="predicted digit", ylabel="true digit")
ax.set_title(
    f"ResNet-20 swept, seed 0: {100 * chosen_run.final['test/accuracy']:.1f} % of {len(predictions)} correct\n"
    "cells: counts; diagonal (bold): correct",
    fontsize=10,
)
plt.show()
off_diagonal = [(confusion[i, j], i, j) for i in range(10) for j in range(10) if i != j and confusion[i, j]]
print("most frequent confusions (count, true, predicted):", sorted(off_diagonal, reverse=True)[:5])

# %% [markdown]
# Its misclassified test digits (the first few dozen), with the true label and the network's answer:

# %%
wrong = np.flatnonzero(predictions != examples["label"])
print(f"ResNet-20 swept, seed 0, gets {len(wrong)} of {len(predictions)} test digits wrong")
shown = wrong[:32]
cols = 8
fig, axes = plt.subplots(max(1, -(-len(shown) // cols)), cols, figsize=(8, 1.25 * max(1, -(-len(shown) // cols))))
for ax in np.ravel(axes):
    ax.axis("off")
for ax, index in zip(np.ravel(axes), shown, strict=False):
    ax.imshow(examples["inputs"][index, :, :, 0], cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(f"{examples['label'][index]} → {predictions[index]}", fontsize=8)
fig.suptitle("its mistakes: true → predicted", fontsize=9)
plt.show()

# %% [markdown]
# ## CIFAR-10
#
# He et al. designed ResNet-20 for CIFAR-10; the cell below prints their setting and result. That schedule is
# a GPU job, far too long for a CPU. So when CIFAR-10 is prepared in your TFDS data dir (in array_record
# format), the cells below train the same ResNet-20 experiment on it, with the paper's crops and flips, for a
# short run (with the cosine decay of the digits run; a quarter of an hour or more on a small CPU, minutes on
# a GPU): it shows the network learning, not the paper's number. jaxmodels never downloads at run time: if
# CIFAR-10 is not prepared, `jm.train` raises a `DataError` that says so, and the cell prints it.

# %%
PAPER_STEPS, PAPER_BATCH, CIFAR_TRAIN, PAPER_ERROR = 64_000, 128, 50_000, 8.75
print(
    f"He et al. 2016 on CIFAR-10 ({CIFAR_TRAIN:,} training images, 32x32): {PAPER_STEPS:,} steps of batch "
    f"{PAPER_BATCH} ({PAPER_STEPS * PAPER_BATCH / CIFAR_TRAIN:.0f} epochs), 4-pixel-padded random crops and flips, "
    f"the rate divided by 10 at steps {PAPER_STEPS // 2:,} and {3 * PAPER_STEPS // 4:,}: "
    f"{PAPER_ERROR} % test error ({100 - PAPER_ERROR:.2f} % accuracy)"
)
CIFAR_STEPS = 20 if FAST else 1000
try:
    cifar = train(
        "digits_cifar_resnet20.py",
        CIFAR_STEPS,
        "cifar10_resnet20",
        ("data.name=cifar10", "data.augment=crop_flip"),
        eval_every=CIFAR_STEPS // 5 if not FAST else CIFAR_STEPS,  # 10,000 test images: evaluate less often
    )
except DataError as error:
    cifar = None
    print(f"CIFAR-10 is not available here, so this section trains nothing. jaxmodels says:\n\n{error}")

# %%
if cifar is None:
    print("To run this section, prepare CIFAR-10 once where there is internet:")
    print("    tfds build cifar10 --file_format=array_record")
    print("(or point $TFDS_DATA_DIR at a data dir that has it), then run the notebook again.")
else:
    history = [row for row in cifar.history if "test/accuracy" in row]
    print(f"ResNet-20 on CIFAR-10 after {cifar.step:,} steps: {100 * cifar.final['test/accuracy']:.1f} % test accuracy")
    print(f"(He et al. 2016, {PAPER_STEPS:,} steps: {100 - PAPER_ERROR:.2f} %), {parameters(cifar):,} parameters")
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot([row["step"] for row in history], [100 * row["test/accuracy"] for row in history], "o-", ms=3)
    ax.axhline(100 - PAPER_ERROR, color="k", ls="--", lw=1, label=f"He et al. 2016, {PAPER_STEPS:,} steps")
    ax.set_xlabel("step")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    plt.show()

# %% [markdown]
# ## What we learned
#
# Rendered from the numbers above.

# %%
svc, tuned = 100 * svc_accuracy, 100 * tuned_svc_accuracy
best_name = max(summary, key=lambda name: summary[name][0])
best_mean, best_std = summary[best_name]
gap = best_mean - svc
if abs(gap) <= best_std:
    verdict = (
        f"the difference, {gap:+.1f} points, is within one standard deviation of its seeds ({best_std:.1f}): "
        "at this size, with this much tuning, the tuned network and the SVM are a tie"
    )
elif gap > 0:
    verdict = f"it beats the SVM by {gap:.1f} points, more than the {best_std:.1f} points its seeds spread"
else:
    verdict = (
        f"the SVM still wins, by {-gap:.1f} points, more than the {best_std:.1f} points the network's seeds spread"
    )
untuned_order = ", ".join(f"{name} {accuracy[name]:.1f} %" for name in sorted(accuracy, key=accuracy.get, reverse=True))
cnn_worst = min(accuracy[name] for name in ("LeNet-5", "ResNet-20"))
vit_place = (
    f"stays {cnn_worst - accuracy['ViT']:.1f} points below the weaker convolutional network"
    if accuracy["ViT"] < cnn_worst
    else "does not fall below the convolutional networks here"
)
first_reading = (
    ': read alone, they say "the classical baseline wins"'
    if svc > max(accuracy[name] for name in ("ResNet-20", "LeNet-5", "ViT"))
    else ""
)
plain_mean, plain_std = summary["ResNet-20"]
swept_mean, swept_std = summary["ResNet-20 swept"]
regularised_mean, regularised_std = summary["ResNet-20 regularised"]
mlp_mean, mlp_std = summary["MLP"]
flipped = [100 * row.final for row in trials.values() if row.config["data.augment"]]
plain = [100 * row.final for row in trials.values() if not row.config["data.augment"]]
augment_sentence = (
    f"Of the {len(trials)} trials, the {len(flipped)} with `crop_flip` scored "
    f"{min(flipped):.1f}-{max(flipped):.1f} % on validation, the {len(plain)} without "
    f"{min(plain):.1f}-{max(plain):.1f} %."
    if flipped and plain
    else f"All {len(trials)} trials drew the same augmentation setting, so the sweep says nothing about it."
)
display(
    Markdown(
        f"""
- **One untuned seed against several tuned ones.** As their files set them, seed 0: ResNet-20
  {accuracy["ResNet-20"]:.1f} %, LeNet-5 {accuracy["LeNet-5"]:.1f} %, the ViT {accuracy["ViT"]:.1f} %, against
  the SVM's {svc:.1f} %{first_reading}. Over {len(SEEDS)} seeds (mean ± sample std, ddof=1): ResNet-20
  {plain_mean:.1f} ± {plain_std:.1f} %, regularised {regularised_mean:.1f} ± {regularised_std:.1f} %, with the
  swept settings {swept_mean:.1f} ± {swept_std:.1f} %, the MLP {mlp_mean:.1f} ± {mlp_std:.1f} %. The best
  network, {best_name} at {best_mean:.1f} ± {best_std:.1f} %, against `SVC(gamma=0.001)`'s {svc:.1f} %:
  {verdict}.
- **Tuning the SVM on the same validation split** chose {tuned_svc.best_params_} and scores {tuned:.1f} % on the
  test half ({tuned - svc:+.1f} points against the example's setting): with {VALIDATION_SIZE} validation digits
  one digit is {100 / VALIDATION_SIZE:.1f} points, so validation scores are coarse, for the sweep's trials too
  (validation {100 * trial_values[report.best]:.1f} % for the chosen trial).
- **The sweep**, {NUM_TRIALS} trials of the regularised ResNet-20: {augment_sentence} Its choice, learning rate
  {chosen["optimizer.learning_rate"]:.3g}, weight decay {chosen["optimizer.weight_decay"]:.2g}, label smoothing
  {chosen["task.label_smoothing"]:.2f}, moves the test mean by {swept_mean - regularised_mean:+.1f} points from
  the file's hand-set values.
- **The untuned networks, seed 0, best first**: {untuned_order}. The ViT, with no convolutional prior and
  {len(y_train)} images to learn from, {vit_place}; Dosovitskiy et al. found transformers to need far more data
  than convolutional networks. Size does not explain it: the ViT has
  {parameters(runs["ViT"]) / parameters(runs["LeNet-5"]):.1f} times LeNet-5's parameters.
- **How much one seed says**: the spread over seeds of one setting ({min(std for _, std in summary.values()):.1f} to
  {max(std for _, std in summary.values()):.1f} points across the four) is as large as many of the differences
  between settings, which is why each is run with several seeds before it is ranked.
"""
    )
)

# %% [markdown]
# The checks of the quick mode (`JAXMODELS_FAST=1`: a few dozen steps of each network, a ResNet-8 for the
# ResNet-20s, two sweep trials, two seeds) — they fail if the library breaks, and they run on every test run:

# %%
if FAST:
    assert round(100 * svc_accuracy, 1) == 96.9, svc_accuracy
    assert all(value > 40 for value in accuracy.values()), accuracy  # chance is 10 %
    assert parameters(runs["LeNet-5"]) == 61_706 and parameters(runs["ResNet-20"]) == 75_002, "ResNet-8 in quick mode"
    assert parameters(runs["ViT"]) == 136_138, "parameter count"
    # The sweep trained on the fit part and scored on the validation part only.
    assert report.counts.get("COMPLETE") == NUM_TRIALS, report.counts
    trial = jm.load(report.sweep_dir / report.best)
    assert np.array_equal(trial.eval_examples["label"], y_train[num_fit:]), "trials must score on validation digits"
    assert trial.final["test/accuracy"] == trial_values[report.best]
    assert 0.02 <= chosen["optimizer.learning_rate"] <= 0.5 and chosen["data.augment"] in ("", "crop_flip"), chosen
    # The chosen values reached the seed runs, and the seeds made different runs.
    assert seed_runs["ResNet-20 swept"][0].config.optimizer.learning_rate == chosen["optimizer.learning_rate"]
    last_losses = {
        [row["train/loss"] for row in run.history if "train/loss" in row][-1] for run in seed_runs["MLP"].values()
    }
    assert len(last_losses) == len(SEEDS), "the seeds must make different runs"
