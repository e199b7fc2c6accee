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
# time as they grow further. The peak sits near the *interpolation threshold*: the smallest model that
# reaches (almost) zero training error.
#
# The MNIST-1D repository (Greydanus & Kobak) shows this on its 40-sample signals in its current
# double-descent notebook (`notebooks/deep-double-descent.ipynb`, last changed in commit `9129ceb`). Here
# its protocol runs as written, through jaxmodels' Python API, as the main curve: the experiment file
# `experiments/mnist1d_double_descent.py` holds its training settings (a plain ReLU MLP with two hidden
# layers of equal width, SGD with momentum, batch 100, 500 epochs), and this notebook generates its data
# (MNIST-1D drawn with a larger test set, part of the training labels redrawn at random) and sweeps the
# width over the repository's grid, with several seeds. The setup cell prints every setting.
#
# A second curve trains the same widths on the same data as this notebook did before: Adam for 200 epochs,
# with the residual second layer of the MNIST-1D paper's MLP. Comparing the two shows how much the peak's
# place depends on the training, not just on the model. Set `JAXMODELS_FAST=1` for a quick check (two
# widths, one seed, shorter training).

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from mnist1d.data import get_dataset_args, make_dataset

import jaxmodels as jm

print(jm.provenance())

# %%
FAST = os.environ.get("JAXMODELS_FAST") == "1"
EXPERIMENT = Path("..") / "experiments" / "mnist1d_double_descent.py"
WORK = Path(tempfile.mkdtemp(prefix="double_descent_"))

# The repository's grid: np.unique(np.geomspace(2, 300, 20, dtype=int)) -> 19 widths from 2 to 300.
WIDTHS = [9, 104] if FAST else [int(w) for w in np.unique(np.geomspace(2, 300, 20, dtype=int))]
SEEDS = {"protocol": [0] if FAST else [0, 1, 2, 3], "adam": [0] if FAST else [0, 1, 2]}
BATCH, TRAIN_SIZE, LABEL_NOISE = 100, 4000, 0.15
CURVES = {  # name -> (epochs, overrides of the experiment file)
    "protocol": (100 if FAST else 500, []),  # the repository's: plain MLP, SGD momentum 0.9 at 0.01
    "adam": (
        50 if FAST else 200,
        ["model.residual=True", "optimizer.name=adam", "optimizer.learning_rate=1e-3"],
    ),  # this notebook's earlier curve
}

# MNIST-1D drawn as the repository's notebook draws it: 16,000 signals, a quarter of them for training.
args = get_dataset_args()
args.num_samples, args.train_split = 16_000, TRAIN_SIZE / 16_000
data = make_dataset(args)
x_train, y_clean = data["x"].astype(np.float32), data["y"]
# Its label noise: every training label, with probability 0.15, replaced by a uniformly drawn class (which
# may be the true one). One fixed draw for every width and seed, as there.
rng = np.random.default_rng(0)
redrawn = rng.random(len(y_clean)) < LABEL_NOISE
y_train = np.where(redrawn, rng.integers(0, 10, len(y_clean)), y_clean)
noise_floor = 100 * np.mean(y_train != y_clean)  # train error of a net that fits the clean labels exactly
np.savez(WORK / "train.npz", x=x_train, y=y_train)
np.savez(WORK / "test.npz", x=data["x_test"].astype(np.float32), y=data["y_test"])

print(
    f"data: {len(y_train):,} training signals of {x_train.shape[1]} samples, {len(data['y_test']):,} test signals; "
    f"label noise {100 * LABEL_NOISE:.0f} %: {redrawn.sum()} training labels redrawn ({100 * redrawn.mean():.1f} %), "
    f"{np.sum(y_train != y_clean)} of them changed ({noise_floor:.1f} %: the noise floor)"
)
print(f"widths: {WIDTHS} ({len(WIDTHS)}); seeds: {SEEDS} (initialisation and batch order; same noisy labels)")
for name, (epochs, overrides) in CURVES.items():
    steps = epochs * TRAIN_SIZE // BATCH
    print(
        f"curve {name!r}: {epochs} epochs = {steps:,} steps of batch {BATCH}, test error every {epochs // 10} epochs; "
        f"overrides {overrides}"
    )
print(f"running train error: the mean over each {jm.load_config(EXPERIMENT).train.log_every} steps")

# %% [markdown]
# ## The reference: the repository's run
#
# The printed log of the repository notebook's label-noise run (one run, no seed set), as it is committed:
# train error on the noisy training labels and test error on the clean test signals, after the last epoch.

# %%
REFERENCE = {  # hidden units -> (train error %, test error %, test loss), from deep-double-descent.ipynb
    2: (71.68, 69.59, 1.757478), 3: (68.65, 67.50, 1.714114), 4: (62.75, 62.55, 1.653679),
    5: (57.95, 57.45, 1.466705), 7: (54.45, 54.80, 1.419071), 9: (47.45, 48.97, 1.344300),
    12: (46.47, 50.28, 1.371256), 16: (39.70, 47.24, 1.317827), 21: (38.08, 50.84, 1.528045),
    27: (29.55, 50.69, 1.663771), 36: (19.02, 52.80, 2.504689), 47: (5.47, 54.05, 5.697664),
    61: (0.00, 54.02, 5.786091), 80: (0.00, 52.08, 4.720016), 104: (0.00, 50.23, 3.918840),
    135: (0.00, 48.39, 3.494201), 177: (0.00, 47.88, 3.120997), 230: (0.00, 46.54, 2.887975),
    300: (0.00, 45.47, 2.629015),
}  # fmt: skip
display(
    Markdown(
        "| hidden units | train error % | test error % | test loss |\n|---:|---:|---:|---:|\n"
        + "\n".join(f"| {w} | {tr:.2f} | {te:.2f} | {loss:.2f} |" for w, (tr, te, loss) in REFERENCE.items())
    )
)


# %% [markdown]
# ## The sweeps
#
# Each run is one `jm.train` of the experiment file with the width, seed and curve's overrides; the data
# are the files written above (the noise is in them, so `data.label_noise` is 0). Test error is evaluated
# on the clean test signals every 50 epochs. Train error is, as in the repository, one pass over the
# training set with its noisy labels after the last step (`run.apply`).


# %%
def train(curve: str, width: int, seed: int) -> jm.Run:
    epochs, overrides = CURVES[curve]
    steps = epochs * TRAIN_SIZE // BATCH
    config = jm.load_config(
        EXPERIMENT,
        [
            f"seed={seed}",
            f"model.hidden={width}",
            *overrides,
            "data.name=arrays",
            f"data.files={WORK / 'train.npz'}",
            f"data.eval_files={WORK / 'test.npz'}",
            "data.input_keys=x",
            "data.label_key=y",
            "data.label_noise=0",
            f"data.batch_size={BATCH}",
            f"train.num_steps={steps}",
            f"train.eval_every={steps // 10}",
            f"train.checkpoint_every={steps}",
            "train.progress_bar=False",
        ],
    )
    return jm.train(config, WORK / curve / f"hidden{width}_seed{seed}")


def train_error(run: jm.Run) -> float:
    """% of the training signals whose (noisy) label the trained network does not predict: one full pass."""
    return 100 * float(np.mean(np.asarray(run.apply(x_train)).argmax(-1) != y_train))


results, minutes = {}, {}
for curve in CURVES:
    start = time.perf_counter()
    for width in WIDTHS:
        for seed in SEEDS[curve]:
            run = train(curve, width, seed)
            results[curve, width, seed] = {
                "train": train_error(run),
                "test": 100 * (1 - run.final["test/accuracy"]),
                "loss": run.final["test/loss"],
                "history": run.history,
            }
    minutes[curve] = (time.perf_counter() - start) / 60
    print(f"curve {curve!r}: {len(WIDTHS) * len(SEEDS[curve])} runs in {minutes[curve]:.1f} min (wall, this machine)")


# %% [markdown]
# ## Where each curve peaks
#
# For each curve: the *interpolation threshold* is the first width whose mean train error is under 1 %;
# the *classical minimum* is the lowest mean test error left of it; the *peak* is the highest mean test
# error right of the classical minimum. "Above its neighbours" is the peak's test error minus the mean of
# the two widths beside it in the grid, computed per seed. Every "±" is the sample standard deviation over
# seeds (`ddof=1`); the reference is a single run, so it has none.


# %%
def table(curve: str, key: str) -> np.ndarray:
    """(widths, seeds) array of one measurement of a curve."""
    return np.array([[results[curve, w, s][key] for s in SEEDS[curve]] for w in WIDTHS])


def spread(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def landmarks(train: np.ndarray, test: np.ndarray) -> dict:
    """Threshold, classical minimum and peak of (widths, seeds) error arrays (one column for the reference)."""
    mean_train, mean_test = train.mean(1), test.mean(1)
    fitted = np.flatnonzero(mean_train < 1)
    under = int(fitted[0]) if len(fitted) else len(WIDTHS)  # widths left of the threshold
    classical = int(mean_test[: max(under, 1)].argmin())
    peak = classical + int(mean_test[classical:].argmax())
    beside = [i for i in (peak - 1, peak + 1) if 0 <= i < len(WIDTHS)]
    above = test[peak] - test[beside].mean(0)  # per seed
    return {
        "threshold": WIDTHS[under] if len(fitted) else None,
        "classical": classical,
        "peak": peak,
        "beside": beside,
        "above": above,
        "rise": test[peak] - test[classical],  # per seed: peak over the classical minimum
        "seed_peaks": [WIDTHS[classical + int(column[classical:].argmax())] for column in test.T],
        "test": test,
        "train": train,
    }


ref_train = np.array([[REFERENCE[w][0]] for w in WIDTHS])
ref_test = np.array([[REFERENCE[w][1]] for w in WIDTHS])
marks = {"reference": landmarks(ref_train, ref_test)}
marks.update({curve: landmarks(table(curve, "train"), table(curve, "test")) for curve in CURVES})


def pm(values: np.ndarray, digits: int = 1) -> str:
    """'mean ± sample std' over seeds (just the mean for one run)."""
    return f"{values.mean():.{digits}f}" + (f" ± {spread(values):.{digits}f}" if len(values) > 1 else "")


rows = []
for name, m in marks.items():
    peak, classical = m["peak"], m["classical"]
    rows.append(
        f"| {name} | {m['threshold'] or 'not reached'} | {WIDTHS[classical]} ({pm(m['test'][classical])}) "
        f"| **{WIDTHS[peak]}** ({pm(m['test'][peak])}) | {', '.join(str(WIDTHS[i]) for i in m['beside'])} "
        f"({', '.join(pm(m['test'][i]) for i in m['beside'])}) | {pm(m['above'])} | {pm(m['rise'])} "
        f"| {WIDTHS[-1]} ({pm(m['test'][-1])}) | {', '.join(map(str, m['seed_peaks']))} |"
    )
display(
    Markdown(
        "| curve | threshold (train error < 1 %) | classical minimum: width (test error %) "
        "| peak: width (test error %) | neighbours (test error %) | peak above neighbours (points) "
        "| peak above classical minimum (points) "
        "| widest (test error %) | peak width, each seed |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        + "\n".join(rows)
    )
)

# %% [markdown]
# Every width, mean ± sample std over the seeds:

# %%
protocol_train, protocol_test, protocol_loss = (
    table("protocol", "train"),
    table("protocol", "test"),
    table("protocol", "loss"),
)
adam_train, adam_test = table("adam", "train"), table("adam", "test")
display(
    Markdown(
        "| hidden units | reference train / test error % | protocol train error % | protocol test error % "
        "| protocol test loss | Adam curve train error % | Adam curve test error % |\n"
        "|---:|---:|---:|---:|---:|---:|---:|\n"
        + "\n".join(
            f"| {w} | {REFERENCE[w][0]:.2f} / {REFERENCE[w][1]:.2f} | {pm(protocol_train[i])} "
            f"| {pm(protocol_test[i])} | {pm(protocol_loss[i], 2)} | {pm(adam_train[i])} | {pm(adam_test[i])} |"
            for i, w in enumerate(WIDTHS)
        )
    )
)

# %%
STYLE = {"protocol": ("C3", "o-", "protocol (SGD, 500 epochs)"), "adam": ("C0", "s-", "Adam, 200 epochs, residual")}
fig, (ax, ax_train) = plt.subplots(1, 2, figsize=(12, 4.3), sharex=True)
ax.plot(WIDTHS, ref_test[:, 0], "--", color="0.45", label="reference (repository run)")
ax_train.plot(WIDTHS, ref_train[:, 0], "--", color="0.45", label="reference (repository run)")
for curve, (color, marker, label) in STYLE.items():
    m = marks[curve]
    if m["test"].shape[1] > 1:
        ax.errorbar(WIDTHS, m["test"].mean(1), yerr=m["test"].std(1, ddof=1), fmt=marker, color=color, ms=4,
                    capsize=2, label=label)  # fmt: skip
    else:
        ax.plot(WIDTHS, m["test"].mean(1), marker, color=color, ms=4, label=label)
    ax_train.plot(WIDTHS, m["train"].mean(1), marker, color=color, ms=4, label=label)
    if m["threshold"]:
        for axis in (ax, ax_train):
            axis.axvline(m["threshold"], color=color, lw=0.8, ls=":")
ax_train.axhline(noise_floor, color="k", lw=0.6, ls="--")
ax_train.annotate("noise floor", (WIDTHS[-1], noise_floor), xytext=(0, 3), textcoords="offset points",
                  ha="right", fontsize=8)  # fmt: skip
ax.set_ylabel("test error, clean labels (%)")
ax_train.set_ylabel("train error, noisy labels (%)")
ax.set_title("test error (bars: ± sample std over seeds)")
ax_train.set_title("train error (dotted lines: interpolation thresholds)")
for axis in (ax, ax_train):
    axis.set_xscale("log")
    axis.set_xlabel("hidden units per layer")
    axis.grid(alpha=0.3)
ax.legend(fontsize=8, loc="upper right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## How each width fits its training set
#
# The protocol's runs, seed 0, for a few widths: the running train error on the noisy labels (each point is
# the mean over 50 steps) and the test error at every evaluation.

# %%
SHOWN = [w for w in (9, 16, 47, 61, 300) if w in WIDTHS] or WIDTHS
fig, (ax, ax_test) = plt.subplots(1, 2, figsize=(12, 4), sharex=True)
epoch_of = BATCH / TRAIN_SIZE
colors = plt.cm.plasma(np.linspace(0, 0.85, len(SHOWN)))  # ordered: dark = narrow, yellow = wide
for width, color in zip(SHOWN, colors, strict=True):
    history = results["protocol", width, SEEDS["protocol"][0]]["history"]
    logged = [row for row in history if "train/accuracy" in row]
    evals = [row for row in history if "test/accuracy" in row]
    ax.plot([row["step"] * epoch_of for row in logged], [100 * (1 - row["train/accuracy"]) for row in logged],
            color=color, lw=1, label=f"{width}")  # fmt: skip
    ax_test.plot([row["step"] * epoch_of for row in evals], [100 * (1 - row["test/accuracy"]) for row in evals],
                 "o-", color=color, ms=3, lw=1.2)  # fmt: skip
ax.axhline(noise_floor, color="k", lw=0.6, ls="--")
ax.annotate(
    "noise floor",
    (CURVES["protocol"][0], noise_floor),
    xytext=(0, 3),
    textcoords="offset points",
    ha="right",
    fontsize=8,
)
ax.set_ylabel("running train error, noisy labels (%)")
ax_test.set_ylabel("test error (%)")
for axis in (ax, ax_test):
    axis.set_xlabel("epoch")
    axis.grid(alpha=0.3)
fig.legend(title="hidden units", loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What we learned

# %%
ref, prot, adam = marks["reference"], marks["protocol"], marks["adam"]
loss_peak = int(protocol_loss.mean(1).argmax())
moved = (
    "Another training moves the peak."
    if adam["peak"] != prot["peak"]
    else "The peak stays at the same width under the other training."
)


def sharpness(m: dict) -> str:
    """Whether the peak stands out of its neighbours by more than two seed standard deviations."""
    return "clear of" if m["above"].mean() > 2 * spread(m["above"]) else "within two seed standard deviations of"


def where(m: dict) -> str:
    return f"{WIDTHS[m['peak']]} units ({pm(m['test'][m['peak']])} %)"


peak_gap = REFERENCE[WIDTHS[prot["peak"]]][1] - prot["test"][prot["peak"]].mean()
peak_sd = spread(prot["test"][prot["peak"]])
display(
    Markdown(
        f"""
- **The repository's protocol, run as written.** Over {len(SEEDS["protocol"])} seeds the test error falls to
  its classical minimum at {WIDTHS[prot["classical"]]} units ({pm(prot["test"][prot["classical"]])} %), rises
  to a peak at {where(prot)}, {pm(prot["above"])} points above the mean of its neighbours ({sharpness(prot)} them)
  ({", ".join(str(WIDTHS[i]) for i in prot["beside"])} units) and {pm(prot["rise"])} points above the classical
  minimum, and falls again to {pm(prot["test"][-1])} % at {WIDTHS[-1]} units. The seeds put the peak at
  {", ".join(map(str, prot["seed_peaks"]))} units. The train error first goes under 1 % at
  {prot["threshold"] or "no width"} units.
- **Against the repository's run:** its peak is at {where(ref)}, {ref["above"][0]:.1f} points above its
  neighbours and {ref["rise"][0]:.1f} above its classical minimum ({REFERENCE[WIDTHS[ref["classical"]]][1]:.2f} %
  at {WIDTHS[ref["classical"]]} units); its train error goes under 1 % at {ref["threshold"]} units, and it ends at
  {REFERENCE[WIDTHS[-1]][1]:.2f} % at {WIDTHS[-1]}. At our peak width its single run differs from our seed mean
  by {peak_gap:+.1f} points, {"within" if abs(peak_gap) <= 2 * peak_sd else "more than"} two of our seed
  standard deviations ({peak_sd:.1f}). The data are the same signals (the same generator and seed); the noisy
  labels are another draw, and so are the initialisations and the batch order.
- **{moved}** Our earlier curve (Adam at 1e-3, {CURVES["adam"][0]} epochs, residual second layer, same data,
  {len(SEEDS["adam"])} seeds) peaks at {where(adam)}, {pm(adam["above"])} points above its neighbours and
  {pm(adam["rise"])} above its classical minimum ({WIDTHS[adam["classical"]]} units,
  {pm(adam["test"][adam["classical"]])} %); its train error goes under 1 % at {adam["threshold"] or "no width"}
  units; the seeds put its peak at {", ".join(map(str, adam["seed_peaks"]))}: a peak {sharpness(adam)} its
  neighbours. Both curves peak near the width at which their training first fits the noisy labels, and that width
  depends on the training (Nakkiran et al.'s "effective model complexity"); the optimizer, the number of epochs
  and the residual layer change together here, so this curve does not say which of them moves it.
- **The test loss:** under the protocol it climbs from {pm(protocol_loss[prot["classical"]], 2)} at the
  classical minimum to {pm(protocol_loss[loss_peak], 2)} at {WIDTHS[loss_peak]} units and falls to
  {pm(protocol_loss[-1], 2)} at {WIDTHS[-1]} units: a network that memorised the noisy labels makes its test
  mistakes confidently.
- Cost on this machine (2 CPU cores, shared): the protocol's {len(WIDTHS) * len(SEEDS["protocol"])} runs took
  {minutes["protocol"]:.1f} min, the Adam curve's {len(WIDTHS) * len(SEEDS["adam"])} runs {minutes["adam"]:.1f} min.
"""
    )
)

# %% [markdown]
# The ranges the quick mode (`JAXMODELS_FAST=1`: two widths, one seed, shorter training) must reach — they
# fail if the library breaks, and they are checked on every test run:

# %%
if FAST:
    narrow, wide = protocol_train[0, 0], protocol_train[-1, 0]
    assert narrow > 35 and wide < narrow - 15, (narrow, wide)  # the wide net fits the noisy labels far better
    assert np.all((protocol_test > 30) & (protocol_test < 65)), protocol_test
    assert adam_train[-1, 0] < adam_train[0, 0] - 15, adam_train  # the Adam curve too
