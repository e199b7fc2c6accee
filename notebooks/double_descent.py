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
# # Deep double descent on MNIST-1D
#
# Nakkiran et al. (2020), *Deep Double Descent: Where Bigger Models and More Data Hurt*, found that the
# classical U-shaped test-error curve is only half the story. Train networks of growing size long enough to
# fit their training set, with some of its labels wrong, and test error first falls, then **rises** as the
# networks become just large enough to fit every training label — noise included — and then falls a second
# time as they grow further. The peak sits at the *interpolation threshold*: the smallest model that reaches
# (almost) zero training error.
#
# The MNIST-1D repository (Greydanus & Kobak) shows this on its 40-sample signals in a few GPU minutes
# (`notebooks/6. deep_double_descent.ipynb`): a 40-h-h-10 ReLU MLP, 15 % of the training labels replaced
# by random classes, SGD with momentum for 1,000 epochs, hidden widths from 2 to 400. Its test error
# falls to about 50 % near 18 hidden units, climbs to 58 % at 40 units, just before the training error
# first reaches zero (at 45 units), and falls again to 44 % at 400 units.
#
# Here the same experiment runs through jaxmodels' Python API: the `mnist1d_mlp` model of
# `experiments/mnist1d_mlp.py` (40-h-h-10, second hidden layer residual) with `model.hidden` set to each
# width, and `data.label_noise=0.15`, which replaces a fixed, seeded 15 % of the 4,000 *training* labels by
# a uniformly drawn class (which may by chance be the true one); the 1,000 test signals keep their true
# labels. To fit a sweep into a few CPU minutes we train with Adam at 1e-3 (batch 100) for 8,000 steps
# (200 epochs) instead of 1,000 epochs of SGD, over two seeds (the seed changes the initialisation and the
# batch order; the noisy labels are the same in every run). Set `JAXMODELS_FAST=1` for a quick check
# (two widths, one seed, fewer steps).

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import jaxmodels as jm

FAST = os.environ.get("JAXMODELS_FAST") == "1"
WIDTHS = [16, 128] if FAST else [8, 16, 32, 48, 64, 80, 96, 128, 192, 256]
SEEDS = [0] if FAST else [0, 1]
STEPS = 2000 if FAST else 8000
EXPERIMENT = Path("..") / "experiments" / "mnist1d_mlp.py"
WORKDIRS = Path(tempfile.mkdtemp(prefix="double_descent_"))

# The MNIST-1D repository's run (notebooks/6. deep_double_descent.ipynb, its printed log at epoch 900 of
# 1,000): hidden units -> (train error %, test error %). A plain MLP without the residual connection,
# 4,000 training and 4,000 test signals, SGD with momentum 0.9 at 0.01.
REFERENCE = {
    2: (71.3, 68.2), 4: (68.3, 68.3), 6: (62.8, 63.9), 8: (51.0, 50.1), 10: (51.3, 54.2), 14: (45.0, 51.8),
    18: (37.8, 49.9), 22: (33.5, 53.1), 26: (27.7, 52.5), 30: (23.0, 55.5), 35: (16.4, 56.6), 40: (8.0, 58.1),
    45: (0.0, 55.6), 50: (0.0, 55.3), 55: (0.0, 55.3), 60: (0.0, 54.6), 70: (0.0, 52.7), 80: (0.0, 53.7),
    90: (0.0, 53.2), 100: (0.0, 51.3), 120: (0.0, 50.5), 140: (0.0, 50.4), 160: (0.0, 49.6), 180: (0.0, 49.4),
    200: (0.0, 47.7), 250: (0.0, 47.2), 300: (0.0, 47.6), 400: (0.0, 44.2),
}  # fmt: skip


def train(width: int, seed: int) -> jm.Run:
    """The MLP with `width` hidden units per layer, trained to (near) interpolation on the noisy labels."""
    config = jm.load_config(
        EXPERIMENT,
        [
            f"seed={seed}",
            f"model.hidden={width}",
            "data.label_noise=0.15",
            "data.shuffle=True",
            "optimizer.learning_rate=1e-3",
            f"train.num_steps={STEPS}",
            f"train.eval_every={STEPS}",
            f"train.checkpoint_every={STEPS}",
            "train.progress_bar=False",
        ],
    )
    return jm.train(config, WORKDIRS / f"hidden{width}_seed{seed}")


runs = {(width, seed): train(width, seed) for width in WIDTHS for seed in SEEDS}

# %% [markdown]
# ## Train and test error against width
#
# Test error is the final evaluation on the 1,000 clean test signals (`run.final`). Train error is measured
# on the *noisy* labels the network was fitted to: it is the running training accuracy that jaxmodels logs
# (`train/accuracy` in `run.history`), averaged over the last 50 steps (5,000 examples, 1.25 epochs) —
# not a separate pass over the training set, but at the end of training the weights barely move within a
# window. With 15 % of the labels redrawn (and a tenth of those redrawn to the true class), a network that
# ignored the noise perfectly would show about 13.5 % train error; anything below that is memorised noise.


# %%
def train_error(run: jm.Run) -> float:
    return 100 * (1 - [row for row in run.history if "train/accuracy" in row][-1]["train/accuracy"])


def errors(metric) -> np.ndarray:
    """(widths, seeds) array of `metric(run)`."""
    return np.array([[metric(runs[width, seed]) for seed in SEEDS] for width in WIDTHS])


train_errors = errors(train_error)
test_errors = errors(lambda run: 100 * (1 - run.final["test/accuracy"]))
test_losses = errors(lambda run: run.final["test/loss"])
fitted = [w for w, e in zip(WIDTHS, train_errors.mean(1), strict=True) if e < 1]
threshold = fitted[0] if fitted else None  # the first width with ~0 train error (fast mode: maybe none)
mean_test = test_errors.mean(1)
under = WIDTHS.index(threshold) if threshold else len(WIDTHS)  # widths left of the threshold: under-parametrised
classical = int(mean_test[:under].argmin())  # the bottom of the classical U
peak = classical + int(mean_test[classical:].argmax())  # the highest test error to its right

print(f"{'hidden':>6} {'train error %':>14} {'test error %':>13} {'test loss':>10}   seeds: {SEEDS}")
for i, width in enumerate(WIDTHS):
    print(
        f"{width:6d} {train_errors[i].mean():14.1f} {test_errors[i].mean():13.1f} {test_losses[i].mean():10.2f}   "
        f"test errors {', '.join(f'{e:.1f}' for e in test_errors[i])}"
    )
print(f"interpolation threshold (train error < 1 %): {threshold or 'not reached'}")
print(
    f"test error: classical minimum {mean_test[classical]:.1f} % at {WIDTHS[classical]} units, "
    f"then a peak of {mean_test[peak]:.1f} % at {WIDTHS[peak]}, then {mean_test[-1]:.1f} % at {WIDTHS[-1]}"
)

# %%
fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
ref_widths = list(REFERENCE)
ax.plot(ref_widths, [REFERENCE[w][1] for w in ref_widths], "--", color="0.6", label="reference test (MNIST-1D repo)")
ax.plot(ref_widths, [REFERENCE[w][0] for w in ref_widths], ":", color="0.6", label="reference train")
ax.plot(WIDTHS, test_errors.mean(1), "o-", color="C3", label="ours, test")
ax.plot(WIDTHS, train_errors.mean(1), "o-", color="C0", label="ours, train (noisy labels)")
for seed_index in range(len(SEEDS)):
    ax.scatter(WIDTHS, test_errors[:, seed_index], s=10, color="C3", alpha=0.4)
if threshold:
    ax.axvline(threshold, color="k", lw=0.8)
    ax.text(threshold * 1.04, 64, "interpolation\nthreshold", fontsize=8, va="top")
    ax_loss.axvline(threshold, color="k", lw=0.8)
ax.axhline(13.5, color="C0", lw=0.6, ls="--")
ax.text(400, 10.5, "noise floor (13.5 %)", fontsize=7, color="C0", ha="right")
ax.set_xscale("log")
ax.set_xlabel("hidden units per layer")
ax.set_ylabel("error (%)")
ax.set_ylim(0, 72)
ax.legend(fontsize=8, loc="lower left")
ax.set_title("MNIST-1D MLP, 15 % label noise: train and test error")
ax_loss.plot(WIDTHS, test_losses.mean(1), "o-", color="C3")
ax_loss.set_xscale("log")
ax_loss.set_xlabel("hidden units per layer")
ax_loss.set_ylabel("test cross-entropy")
ax_loss.set_title("test loss")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## When each width fits its training set
#
# The running training error over the steps (seed 0). Narrow networks level off well above the 13.5 % noise
# floor: they cannot even fit the clean part. Networks at the threshold cross the floor late and memorise
# the wrong labels in the last epochs; wide networks get there within the first few thousand steps.

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
colors = plt.cm.viridis(np.linspace(0, 0.9, len(WIDTHS)))
for width, color in zip(WIDTHS, colors, strict=True):
    history = [row for row in runs[width, SEEDS[0]].history if "train/accuracy" in row]
    ax.plot([row["step"] for row in history], [100 * (1 - row["train/accuracy"]) for row in history],
            color=color, lw=1, label=f"{width}")  # fmt: skip
ax.axhline(13.5, color="k", lw=0.6, ls="--")
ax.set_xlabel("step")
ax.set_ylabel("train error on noisy labels (%)")
ax.legend(title="hidden units", ncols=2, fontsize=7, title_fontsize=8)
plt.show()

# %% [markdown]
# ## What we learned
#
# - Double descent reproduces, in both seeds. Test error first follows the classical U: 58.4 % at 8 hidden
#   units, down to 45.9 % at 32. It then rises while the networks fit more and more of the noisy labels, to
#   a peak of 52.5 % at 96 units — exactly the interpolation threshold, the first width whose train error
#   reaches ~0 (0.1 %) — and falls again beyond it, to 46.7 % at 256 units. Both seeds put the peak at 96
#   (53.0 and 52.0 %).
# - The reference run shows the same shape at smaller widths and a taller peak: 49.9 % at 18 units, 58.1 %
#   at 40, zero train error from 45 units, 44.2 % at 400. Our threshold sits about twice as wide, most likely
#   because we train for 200 epochs, not 1,000: the threshold is the size at which a model can just fit the
#   training set *with the training it gets* (Nakkiran et al.'s "effective model complexity"), so shorter
#   training moves it to wider models. The setups also differ in the test set (1,000 vs 4,000 signals), the
#   residual second layer, and Adam vs SGD.
# - Within our widths the second descent does not yet go below the classical minimum (46.7 % at 256 vs
#   45.9 % at 32); the reference needs 400 units and five times the training for that, which is beyond this
#   notebook's few-minute budget.
# - The test *loss* tells a different story from the error: it climbs from 1.25 at 32 units to 2.85 at the
#   threshold and keeps climbing to 3.18 at 192 units (2.99 at 256). A network that memorised the noisy
#   labels makes its test mistakes confidently, and wider networks reach that state sooner; the reference's
#   loss, after 1,000 epochs, peaks at its threshold instead (9.1 at 45 units, 2.2 at 400).

# %% [markdown]
# The ranges the quick mode (`JAXMODELS_FAST=1`: widths 16 and 128, one seed, 2,000 steps) must reach —
# they fail if the library breaks, and they are checked on every test run:

# %%
if FAST:
    narrow, wide = train_errors[0].mean(), train_errors[-1].mean()
    assert narrow > 35 and wide < narrow - 15, (narrow, wide)  # the wide net fits the noisy labels far better
    assert np.all((test_errors > 30) & (test_errors < 62)), test_errors
