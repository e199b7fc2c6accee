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
# # Character-level Shakespeare: a small GPT against an LSTM
#
# nanoGPT's `shakespeare_char` recipe trains a 4-layer, 4-head, 128-wide GPT (Radford et al. 2019) on
# 64-character windows, batch 12, for 2,000 steps on a CPU. Before Transformers, the model for this job was
# Karpathy's char-rnn: an LSTM (Hochreiter & Schmidhuber 1997) reading one character at a time.
#
# Both train here on Shakespeare's complete works (the modern edition of each play and poem, about 5 million
# characters, 84 symbols) split 90/10 by position, with the same tokens per step, and are scored on the
# **whole** validation text: every non-overlapping 64-character window of the last 10 %, not a sample of it.
# Beside them: PyTorch nanoGPT's own `train.py` with the same recipe, on this same corpus and split,
# measured on the same kind of 2-core machine (full-pass validation loss after 2,000 iterations).

# %%
import os
import tempfile
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import jaxmodels as jm

FAST = os.environ.get("JAXMODELS_FAST") == "1"
STEPS = 80 if FAST else 2000
EVAL_WINDOWS = 20 if FAST else 0  # 0: every window of the validation text
WORKDIRS = Path(tempfile.mkdtemp(prefix="shakespeare_char_"))
NANOGPT_VAL_LOSS = 1.895  # PyTorch nanoGPT, 2,000 iterations, same corpus, split and recipe

COMMON = [
    f"train.num_steps={STEPS}",
    f"train.eval_every={STEPS // 4}",
    f"train.checkpoint_every={STEPS}",
    f"data.eval_windows={EVAL_WINDOWS}",
    "train.progress_bar=False",
]
experiments = Path("..") / "experiments"
gpt_warmup = [f"optimizer.warmup_steps={STEPS // 20}"]  # the experiment's 100 of 2,000 steps
gpt = jm.train(jm.load_config(experiments / "shakespeare_char_gpt.py", [*COMMON, *gpt_warmup]), WORKDIRS / "gpt")
lstm = jm.train(
    jm.load_config(
        experiments / "shakespeare_char_lstm.py",
        # nanoGPT's 12 x 64 characters per step, and an LSTM about the GPT's size (2 layers of 256)
        [*COMMON, "data.batch_size=12", "model.hidden_size=256", "optimizer.learning_rate=2e-3"],
    ),
    WORKDIRS / "lstm",
)


def parameters(run: jm.Run) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(run.variables["params"]))


# %% [markdown]
# ## Validation loss, in nats per character

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
for run, label in ((gpt, "GPT"), (lstm, "LSTM")):
    train_rows = [row for row in run.history if "train/loss" in row]
    val_rows = [row for row in run.history if "val/loss" in row]
    line = ax.plot([r["step"] for r in train_rows], [r["train/loss"] for r in train_rows], alpha=0.4)[0]
    ax.plot([r["step"] for r in val_rows], [r["val/loss"] for r in val_rows], "o-", color=line.get_color(),
            label=f"{label}, {parameters(run):,} parameters: validation")  # fmt: skip
ax.axhline(NANOGPT_VAL_LOSS, color="k", ls=":", label="PyTorch nanoGPT, same recipe and data")
ax.set_xlabel("step")
ax.set_ylabel("loss (nats / character)")
ax.set_ylim(1.2, 3.5)
ax.legend(fontsize=8)
plt.show()

print(f"{'':28}{'val loss':>9}{'bits/char':>11}{'accuracy':>10}")
print(f"{'PyTorch nanoGPT (measured)':28}{NANOGPT_VAL_LOSS:9.3f}{NANOGPT_VAL_LOSS / np.log(2):11.3f}")
for run, label in ((gpt, "jaxmodels GPT"), (lstm, "jaxmodels LSTM")):
    final = run.final
    print(f"{label:28}{final['val/loss']:9.3f}{final['val/bits_per_token']:11.3f}{100 * final['val/accuracy']:9.1f}%")

# %% [markdown]
# ## Samples
#
# Each model continues the same prompt (temperature 0.8, the 40 most likely characters, seed 0).

# %%
for run, label in ((gpt, "GPT"), (lstm, "LSTM")):
    print(f"--- {label} ---")
    print(jm.sample(run, "ROMEO:\n", 300, temperature=0.8, top_k=40, seed=0))

# %% [markdown]
# ## Where the GPT looks
#
# Every attention layer keeps its weights as a Flax intermediate (`attention_weights`), so reading them
# changes nothing in the model: apply it with `mutable=["intermediates"]`. Below, each head of the last layer
# for a line of verse: row *i* is the distribution over the characters that position *i* reads when it
# predicts the next one (causal: nothing to the right of the diagonal).

# %%
prompt = "To be, or not to be, that is the question:"
tokenizer = gpt.tokenizer
tokens = np.asarray(tokenizer.encode(prompt))[None]
_, state = gpt.model.apply(gpt.variables, tokens, train=False, mutable=["intermediates"])
last_layer = f"block_{gpt.config.model.num_layers - 1}"
maps = np.asarray(state["intermediates"][last_layer]["attention"]["attention_weights"][0][0])
characters = [tokenizer.decode(np.array([t])) for t in tokens[0]]

fig, axes = plt.subplots(1, maps.shape[0], figsize=(4 * maps.shape[0], 4))
for head, ax in enumerate(axes):
    ax.imshow(maps[head], cmap="magma")
    ax.set_title(f"{last_layer}, head {head}")
    ax.set_xticks(range(len(characters)), characters, fontsize=6)
    ax.set_yticks(range(len(characters)), characters, fontsize=6)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What we learned
#
# - The GPT matches nanoGPT: the same recipe on the same text gives a full-pass validation loss of 1.874 nats per
#   character against PyTorch nanoGPT's 1.895, which says the model, the optimizer and the data pipeline agree
#   with the reference implementation.
# - Scored on a sample instead (the experiment's default `data.eval_windows=200`: the first 12,800 validation
#   characters, the opening of one play), the same GPT reads about 1.99 — 0.1 nats off. Numbers for a paper use
#   `data.eval_windows=0`, as here.
# - At this scale the LSTM wins: with the same 768 characters per step and a similar parameter count (883k vs
#   813k), it reaches 1.795 against the GPT's 1.874, and it is ahead at every evaluation. A 64-character context
#   is short enough for a recurrent state to carry; the Transformer's advantage (parallel training over long
#   contexts, and scaling) does not show in 2,000 CPU steps.

# %% [markdown]
# The quick mode's checks (`JAXMODELS_FAST=1`):

# %%
if FAST:
    for run in (gpt, lstm):
        curve = [row["val/loss"] for row in run.history if "val/loss" in row]
        assert curve[-1] < curve[0] and curve[-1] < 3.7, curve  # from ln(89) = 4.49 at random
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-5)
    assert np.abs(np.triu(maps, k=1)).max() == 0.0
