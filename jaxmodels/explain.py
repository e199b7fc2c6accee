"""Looking inside a trained model: which inputs a prediction rests on, and where attention goes.

- `saliency`: gradient x input of the explained class's logit (Simonyan et al. 2014; Shrikumar et al. 2016).
- `integrated_gradients`: (x - x') times the gradient averaged along the straight path from a baseline x'
  (zeros by default) to x (Sundararajan et al. 2017, eq. 1, as a Riemann sum over `steps` points). Its
  attributions add up to F(x) - F(x') (the paper's completeness axiom), up to the sum's error.
- `attention_maps`: the attention weights every Transformer layer sows as Flax 'intermediates' (no change of
  the model's outputs), one (heads, queries, keys) array per layer.

`plot` draws one of them for one example; `jaxmodels explain` writes it to a PNG.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jaxmodels.errors import ConfigError
from jaxmodels.files import make_writable_dir

if TYPE_CHECKING:
    from jaxmodels.run import Run

METHODS = ("saliency", "ig", "attention")


def _class_logit(run: Run, label: int | None) -> tuple[Callable[[jax.Array], jax.Array], Callable[[jax.Array], int]]:
    """F(x), the logit of the explained class for one example, and how that class is chosen."""

    def logits(x: jax.Array) -> jax.Array:
        return run.model.apply(run.variables, x[None], train=False)[0]

    def chosen(x: jax.Array) -> int:
        return int(jnp.argmax(logits(x))) if label is None else label

    return logits, chosen


def _continuous(run: Run, inputs: Any) -> jax.Array:
    x = jnp.asarray(inputs)
    if not jnp.issubdtype(x.dtype, jnp.floating) or run.config.task.name != "classify":
        raise ConfigError(
            f"saliency and integrated gradients explain a classifier of continuous inputs (signals, images); "
            f"this run is a {run.config.task.name!r} task on {x.dtype} inputs: use --method attention for a "
            "Transformer's token inputs"
        )
    return x


def saliency(run: Run, inputs: Any, label: int | None = None) -> np.ndarray:
    """Gradient x input of class `label`'s logit (default: the predicted class) for one example `inputs`."""
    x = _continuous(run, inputs)
    logits, chosen = _class_logit(run, label)
    target = chosen(x)
    gradient = jax.jit(jax.grad(lambda point: logits(point)[target]))(x)
    return np.asarray(gradient * x)


def integrated_gradients(
    run: Run, inputs: Any, label: int | None = None, *, baseline: Any = None, steps: int = 64
) -> np.ndarray:
    """Integrated gradients of class `label`'s logit (default: the predicted class) for one example `inputs`,
    from `baseline` (default: zeros), with a `steps`-point midpoint Riemann sum of the path integral."""
    x = _continuous(run, inputs)
    reference = jnp.zeros_like(x) if baseline is None else jnp.asarray(baseline, x.dtype)
    logits, chosen = _class_logit(run, label)
    target = chosen(x)
    alphas = (jnp.arange(steps, dtype=x.dtype) + 0.5) / steps
    path = reference[None] + alphas.reshape((-1,) + (1,) * x.ndim) * (x - reference)[None]
    gradients = jax.jit(jax.vmap(jax.grad(lambda point: logits(point)[target])))(path)
    return np.asarray((x - reference) * gradients.mean(axis=0))


def attention_maps(run: Run, inputs: Any) -> dict[str, np.ndarray]:
    """{layer path: attention weights (heads, queries, keys)} of one example, for models that sow them."""
    x = jnp.asarray(inputs)
    _, state = run.model.apply(run.variables, x[None], train=False, mutable=["intermediates"])
    sown = traverse_util.flatten_dict(state.get("intermediates", {}), sep="/")
    maps = {path.removesuffix("/attention_weights"): np.asarray(value[0][0]) for path, value in sown.items()
            if path.endswith("attention_weights")}  # fmt: skip
    if not maps:
        raise ConfigError(
            f"model {run.config.model.name!r} has no attention to show; use --method saliency or ig for a classifier"
        )
    return maps


def explain(run: Run, index: int, method: str) -> tuple[np.ndarray, Any]:
    """(example `index` of the run's eval split, what `method` gives for it)."""
    if method not in METHODS:
        raise ConfigError(f"unknown explanation method {method!r}; choose {', '.join(METHODS)}")
    examples = run.eval_examples["inputs"]
    if not 0 <= index < len(examples):
        raise ConfigError(f"--index {index} is outside the eval split, which has {len(examples)} examples")
    inputs = examples[index]
    if method == "attention":
        return inputs, attention_maps(run, inputs)
    return inputs, (saliency if method == "saliency" else integrated_gradients)(run, inputs)


def plot(inputs: np.ndarray, explanation: Any, method: str, out: str | Path, title: str = "") -> Path:
    """Writes a PNG of `explanation` for `inputs`: attributions over a signal or an image, or attention maps."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plotting needs matplotlib: pip install -e '.[tools]'") from None
    out = Path(out)
    if method == "attention":
        layers = list(explanation.items())
        heads = max(maps.shape[0] for _, maps in layers)
        figure, axes = plt.subplots(len(layers), heads, figsize=(2.2 * heads, 2.2 * len(layers)), squeeze=False)
        for row, (layer, maps) in enumerate(layers):
            for head in range(heads):
                axes[row][head].imshow(maps[head], cmap="viridis", vmin=0.0)
                axes[row][head].set_title(f"{layer} head {head}", fontsize=7)
                axes[row][head].axis("off")
    else:
        attribution = np.asarray(explanation)
        figure, axes = plt.subplots(1, 2, figsize=(9, 3))
        if attribution.ndim == 1 or (attribution.ndim == 2 and attribution.shape[-1] == 1):
            signal, scores = np.ravel(inputs), np.ravel(attribution)
            axes[0].plot(signal, color="black")
            axes[0].set_title("input")
            axes[1].bar(np.arange(len(scores)), scores, color=np.where(scores >= 0, "tab:red", "tab:blue"))
            axes[1].set_title(method)
        else:  # an image: channels summed
            axes[0].imshow(np.squeeze(inputs), cmap="gray")
            axes[0].set_title("input")
            image = attribution.sum(-1)
            limit = float(np.abs(image).max()) or 1.0
            axes[1].imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
            axes[1].set_title(method)
            for axis in axes:
                axis.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    make_writable_dir(out.parent, "output directory", "--out")
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
