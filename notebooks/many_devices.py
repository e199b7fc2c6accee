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
# # Many devices on one laptop
#
# Data parallelism, fully sharded data parallelism and tensor parallelism are ways of laying the *same*
# computation out over several devices: the loss of a step must not depend on the layout. jaxmodels makes
# the layout a config key, `parallel.strategy`:
#
# - `pmap` — `jax.pmap`: the train state replicated on every device, the batch split, gradients averaged
#   with an explicit `pmean`;
# - `dp` — `jax.jit` over a device mesh: parameters replicated, the batch sharded, XLA inserts the all-reduce;
# - `fsdp` — ZeRO-3 (Rajbhandari et al. 2020): parameters and optimizer state sharded too, gathered where used;
# - `tp` — Megatron (Shoeybi et al. 2019): attention heads and MLP units split over a `model` mesh axis.
#
# No accelerator is needed to see this: XLA can split one CPU into fake devices (here eight). The flag must be
# set before JAX starts, so it is the first thing this notebook does; the first output also says which commit,
# software and CPU computed these outputs. The numbers below are deterministic on the same machine type and
# software; on another CPU the last digits of every loss differ, and so may the small gaps between layouts.

# %%
import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import tempfile
import time
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import jaxmodels as jm

print(jm.provenance())
STARTED = time.perf_counter()
print(f"JAX sees {jax.device_count()} devices: {jax.devices()[0].platform}")

FAST = os.environ.get("JAXMODELS_FAST") == "1"
STEPS = 20 if FAST else 300
WORKDIRS = Path(tempfile.mkdtemp(prefix="many_devices_"))

# %% [markdown]
# ## One experiment, five layouts
#
# The character-level GPT of `experiments/shakespeare_char_gpt.py`, shrunk so that it trains in seconds (its
# sizes are printed below), with plain SGD with momentum (Adam's per-parameter normalisation would amplify the
# float-rounding differences between layouts in parameters that get almost no gradient). The same config,
# seed and data order under each strategy; `tp` uses a two-axis mesh: the batch split over the first axis,
# each layer's heads and MLP units over the second.

# %%
TINY_GPT = [
    f"model.num_layers={1 if FAST else 2}",
    "model.embed_dim=64",
    "model.num_heads=4",
    "model.block_size=32",
    "data.block_size=32",
    "data.batch_size=32",
    "data.eval_batch_size=64",
    "data.eval_windows=64",
    "optimizer.name=sgd",
    "optimizer.learning_rate=0.3",
    "optimizer.weight_decay=0.0",
    "optimizer.schedule=constant",
    f"train.num_steps={STEPS}",
    f"train.eval_every={STEPS}",
    "train.log_every=10",
    f"train.checkpoint_every={STEPS // 2}",
    "train.progress_bar=False",
]
LAYOUTS = {
    "1 device": ["parallel.num_devices=1"],
    "pmap": ["parallel.strategy=pmap"],
    "dp": ["parallel.strategy=dp"],
    "fsdp": ["parallel.strategy=fsdp"],
    "tp (4 x 2)": ["parallel.strategy=tp", "parallel.mesh.data=4", "parallel.mesh.model=2"],
}


def gpt_config(*overrides: str):
    return jm.load_config(Path("..") / "experiments" / "shakespeare_char_gpt.py", [*TINY_GPT, *overrides])


tiny = gpt_config(*LAYOUTS["tp (4 x 2)"])
print(
    f"tiny GPT: {tiny.model.num_layers} layers, {tiny.model.embed_dim} wide, {tiny.model.num_heads} heads, "
    f"context {tiny.model.block_size}; batch {tiny.data.batch_size} sequences; {tiny.optimizer.name} with momentum "
    f"{tiny.optimizer.momentum:g} at learning rate {tiny.optimizer.learning_rate:g}; {STEPS} steps, train loss "
    f"logged as the mean over every {tiny.train.log_every} steps; tp mesh {tiny.parallel.mesh.data} x "
    f"{tiny.parallel.mesh.model} (data x model)"
)
runs = {name: jm.train(gpt_config(*layout), WORKDIRS / name.split()[0]) for name, layout in LAYOUTS.items()}


def losses(run: jm.Run) -> np.ndarray:
    return np.array([row["train/loss"] for row in run.history])


# %%
fig, (curves, gaps) = plt.subplots(1, 2, figsize=(10, 3.5))
steps = np.array([row["step"] for row in runs["1 device"].history])
for color, (name, run) in enumerate(runs.items()):
    curves.plot(steps, losses(run), label=name, lw=3 if name == "1 device" else 1, color=f"C{color}")
    if name != "1 device":
        gap = np.abs(losses(run) - losses(runs["1 device"])) + 1e-9  # + 1e-9: equal losses on a log axis
        gaps.semilogy(steps, gap, label=name, color=f"C{color}")
curves.set_xlabel("step")
curves.set_ylabel("train loss (mean over 10 steps)")
curves.legend()
gaps.set_xlabel("step")
gaps.set_ylabel("|loss - 1-device loss| (+ 1e-9)")
gaps.set_title("float32 rounding, not a different run")
gaps.legend()
plt.show()
for name, run in runs.items():
    print(f"{name:11} final train loss {losses(run)[-1]:.6f}   val loss {run.final['val/loss']:.6f}")

# %%
reference = losses(runs["1 device"])
others = {name: losses(run) for name, run in runs.items() if name != "1 device"}
differs = [np.flatnonzero(loss != reference) for loss in others.values()]
first_difference = min((d[0] for d in differs if len(d)), default=len(reference))  # index in the logged losses
largest_gap = max(np.abs(loss - reference).max() for loss in others.values())
val_losses = np.array([run.final["val/loss"] for run in runs.values()])
if first_difference == len(reference):
    agreement = "Every layout's logged train loss equals the single device's exactly, at every logged step."
else:
    agreement = (
        (
            f"Every layout's logged train loss equals the single device's exactly up to step "
            f"{steps[first_difference - 1]}; after that they differ"
            if first_difference > 0
            else "The layouts differ"
        )
        + " by the order in which the devices add up their partial sums: a few units in the last place of float32, "
        f"which the training amplifies to at most {largest_gap:.1e} in the train loss over {STEPS} steps (the right "
        "plot)."
    )
display(
    Markdown(
        f"The curves lie on top of each other. {agreement} The final validation losses of the {len(runs)} layouts "
        f"span {val_losses.min():.5f} to {val_losses.max():.5f}, a range of {np.ptp(val_losses):.1e}."
    )
)


# %% [markdown]
# ## What each device holds
#
# `jm.compile(config)` (the `jaxmodels compile` command) compiles the train step ahead of time for a given
# strategy without allocating anything and reports XLA's memory analysis per device. Here the char GPT at its
# experiment size (printed below) under `dp` and `fsdp`: under `dp` every device holds the whole train state,
# under `fsdp` its share of it. The price is in the temporaries: each device gathers a layer's full weights when
# it uses them and holds full-size gradients before they are reduce-scattered.

# %%
SIZE = TINY_GPT if FAST else []  # the quick mode compiles the tiny GPT
compile_configs = {
    strategy: jm.load_config(
        Path("..") / "experiments" / "shakespeare_char_gpt.py",
        [*SIZE, f"parallel.strategy={strategy}", "data.batch_size=64"],  # 8 sequences per device
    )
    for strategy in ("dp", "fsdp")
}
reports = {strategy: jm.compile(config) for strategy, config in compile_configs.items()}
full = compile_configs["dp"]
print(
    f"the GPT compiled: {full.model.num_layers} layers, {full.model.embed_dim} wide, "
    f"{reports['dp']['parameters'] / 1e6:.1f}M parameters, {full.optimizer.name}; {full.data.batch_size} sequences "
    f"per step on {reports['dp']['devices']} devices"
)
fig, ax = plt.subplots(figsize=(6, 3))
kinds = {"params + optimizer state": "state_bytes_per_device", "temporaries": "temp_bytes"}
for offset, (label, key) in enumerate(kinds.items()):
    ax.bar(np.arange(2) + 0.38 * offset, [reports[s][key] / 2**20 for s in reports], 0.38, label=label)
ax.set_xticks(np.arange(2) + 0.19, [f"{s} on {reports[s]['devices']} devices" for s in reports])
ax.set_ylabel("MiB per device")
ax.legend()
plt.show()
for strategy, report in reports.items():
    state, temporaries = report["state_bytes_per_device"] / 2**20, report["temp_bytes"] / 2**20
    print(
        f"{strategy:5} {report['parameters']:,} parameters; per device: state {state:.2f} MiB, "
        f"temporaries {temporaries:.2f} MiB, {report['flops_per_device'] / 1e9:.2f} GFLOP/step"
    )

# %%
dp, fsdp = reports["dp"], reports["fsdp"]
total = {s: (r["state_bytes_per_device"] + r["temp_bytes"]) / 2**20 for s, r in reports.items()}
display(
    Markdown(
        f"Under `fsdp` each device holds {dp['state_bytes_per_device'] / fsdp['state_bytes_per_device']:.1f} times "
        f"less train state than under `dp`, and {fsdp['temp_bytes'] / dp['temp_bytes']:.1f} times the temporaries: "
        f"state and temporaries together, {total['fsdp']:.1f} MiB per device against `dp`'s {total['dp']:.1f} MiB. "
        + (
            "For a model this small the temporaries dominate, so `fsdp` pays off only once the train state is the "
            "larger part: the regime of models that do not fit on one device."
            if total["fsdp"] > total["dp"]
            else "Even at this size `fsdp` needs less memory per device."
        )
    )
)

# %% [markdown]
# ## Saved under one layout, resumed under another
#
# Checkpoints hold one logical copy of the train state, whatever the layout that wrote it. A run stopped
# halfway under `fsdp` (state sharded over every device) and resumed with the same command under `pmap` (state
# replicated) continues the same run: its second half matches the unbroken one.

# %%
switched = WORKDIRS / "fsdp_then_pmap"
jm.train(gpt_config("parallel.strategy=fsdp", f"train.num_steps={STEPS // 2}"), switched)
resumed = jm.train(gpt_config("parallel.strategy=pmap"), switched)

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(steps, losses(runs["fsdp"]), lw=3, label="fsdp, unbroken")
ax.plot(steps, losses(resumed), "--", label=f"fsdp to step {STEPS // 2}, then pmap")
ax.axvline(STEPS // 2, color="0.6", lw=0.8)
ax.set_xlabel("step")
ax.set_ylabel("train loss")
ax.legend()
plt.show()
after_switch = steps > STEPS // 2
switch_gap = np.abs(losses(resumed) - losses(runs["fsdp"]))[after_switch].max()
print(f"largest train-loss difference after the switch at step {STEPS // 2}: {switch_gap:.1e}")

# %% [markdown]
# The quick mode's checks (`JAXMODELS_FAST=1`), run by the test suite:

# %%
ROUNDING = 1e-4 if FAST else 2e-3  # relative; float32 rounding differences grow with the steps trained
assert reference[-1] < reference[0] - 0.2, reference  # it trains
for name, loss in others.items():
    np.testing.assert_allclose(loss, reference, rtol=ROUNDING, err_msg=name)  # the same run, to rounding
assert fsdp["state_bytes_per_device"] < dp["state_bytes_per_device"] / 6  # fsdp shards the state
np.testing.assert_allclose(losses(resumed), losses(runs["fsdp"]), rtol=ROUNDING)  # the resumed run continues it

# %%
print(f"this notebook ran for {(time.perf_counter() - STARTED) / 60:.0f} min on the machine of the first output")
