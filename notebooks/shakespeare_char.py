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
# nanoGPT's `shakespeare_char` recipe trains a small GPT (Radford et al. 2019) on short character windows with
# small batches on a CPU. Before Transformers, the model for this job was Karpathy's char-rnn: an LSTM
# (Hochreiter & Schmidhuber 1997) reading one character at a time.
#
# Both train here on Shakespeare's complete works (the modern edition of each play and poem) split by position,
# with the same characters per step, and are scored on the **whole** validation text: every non-overlapping
# window of its last part, not a sample of it. Beside them: nanoGPT's recipe in PyTorch, on this same corpus,
# split and score, over several seeds, and jaxmodels' GPT over the same seeds, as
# `benchmarks/nanogpt_reference.py` measured them (`docs/nanogpt_reference.json`, read below). The first output
# says which commit, software and CPU built this notebook; the settings are printed below it.

# %%
import json
import os
import tempfile
import time
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from matplotlib.colors import PowerNorm

import jaxmodels as jm

print(jm.provenance())
STARTED = time.perf_counter()

FAST = os.environ.get("JAXMODELS_FAST") == "1"
STEPS = 80 if FAST else 2000
EVAL_WINDOWS = 20 if FAST else 0  # 0: every window of the validation text
SAMPLE_WINDOWS = 200  # the experiment's default data.eval_windows: a sample of the validation text
WORKDIRS = Path(tempfile.mkdtemp(prefix="shakespeare_char_"))
REFERENCE = json.loads((Path("..") / "docs" / "nanogpt_reference.json").read_text())

COMMON = [
    f"train.num_steps={STEPS}",
    f"train.eval_every={STEPS // 4}",
    f"train.checkpoint_every={STEPS}",
    f"data.eval_windows={EVAL_WINDOWS}",
    "train.progress_bar=False",
]
experiments = Path("..") / "experiments"
gpt_warmup = [f"optimizer.warmup_steps={STEPS // 20}"]  # the experiment's 100 of 2,000 steps
gpt_config = jm.load_config(experiments / "shakespeare_char_gpt.py", [*COMMON, *gpt_warmup])
# nanoGPT's 12 x 64 characters per step, and an LSTM about the GPT's size (2 layers of 256)
lstm_config = jm.load_config(
    experiments / "shakespeare_char_lstm.py",
    [*COMMON, "data.batch_size=12", "model.hidden_size=256", "optimizer.learning_rate=2e-3"],
)
corpus = REFERENCE["corpus"]
val_characters = corpus["val_windows"] * corpus["window"]
g, m = gpt_config, lstm_config
print(
    f"\nGPT: {g.model.num_layers} layers, {g.model.num_heads} heads, {g.model.embed_dim} wide, "
    f"{g.data.block_size}-character windows, batch {g.data.batch_size}, {STEPS:,} steps, "
    f"AdamW at {g.optimizer.learning_rate:g}, warm-up {g.optimizer.warmup_steps} steps"
)
print(
    f"LSTM: {m.model.num_layers} layers of {m.model.hidden_size}, the same windows and batch "
    f"({m.data.batch_size} x {m.data.block_size} = {m.data.batch_size * m.data.block_size} characters per step), "
    f"Adam at {m.optimizer.learning_rate:g}"
)
print(
    f"corpus: {corpus['train_characters']:,} training characters (the first 90 %), validation: "
    f"{corpus['val_windows']:,} windows of {corpus['window']} = {val_characters:,} characters "
    f"(the last 10 %), {(corpus['train_characters'] + val_characters) / 1e6:.1f} million in all"
)
print(
    "scored on " + ("every validation window" if EVAL_WINDOWS == 0 else f"its first {EVAL_WINDOWS} windows (fast mode)")
)

# %%
gpt = jm.train(gpt_config, WORKDIRS / "gpt")
lstm = jm.train(lstm_config, WORKDIRS / "lstm")


def parameters(run: jm.Run) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(run.variables["params"]))


tokenizer = gpt.tokenizer
characters = sum(len(tokenizer.id_to_piece(i)) == 1 for i in range(tokenizer.vocab_size))  # the rest: <pad>, <unk>, ...
print(f"vocabulary: {tokenizer.vocab_size} ids = {characters} characters of the training text "
      f"+ {tokenizer.vocab_size - characters} special tokens; a model that knows nothing scores "
      f"ln({tokenizer.vocab_size}) = {np.log(tokenizer.vocab_size):.2f} nats")  # fmt: skip
assert tokenizer.vocab_size == corpus["vocab_size"], "the benchmark read another vocabulary"

# %% [markdown]
# ## Validation loss, in nats per character
#
# The dotted line and its band: nanoGPT's recipe in PyTorch, mean and ± one sample standard deviation over its
# seeds (ddof=1), from `docs/nanogpt_reference.json`.

# %%
torch_ref, jax_ref = REFERENCE["nanogpt_torch"], REFERENCE["jaxmodels"]
fig, ax = plt.subplots(figsize=(8, 3.8))
for run, label in ((gpt, "GPT"), (lstm, "LSTM")):
    train_rows = [row for row in run.history if "train/loss" in row]
    val_rows = [row for row in run.history if "val/loss" in row]
    line = ax.plot([r["step"] for r in train_rows], [r["train/loss"] for r in train_rows], alpha=0.4)[0]
    ax.plot([r["step"] for r in val_rows], [r["val/loss"] for r in val_rows], "o-", color=line.get_color(),
            label=f"{label}, {parameters(run):,} parameters: validation")  # fmt: skip
ax.axhline(
    torch_ref["mean"],
    color="k",
    ls=":",
    label=f"nanoGPT's recipe in PyTorch, same data and score ({len(torch_ref['runs'])} seeds)",
)
ax.axhspan(
    torch_ref["mean"] - torch_ref["std_ddof1"], torch_ref["mean"] + torch_ref["std_ddof1"], color="k", alpha=0.15
)
ax.set_xlabel("step")
ax.set_ylabel("loss (nats / character)")
ax.set_ylim(1.2, 3.5)
ax.legend(fontsize=8)
plt.show()

on_sample = jm.load(gpt.workdir, overrides=[f"data.eval_windows={SAMPLE_WINDOWS}"])
sample_score = jm.evaluate(on_sample)["val/loss"]  # the same GPT, scored on a sample of the validation text

print(f"{'':30}{'val loss':>9}{'bits/char':>11}{'accuracy':>10}")
for run, label in ((gpt, "GPT"), (lstm, "LSTM")):
    final = run.final
    print(
        f"{'jaxmodels ' + label + ', this run':30}{final['val/loss']:9.3f}{final['val/bits_per_token']:11.3f}"
        f"{100 * final['val/accuracy']:9.1f}%"
    )
print(f"the GPT scored on the first {SAMPLE_WINDOWS} validation windows only: {sample_score:.3f}")


def seeds_row(name: str, record: dict) -> str:
    runs = " | ".join(f"{run['val_loss']:.4f}" for run in record["runs"])
    return f"| {name} | {runs} | {record['mean']:.4f} ± {record['std_ddof1']:.4f} |"


seeds = [run["seed"] for run in torch_ref["runs"]]
assert seeds == [run["seed"] for run in jax_ref["runs"]]
gap = jax_ref["mean"] - torch_ref["mean"]
larger_std = max(torch_ref["std_ddof1"], jax_ref["std_ddof1"])
standard_error = np.sqrt(torch_ref["std_ddof1"] ** 2 / len(seeds) + jax_ref["std_ddof1"] ** 2 / len(seeds))
separated = max(jax_ref["val_loss"]) < min(torch_ref["val_loss"]) or min(jax_ref["val_loss"]) > max(
    torch_ref["val_loss"]
)
display(Markdown(
    f"**The reference, measured** ({REFERENCE['machine']['date']}, {REFERENCE['machine']['cpu']}, "
    f"{REFERENCE['machine']['cores']} cores; validation loss in nats per character after {REFERENCE['iters']:,} "
    f"steps, whole validation text; ± is the sample standard deviation over the {len(seeds)} seeds, ddof=1):\n\n"
    f"| | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |\n|---|" + "---|" * (len(seeds) + 1) + "\n"
    + seeds_row(f"nanoGPT's recipe, PyTorch {torch_ref['runs'][0]['torch']}", torch_ref) + "\n"
    + seeds_row(f"jaxmodels' experiment, jax {REFERENCE['machine']['versions']['jax']}", jax_ref) + "\n\n"
    f"jaxmodels' GPT minus PyTorch's: {gap:+.4f} nats, {abs(gap) / larger_std:.1f} times the larger seed spread "
    f"(PyTorch's {larger_std:.4f}) and {abs(gap) / standard_error:.1f} standard errors of the difference of the means; "
    + ("no seed of one overlaps the range of the other." if separated else "the seeds' ranges overlap.")
    + f" This notebook's GPT, seed {gpt.config.seed}, reads {gpt.final['val/loss']:.4f}; the benchmark's seed "
    f"{gpt.config.seed}, {jax_ref['val_loss'][seeds.index(gpt.config.seed)]:.4f}."
))  # fmt: skip

# %% [markdown]
# ## Samples
#
# Each model continues the same prompt; the sampling settings are printed first.

# %%
TEMPERATURE, TOP_K, SAMPLE_SEED, LENGTH = 0.8, 40, 0, 300
print(f"temperature {TEMPERATURE}, the {TOP_K} most likely characters, seed {SAMPLE_SEED}, {LENGTH} characters")
for run, label in ((gpt, "GPT"), (lstm, "LSTM")):
    print(f"--- {label} ---")
    print(jm.sample(run, "ROMEO:\n", LENGTH, temperature=TEMPERATURE, top_k=TOP_K, seed=SAMPLE_SEED))

# %% [markdown]
# ## Where the GPT looks
#
# Every attention layer keeps its weights as a Flax intermediate (`attention_weights`), so reading them
# changes nothing in the model: apply it with `mutable=["intermediates"]`. Below, each head of the last layer
# for a line of verse: row *i* is the distribution over the characters that position *i* reads when it
# predicts the next one (causal: nothing to the right of the diagonal). Spaces are shown as `␣`; the colour
# scale is the square root of the weight, so that small weights show.

# %%
prompt = "To be, or not to be, that is the question:"
tokens = np.asarray(tokenizer.encode(prompt))[None]
_, state = gpt.model.apply(gpt.variables, tokens, train=False, mutable=["intermediates"])
last_layer = f"block_{gpt.config.model.num_layers - 1}"
maps = np.asarray(state["intermediates"][last_layer]["attention"]["attention_weights"][0][0])
labels = [tokenizer.decode(np.array([t])).replace(" ", "␣") for t in tokens[0]]

columns = 2
rows = -(-maps.shape[0] // columns)
fig, axes = plt.subplots(rows, columns, figsize=(14, 14 * rows / columns), squeeze=False, layout="constrained")
for head, ax in enumerate(axes.flat):
    image = ax.imshow(maps[head], cmap="magma", norm=PowerNorm(0.5, vmin=0, vmax=1))
    ax.set_title(f"{last_layer}, head {head}", fontsize=12)
    ax.set_xticks(range(len(labels)), labels, fontsize=11, family="monospace")
    ax.set_yticks(range(len(labels)), labels, fontsize=11, family="monospace")
    ax.tick_params(length=0, pad=1)
    if head // columns == rows - 1:
        ax.set_xlabel("key: the character read", fontsize=12)
    if head % columns == 0:
        ax.set_ylabel("query: the character predicting the next", fontsize=12)
colorbar = fig.colorbar(image, ax=axes, shrink=0.5)
colorbar.set_label("attention weight (square-root colour scale)", fontsize=12)
plt.show()

# %% [markdown]
# ## What we learned

# %%
gpt_loss, lstm_loss = gpt.final["val/loss"], lstm.final["val/loss"]
gpt_curve = {r["step"]: r["val/loss"] for r in gpt.history if "val/loss" in r}
lstm_curve = {r["step"]: r["val/loss"] for r in lstm.history if "val/loss" in r}
lstm_ahead = all(lstm_curve[step] < gpt_curve[step] for step in gpt_curve)
sample_shift = sample_score - gpt_loss
gpt_pulls_ahead = [step for step in gpt_curve if gpt_curve[step] < lstm_curve[step]]
if abs(gap) > 2 * standard_error:
    verdict = (f"close, but not within seed noise: jaxmodels' GPT ends {abs(gap):.4f} nats "
               f"{'lower' if gap < 0 else 'higher'} ({100 * abs(gap) / torch_ref['mean']:.1f} %), "
               f"{abs(gap) / larger_std:.1f} times the larger seed spread. The two differ by design in biases and the "
               "GELU (jaxmodels' GPT has biases and the tanh approximation; nanoGPT neither), "
               "the first place to look")  # fmt: skip
else:
    verdict = (f"within seed noise: jaxmodels' GPT is {gap:+.4f} nats from the PyTorch mean, "
               f"{abs(gap) / standard_error:.1f} standard errors of the difference")  # fmt: skip
why = (
    f" A {gpt.config.data.block_size}-character context is short enough for a recurrent state to carry; the "
    f"Transformer's advantage (parallel training over long contexts, and scaling) does not show in {STEPS:,} CPU steps."
    if lstm_loss < gpt_loss
    else ""
)
scored = "the whole text" if EVAL_WINDOWS == 0 else f"its first {EVAL_WINDOWS} windows"
display(Markdown(f"""
- **The GPT against nanoGPT's recipe.** Over seeds {', '.join(map(str, seeds))}, the same recipe on the same text and
  score gives {jax_ref['mean']:.4f} ± {jax_ref['std_ddof1']:.4f} here and
  {torch_ref['mean']:.4f} ± {torch_ref['std_ddof1']:.4f} in PyTorch (sample std, ddof=1): {verdict}.
- **Score the whole text.** On a sample instead (the experiment's default `data.eval_windows={SAMPLE_WINDOWS}`:
  the first {SAMPLE_WINDOWS * gpt.config.data.block_size:,} validation characters, the opening of one play), the
  same GPT reads {sample_score:.3f} against {gpt_loss:.3f} on {scored}: {sample_shift:+.3f} nats,
  {abs(sample_shift) / jax_ref['std_ddof1']:.0f} times its seed spread. Numbers for a paper use
  `data.eval_windows=0`, as here.
- **At this scale the LSTM {'wins' if lstm_loss < gpt_loss else 'loses'}**: with the same
  {lstm.config.data.batch_size * lstm.config.data.block_size} characters per step and a similar parameter count
  ({parameters(lstm):,} against {parameters(gpt):,}), it reaches {lstm_loss:.3f} against the GPT's {gpt_loss:.3f}
  (one seed each here; {abs(lstm_loss - gpt_loss) / jax_ref['std_ddof1']:.0f} times the GPT's seed spread), and it is
  {'ahead at every evaluation' if lstm_ahead else 'behind at steps ' + ', '.join(map(str, gpt_pulls_ahead))}.{why}
"""))  # fmt: skip

# %% [markdown]
# The quick mode's checks (`JAXMODELS_FAST=1`):

# %%
if FAST:
    for run in (gpt, lstm):
        curve = [row["val/loss"] for row in run.history if "val/loss" in row]
        assert curve[-1] < curve[0] and curve[-1] < 3.7, curve  # from ln(89) = 4.49 at random
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-5)
    assert np.abs(np.triu(maps, k=1)).max() == 0.0
    assert abs(sample_score - gpt.final["val/loss"]) < 0.5, (sample_score, gpt.final)

# %%
print(f"this notebook ran in {(time.perf_counter() - STARTED) / 60:.0f} min")
