"""Runs the multi-device checks of test_parallel.py in a fresh process with fake CPU devices.

    python -m tests.parallel_worker strategies DATA_DIR OUT.json       (8 devices: every strategy vs one device)
    python -m tests.parallel_worker process DATA_DIR OUT.json PORT ID  (one of two jax.distributed processes)
    python -m tests.parallel_worker lonely DATA_DIR OUT.json PORT      (process 0 of 2 whose peer never starts)

XLA_FLAGS must set the device count before JAX is imported, so the checks cannot run inside the pytest process
(other test modules have imported JAX already). Results go to OUT.json as plain lists for the tests to judge.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmodels import config as config_lib
from jaxmodels import parallel
from jaxmodels.checkpoint import Checkpointer, abstract_like
from jaxmodels.errors import ConfigError
from jaxmodels.loop import build_experiment, evaluate, train_and_evaluate
from jaxmodels.models import get_model
from jaxmodels.models.cnn import batch_norm
from jaxmodels.models.registry import register
from jaxmodels.train import create_train_state, train_step

STEPS = 20


@register("tiny_bn_cnn")
class TinyBNCNN(nn.Module):
    """Conv1d -> BatchNorm -> ReLU -> Dense on MNIST-1D: the smallest model whose BatchNorm must sync devices."""

    channels: int = 8
    num_classes: int = 10
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        h = nn.Conv(self.channels, (5,), strides=(2,), use_bias=False)(x[..., None])  # BN brings the bias
        h = nn.relu(batch_norm(train, self.bn_axis_name)(h))
        return nn.Dense(self.num_classes)(h.reshape(h.shape[0], -1))


class CausalLM:
    """Next-token cross-entropy, for the GPT checks (the library's LM task lives elsewhere)."""

    def model_inputs(self, batch: dict) -> tuple[tuple[Any, ...], dict]:
        return (batch["tokens"][:, :-1],), {}

    def loss_and_metrics(self, logits: jax.Array, batch: dict) -> tuple[jax.Array, dict]:
        losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), batch["tokens"][:, 1:])
        total, count = losses.sum(), jnp.asarray(losses.size, jnp.float32)
        return total / count, {"loss": total, "count": count}


class Classify:
    def model_inputs(self, batch: dict) -> tuple[tuple[Any, ...], dict]:
        return (batch["inputs"],), {}

    def loss_and_metrics(self, logits: jax.Array, batch: dict) -> tuple[jax.Array, dict]:
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
        total, count = losses.sum(), jnp.asarray(losses.size, jnp.float32)
        return total / count, {"loss": total, "count": count}


def make_config(data_dir: str, *overrides: str) -> Any:
    config = config_lib.lock(config_lib.base_config())
    base = [
        f"--config.data.data_dir={data_dir}",
        "--config.data.batch_size=64",
        "--config.data.eval_batch_size=200",
        "--config.data.loader=resident",
        f"--config.train.num_steps={STEPS}",
        f"--config.train.eval_every={STEPS}",
        f"--config.train.log_every={STEPS}",
        f"--config.train.checkpoint_every={STEPS}",
        "--config.train.progress_bar=False",
    ]
    if not any(text.startswith("--config.model.name") for text in overrides):
        base += ["--config.model.name=mlp", "--config.model.hidden_sizes=(64, 64)"]
    return config_lib.apply_overrides(config, [*base, *overrides])


def tolist(tree: Any) -> list:
    """Every leaf as nested lists (a replicated array of a multi-process run: this process's copy)."""

    def host(x: Any) -> np.ndarray:
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(x.addressable_data(0))
        return np.asarray(x)

    return [host(x).tolist() for x in jax.tree.leaves(tree)]


def loop_run(config: Any, with_eval: bool = True) -> dict:
    """STEPS steps of the real loop step (resident or Grain feed, strategy from config); losses read each step."""
    experiment = build_experiment(config)
    strategy, state, losses = experiment.strategy, experiment.initial_state, []
    for step in range(STEPS):
        sums = strategy.put_replicated(experiment.zero_metrics)
        state, sums = experiment.loop_step(state, sums, *experiment.feed.args_for_step(step))
        metrics = strategy.to_host(sums)
        losses.append(float(metrics["loss"] / metrics["count"]))
    canonical = strategy.canonical_state(state)
    return {
        "losses": losses,
        "params": tolist(canonical.params),
        "model_state": tolist(canonical.model_state),
        "eval": evaluate(experiment, state) if with_eval else None,
    }


@functools.cache
def initial_state(model: nn.Module, task: Any, example: tuple) -> Any:
    """One initialisation per model on one device (init compiles slowly on CPU), then placed per strategy."""
    batch = {key: np.zeros(shape, dtype) for key, shape, dtype in example}
    return jax.jit(functools.partial(create_train_state, model, task, TX))(batch, jax.random.key(0))


TX = optax.adam(3e-3)


def step_run(config: Any, model: nn.Module, task: Any, batches: list[dict]) -> dict:
    """STEPS steps of `train_step` compiled by the config's strategy, batches placed as a streamed feed's are."""
    strategy = parallel.make_strategy(config)
    example = tuple((key, value.shape, value.dtype.str) for key, value in batches[0].items())
    state = strategy.place_state(initial_state(model, task, example))
    model = model.clone(**strategy.model_overrides(type(model)))
    tx = TX
    step = functools.partial(train_step, model=model, task=task, tx=tx, **strategy.step_options())

    def loop_step(state: Any, sums: Any, batch: dict) -> tuple[Any, Any]:
        state, metrics = step(state, strategy.constrain_batch(batch), jax.random.key(1))
        return state, jax.tree.map(jnp.add, sums, metrics)

    compiled = strategy.compile_step(loop_step, strategy.state_shardings(state))
    zeros = {"loss": np.zeros((), np.float32), "count": np.zeros((), np.float32)}
    losses, shardings = [], {}
    for i in range(STEPS):
        sums = strategy.put_replicated(zeros)
        state, sums = compiled(state, sums, strategy.place_batch(batches[i % len(batches)]))
        metrics = strategy.to_host(sums)
        losses.append(float(metrics["loss"] / metrics["count"]))
    if isinstance(strategy, parallel.MeshStrategy):
        flat = jax.tree_util.tree_flatten_with_path(state.params)[0]
        shardings = {jax.tree_util.keystr(path): str(leaf.sharding.spec) for path, leaf in flat}
    return {"losses": losses, "params": tolist(strategy.canonical_state(state).params), "specs": shardings}


STRATEGIES = {
    "single": ["--config.parallel.num_devices=1"],
    "pmap": ["--config.parallel.strategy=pmap"],
    "dp": ["--config.parallel.strategy=dp"],
    "fsdp": ["--config.parallel.strategy=fsdp"],
}


def strategies(data_dir: str) -> dict:
    results: dict[str, Any] = {"timings": {}}

    def timed(name: str, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args)
        results["timings"][name] = round(time.perf_counter() - start, 2)
        print(name, results["timings"][name], file=sys.stderr, flush=True)
        return out

    families = {"mlp": ([], STRATEGIES), "bn": (["--config.model.name=tiny_bn_cnn"], ("single", "pmap"))}
    for family, (overrides, names) in families.items():
        for name in names:
            config = make_config(data_dir, *overrides, *STRATEGIES[name])
            results[f"{family}/{name}"] = timed(f"{family}/{name}", loop_run, config, name in ("single", "pmap"))
    # In stored order, the Grain feed reads the same batches as the resident one (and as two processes do).
    ordered = ["--config.data.shuffle=False"]
    results["mlp/single_ordered"] = timed(
        "mlp/single_ordered", loop_run, make_config(data_dir, *ordered, *STRATEGIES["single"])
    )
    results["mlp/dp_grain"] = timed(
        "mlp/dp_grain", loop_run, make_config(data_dir, *ordered, "--config.data.loader=grain"), False
    )

    rng = np.random.default_rng(0)
    lstm = get_model("rnn_classifier", cell="lstm", hidden_size=16, num_classes=4)
    sequences = [
        {"inputs": rng.normal(size=(64, 12, 3)).astype(np.float32), "label": rng.integers(0, 4, 64).astype(np.int32)}
        for _ in range(4)
    ]
    for name in ("single", "pmap", "fsdp"):
        config = make_config(data_dir, *STRATEGIES[name])
        results[f"lstm/{name}"] = timed(f"lstm/{name}", step_run, config, lstm, Classify(), sequences)

    gpt = get_model("gpt", vocab_size=32, block_size=16, num_layers=2, num_heads=4, embed_dim=32, dropout=0.0)
    texts = [{"tokens": rng.integers(0, 32, (32, 16)).astype(np.int32)} for _ in range(4)]
    gpt_strategies = {
        **{name: STRATEGIES[name] for name in ("single", "pmap", "fsdp")},
        "tp": ["--config.parallel.strategy=tp", "--config.parallel.mesh.model=2"],
    }
    for name, strategy in gpt_strategies.items():
        config = make_config(data_dir, "--config.data.batch_size=32", *strategy)
        results[f"gpt/{name}"] = timed(f"gpt/{name}", step_run, config, gpt, CausalLM(), texts)

    reports = {}
    for name, overrides in {
        "dp64": ["--config.data.batch_size=64"],
        "dp256": ["--config.data.batch_size=256"],
        "fsdp64": ["--config.data.batch_size=64", "--config.parallel.strategy=fsdp"],
    }.items():
        reports[name] = timed(f"compile/{name}", parallel.compile_train_step, make_config(data_dir, *overrides))
    results["compile"] = reports

    errors = {}
    for name, overrides in {
        "indivisible_batch": ["--config.data.batch_size=60"],
        "mesh": ["--config.parallel.mesh.data=3"],
        "tp_heads": ["--config.parallel.strategy=tp", "--config.parallel.mesh.model=8", "--config.data.batch_size=32"],
    }.items():
        try:
            config = make_config(data_dir, *overrides)
            if name == "tp_heads":
                step_run(config, gpt, CausalLM(), texts)
            else:
                parallel.make_strategy(config)
            errors[name] = None
        except ConfigError as error:
            errors[name] = str(error)
    results["errors"] = errors
    return results


def process(data_dir: str, port: str, process_id: str, workdir: str) -> dict:
    config = make_config(
        data_dir,
        "--config.data.shuffle=False",
        f"--config.parallel.coordinator_address=127.0.0.1:{port}",
        "--config.parallel.num_processes=2",
        f"--config.parallel.process_id={process_id}",
        "--config.parallel.initialization_timeout=60",
        "--config.train.log_every=1",
    )
    state, final = train_and_evaluate(config, workdir)  # the checkpoint is written collectively
    checkpointer = Checkpointer(Path(workdir), save_every=STEPS, keep=1)
    restored = checkpointer.restore(STEPS, abstract_like(state), None)  # and restored collectively
    checkpointer.close()
    log = [json.loads(line) for line in (Path(workdir) / "metrics.jsonl").read_text().splitlines()]
    return {
        "losses": [record["train/loss"] for record in log],
        "params": tolist(state.params),
        "eval": final,
        "restored_equal": all(np.array_equal(a, b) for a, b in zip(tolist(state), tolist(restored), strict=True)),
        "process_count": jax.process_count(),
        "devices": jax.device_count(),
        "local_devices": jax.local_device_count(),
    }


def lonely(data_dir: str, port: str) -> dict:
    config = make_config(
        data_dir,
        f"--config.parallel.coordinator_address=127.0.0.1:{port}",
        "--config.parallel.num_processes=2",
        "--config.parallel.process_id=0",
        "--config.parallel.initialization_timeout=3",
    )
    build_experiment(config)
    return {"unexpected": "initialised without the peer"}


def main() -> None:
    mode, data_dir, out, *rest = sys.argv[1:]
    if mode == "strategies":
        result = strategies(data_dir)
    elif mode == "process":
        result = process(data_dir, *rest)
    else:
        result = lonely(data_dir, *rest)
    with open(out, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
