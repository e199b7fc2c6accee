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
# No accelerator is needed to see this: XLA can split one CPU into 8 fake devices. The flag must be set
# before JAX starts, so it is the first thing this notebook does.

# %%
import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import tempfile
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import jaxmodels as jm

FAST = os.environ.get("JAXMODELS_FAST") == "1"
STEPS = 20 if FAST else 300
WORKDIRS = Path(tempfile.mkdtemp(prefix="many_devices_"))
print(f"JAX sees {jax.device_count()} devices: {jax.devices()[0].platform}")

# %% [markdown]
# ## One experiment, five layouts
#
# The character-level GPT of `experiments/shakespeare_char_gpt.py`, shrunk to two layers 64 wide so that it
# trains in seconds, with plain SGD with momentum (Adam's per-parameter normalisation would amplify the
# float-rounding differences between layouts in parameters that get almost no gradient). The same config,
# seed and data order under each strategy; `tp` uses a 4 x 2 mesh: the batch split four ways, each layer's
# heads and MLP units two ways.

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


runs = {name: jm.train(gpt_config(*layout), WORKDIRS / name.split()[0]) for name, layout in LAYOUTS.items()}


def losses(run: jm.Run) -> np.ndarray:
    return np.array([row["train/loss"] for row in run.history])


# %%
fig, (curves, gaps) = plt.subplots(1, 2, figsize=(10, 3.5))
steps = [row["step"] for row in runs["1 device"].history]
for color, (name, run) in enumerate(runs.items()):
    curves.plot(steps, losses(run), label=name, lw=3 if name == "1 device" else 1, color=f"C{color}")
    if name != "1 device":
        gap = np.abs(losses(run) - losses(runs["1 device"])) + 1e-9  # + 1e-9: equal losses on a log axis
        gaps.semilogy(steps, gap, label=name, color=f"C{color}")
curves.set_xlabel("step")
curves.set_ylabel("train loss (mean over 10 steps)")
curves.legend()
gaps.set_xlabel("step")
gaps.set_ylabel("|loss - 1-device loss|")
gaps.set_title("float32 rounding, not a different run")
gaps.legend()
plt.show()
for name, run in runs.items():
    print(f"{name:11} final train loss {losses(run)[-1]:.6f}   val loss {run.final['val/loss']:.6f}")

# %% [markdown]
# The curves lie on top of each other. The layouts agree exactly for the first steps, then differ by the
# order in which the devices add up their partial sums: a few units in the last place of float32, which the
# training amplifies to at most about 1e-3 in the loss (the right plot) and a few 1e-5 in the final validation
# loss.

# %% [markdown]
# ## What each device holds
#
# `jm.compile(config)` (the `jaxmodels compile` command) compiles the train step ahead of time for a given
# strategy without allocating anything and reports XLA's memory analysis per device. Here the char GPT at its
# experiment size (4 layers, 128 wide, 0.8M parameters, AdamW), 64 sequences per step: under `dp` every
# device holds the whole train state, under `fsdp` an eighth of it. The price is in the temporaries: each device
# gathers a layer's full weights when it uses them and holds full-size gradients before they are
# reduce-scattered. For a model this small the temporaries dominate, so fsdp pays off only once the train
# state is the larger part — the regime of models that do not fit on one device.

# %%
SIZE = TINY_GPT if FAST else []  # the quick mode compiles the tiny GPT
reports = {
    strategy: jm.compile(
        jm.load_config(
            Path("..") / "experiments" / "shakespeare_char_gpt.py",
            [*SIZE, f"parallel.strategy={strategy}", "data.batch_size=64"],  # 8 sequences per device
        )
    )
    for strategy in ("dp", "fsdp")
}
fig, ax = plt.subplots(figsize=(6, 3))
kinds = {"params + optimizer state": "state_bytes_per_device", "temporaries": "temp_bytes"}
for offset, (label, key) in enumerate(kinds.items()):
    ax.bar(np.arange(2) + 0.38 * offset, [reports[s][key] / 2**20 for s in reports], 0.38, label=label)
ax.set_xticks(np.arange(2) + 0.19, [f"{s} on 8 devices" for s in reports])
ax.set_ylabel("MiB per device")
ax.legend()
plt.show()
for strategy, report in reports.items():
    state, temporaries = report["state_bytes_per_device"] / 2**20, report["temp_bytes"] / 2**20
    print(
        f"{strategy:5} {report['parameters']:,} parameters; per device: state {state:.2f} MiB, "
        f"temporaries {temporaries:.2f} MiB, {report['flops_per_device'] / 1e9:.2f} GFLOP/step"
    )

# %% [markdown]
# ## Saved under one layout, resumed under another
#
# Checkpoints hold one logical copy of the train state, whatever the layout that wrote it. A run stopped
# halfway under `fsdp` (state sharded eight ways) and resumed with the same command under `pmap` (state
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
print(f"largest loss difference after the switch: {np.abs(losses(resumed) - losses(runs['fsdp'])).max():.2e}")

# %% [markdown]
# The quick mode's checks (`JAXMODELS_FAST=1`), run by the test suite:

# %%
reference = losses(runs["1 device"])
assert reference[-1] < reference[0] - 0.2, reference  # it trains
for name, run in runs.items():
    np.testing.assert_allclose(losses(run), reference, rtol=2e-3, err_msg=name)
assert reports["fsdp"]["state_bytes_per_device"] < reports["dp"]["state_bytes_per_device"] / 6
np.testing.assert_allclose(losses(resumed), losses(runs["fsdp"]), rtol=2e-3)
