"""Steady-state train-step rate: jaxmodels' loop against the minimal JAX loop, side by side.

The reference is the fastest plain-JAX loop we know on CPU: MNIST-1D on the device, one
permutation per epoch, the batch gathered inside one jitted, state-donating Adam step (about
1,680 steps/s on a 2-core CPU machine; docs/results.md, "Reference speeds on this machine class",
compares it with Keras, PyTorch, `lax.scan` and a Grain iterator). Both loops run the paper's CNN
(batch 100) in the same process, interleaved over several rounds, and we report the median rate
of each and their ratio.

    python benchmarks/mnist1d_speed.py [--steps 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import jax
import jax.numpy as jnp
import optax

from jaxmodels import config as config_lib
from jaxmodels.experiment import build_experiment
from jaxmodels.models import get_model


def minimal_jax_loop(arrays: dict, num_steps: int, batch_size: int = 100) -> float:
    """Plain JAX: returns steps/s of `num_steps` steps after one compiling warm-up epoch."""
    model = get_model("mnist1d_cnn")
    tx = optax.adam(1e-2)
    x, y = jnp.asarray(arrays["inputs"]), jnp.asarray(arrays["label"])
    params = model.init(jax.random.key(0), x[:1])["params"]
    opt_state = tx.init(params)
    steps_per_epoch = x.shape[0] // batch_size

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, perm, i):
        idx = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)

        def loss_fn(p):
            logits = model.apply({"params": p}, x[idx])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    permute = jax.jit(lambda k: jax.random.permutation(k, x.shape[0]))
    key = jax.random.key(1)

    def run(n):
        nonlocal params, opt_state
        perm = None
        for s in range(n):
            if s % steps_per_epoch == 0:
                perm = permute(jax.random.fold_in(key, s // steps_per_epoch))
            params, opt_state, loss = step(params, opt_state, perm, s % steps_per_epoch)
        loss.block_until_ready()

    run(steps_per_epoch)
    start = time.perf_counter()
    run(num_steps)
    return num_steps / (time.perf_counter() - start)


def jaxmodels_loop(experiment, num_steps: int) -> float:
    """jaxmodels' compiled loop step, driven as `loop._run` drives it (feed args, metric sums)."""
    state = jax.tree.map(jnp.copy, experiment.initial_state)  # the loop step donates its input
    sums = experiment.strategy.put_replicated(experiment.zero_metrics)
    feed = experiment.feed
    for s in range(40):  # compile + warm up
        state, sums = experiment.loop_step(state, sums, *feed.args_for_step(s))
    jax.block_until_ready(state)
    start = time.perf_counter()
    for s in range(40, 40 + num_steps):
        state, sums = experiment.loop_step(state, sums, *feed.args_for_step(s))
    jax.block_until_ready(sums)
    return num_steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data_dir", default="")
    args = parser.parse_args()
    config = config_lib.load_config_file("experiments/mnist1d_cnn.py")
    config.data.data_dir = args.data_dir
    experiment = build_experiment(config)
    arrays = {"inputs": experiment.feed._arrays["inputs"], "label": experiment.feed._arrays["label"]}
    rates = {"minimal JAX": [], "jaxmodels": []}
    for _ in range(args.rounds):
        rates["minimal JAX"].append(minimal_jax_loop(arrays, args.steps))
        rates["jaxmodels"].append(jaxmodels_loop(experiment, args.steps))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        print(f"{name:12s} median {medians[name]:7.0f} steps/s   rounds: {', '.join(f'{v:.0f}' for v in values)}")
    print(f"ratio jaxmodels / minimal JAX: {medians['jaxmodels'] / medians['minimal JAX']:.3f}")


if __name__ == "__main__":
    main()
