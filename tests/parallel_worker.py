"""Runs the multi-device checks of test_parallel.py in a fresh process with fake CPU devices.

    python -m tests.parallel_worker strategies DATA_DIR OUT.json       (8 devices: every strategy vs one device)
    python -m tests.parallel_worker restores DATA_DIR OUT.json         (8 devices: checkpoints across strategies)
    python -m tests.parallel_worker process DATA_DIR OUT.json PORT ID WORKDIR STRATEGY  (one of two processes)
    python -m tests.parallel_worker lonely DATA_DIR OUT.json PORT      (process 0 of 2 whose peer never starts)

XLA_FLAGS must set the device count before JAX is imported, so the checks cannot run inside the pytest process
(other test modules have imported JAX already). Results go to OUT.json as plain lists for the tests to judge.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from jaxmodels import config as config_lib
from jaxmodels import parallel
from jaxmodels.checkpoint import Checkpointer, abstract_like
from jaxmodels.compile_report import compile_report
from jaxmodels.errors import ConfigError
from jaxmodels.experiment import build_experiment
from jaxmodels.models.cnn import batch_norm
from jaxmodels.models.registry import register
from jaxmodels.run import evaluate, load, train

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
        # SGD with momentum, not Adam, in every run: Adam divides the gradient by its own size, so a gradient
        # reduced wrongly across devices (summed instead of averaged: 8x) would move the parameters by only ~1e-4
        # in 20 steps; SGD's step is proportional to the gradient. In attention, Adam would also turn the float
        # noise of weights whose true gradient is 0 (the key bias, and key weights along inputs shared by all
        # positions shift every score of a query equally) into learning-rate-sized steps that differ with
        # reduction order.
        "--config.optimizer.name=sgd",
        "--config.optimizer.momentum=0.9",
        "--config.optimizer.learning_rate=0.1",
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


def named(params: Any) -> dict[str, list]:
    """Parameters by path, e.g. "['block_0']['mlp']['fc']['kernel']", as nested lists."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(path): tolist(leaf)[0] for path, leaf in flat}


def loop_run(config: Any) -> dict:
    """STEPS steps of the real loop step (feed, task, strategy from config); losses read each step, then eval."""
    experiment = build_experiment(config)
    strategy, state, losses = experiment.strategy, experiment.initial_state, []
    for step in range(STEPS):
        sums = strategy.put_replicated(experiment.zero_metrics)
        state, sums = experiment.loop_step(state, sums, *experiment.feed.args_for_step(step))
        metrics = strategy.to_host(sums)
        losses.append(float(metrics["loss"] / metrics["count"]))
    canonical = strategy.canonical_state(state)
    specs = {}
    if isinstance(strategy, parallel.MeshStrategy):
        flat = jax.tree_util.tree_flatten_with_path(state.params)[0]
        specs = {jax.tree_util.keystr(path): str(leaf.sharding.spec) for path, leaf in flat}
    return {
        "losses": losses,
        "params": named(canonical.params),
        "model_state": tolist(canonical.model_state),
        "eval": experiment.evaluate(state),
        "specs": specs,
    }


STRATEGIES = {
    "single": ["--config.parallel.num_devices=1"],
    "pmap": ["--config.parallel.strategy=pmap"],
    "dp": ["--config.parallel.strategy=dp"],
    "fsdp": ["--config.parallel.strategy=fsdp"],
    "tp": ["--config.parallel.strategy=tp", "--config.parallel.mesh.model=2"],  # a (data 4, model 2) mesh
}
GPT_LM = [  # the library's own LM task on Shakespeare characters: a 2-layer, 4-head GPT
    "--config.task.name=lm",
    "--config.data.name=shakespeare",
    "--config.data.tokenizer=char",
    "--config.data.block_size=16",
    "--config.data.batch_size=32",
    "--config.data.eval_batch_size=64",
    "--config.data.eval_windows=64",
    "--config.model.name=gpt",
    "--config.model.block_size=16",
    "--config.model.num_layers=2",
    "--config.model.num_heads=4",
    "--config.model.embed_dim=32",
    "--config.model.dropout=0.0",
]
FAMILIES = {  # family -> (overrides, strategies that apply); tp splits only the Transformer
    "mlp": ([], ("single", "pmap", "dp", "fsdp")),
    "bn": (["--config.model.name=tiny_bn_cnn"], ("single", "pmap", "dp", "fsdp")),
    "lstm": (
        ["--config.model.name=rnn_classifier", "--config.model.cell=lstm", "--config.model.hidden_size=16"],
        ("single", "pmap", "dp", "fsdp"),
    ),
    "gpt": (GPT_LM, ("single", "pmap", "dp", "fsdp", "tp")),
}


def timed(results: dict, name: str, fn: Any, *args: Any) -> Any:
    """fn(*args), its seconds recorded in results['timings'] and printed (the suite's slow part, made visible)."""
    start = time.perf_counter()
    out = fn(*args)
    results.setdefault("timings", {})[name] = round(time.perf_counter() - start, 2)
    print(name, results["timings"][name], file=sys.stderr, flush=True)
    return out


def rows_per_device(config: Any) -> dict[str, dict[str, list]]:
    """Which rows of a 64-row batch each device holds, by device id, once the strategy has placed it on the
    devices ('placed': a streamed batch) and once the step has constrained it ('constrained': a batch gathered in
    the step from resident data; pmap has no such constraint). Row i's label is i and its inputs are all i."""
    strategy = parallel.make_strategy(config)
    batch = {"inputs": np.repeat(np.arange(64, dtype=np.float32)[:, None], 40, axis=1), "label": np.arange(64)}
    placements = {"placed": strategy.place_batch(batch)}
    if isinstance(strategy, parallel.MeshStrategy):
        placements["constrained"] = jax.jit(strategy.constrain_batch)(batch)

    def by_device(placed: dict[str, jax.Array]) -> dict[str, list]:
        rows = {}
        for labels, inputs in zip(placed["label"].addressable_shards, placed["inputs"].addressable_shards, strict=True):
            label_rows = np.asarray(labels.data).reshape(-1)
            assert np.array_equal(np.asarray(inputs.data).reshape(-1, 40)[:, 0], label_rows)  # inputs travel along
            rows[str(labels.device.id)] = label_rows.tolist()
        return rows

    return {name: by_device(placed) for name, placed in placements.items()}


def strategies(data_dir: str) -> dict:
    results: dict[str, Any] = {}
    results["rows_per_device"] = {
        name: rows_per_device(make_config(data_dir, *STRATEGIES[name])) for name in ("pmap", "dp", "fsdp", "tp")
    }
    for family, (overrides, names) in FAMILIES.items():
        for name in names:
            config = make_config(data_dir, *overrides, *STRATEGIES[name])
            results[f"{family}/{name}"] = timed(results, f"{family}/{name}", loop_run, config)
    # In stored order, the Grain feed reads the same batches as the resident one (and as two processes do).
    ordered = ["--config.data.shuffle=False"]
    results["mlp/single_ordered"] = timed(
        results, "mlp/single_ordered", loop_run, make_config(data_dir, *ordered, *STRATEGIES["single"])
    )
    results["mlp/dp_grain"] = timed(
        results, "mlp/dp_grain", loop_run, make_config(data_dir, *ordered, "--config.data.loader=grain")
    )

    reports = {}
    streamed = "--config.data.loader=grain"  # the batch is then an argument of the step (resident: the dataset is)
    for name, overrides in {
        "dp64": [streamed, "--config.data.batch_size=64"],
        "dp256": [streamed, "--config.data.batch_size=256"],
        "fsdp64": [streamed, "--config.data.batch_size=64", "--config.parallel.strategy=fsdp"],
    }.items():
        reports[name] = timed(
            results,
            f"compile/{name}",
            lambda config: compile_report(build_experiment(config)),
            make_config(data_dir, *overrides),
        )
    results["compile"] = reports

    errors = {}
    for name, overrides in {
        "indivisible_batch": ["--config.data.batch_size=60"],
        "mesh": ["--config.parallel.mesh.data=3"],
        "tp_heads": [*GPT_LM, "--config.parallel.strategy=tp", "--config.parallel.mesh.model=8"],
    }.items():
        try:
            build_experiment(make_config(data_dir, *overrides))
            errors[name] = None
        except ConfigError as error:
            errors[name] = str(error)
    results["errors"] = errors
    return results


def logged_losses(workdir: Path) -> list[float]:
    return [json.loads(line)["train/loss"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def resumed_elsewhere(data_dir: str, workdir: Path, first: list[str], then: list[str]) -> dict:
    """STEPS // 2 steps under the `first` strategy, then resumed to STEPS under `then`, in one workdir.

    Also restores the halfway checkpoint directly under `then`: its values must equal what was saved, bit for
    bit, laid out in `then`'s shardings.
    """
    half = STEPS // 2
    every_step = ["--config.train.log_every=1", f"--config.train.checkpoint_every={half}"]
    saved = train(make_config(data_dir, *first, *every_step, f"--config.train.num_steps={half}"), workdir).state
    config = make_config(data_dir, *then, *every_step)
    experiment = build_experiment(config)
    target = experiment.strategy.canonical_state(experiment.initial_state)
    checkpointer = Checkpointer.from_config(workdir, config, read_only=True)
    restored = checkpointer.restore(half, abstract_like(target), None)
    checkpointer.close()
    trained = train(config, workdir)
    state, final = trained.state, trained.final
    return {
        "restored_equal": all(np.array_equal(a, b) for a, b in zip(tolist(saved), tolist(restored), strict=True)),
        "restored_specs": sorted(
            {str(getattr(leaf.sharding, "spec", "")) for leaf in jax.tree.leaves(restored.params)}
        ),
        "losses": logged_losses(workdir),
        "params": named(state.params),
        "eval": final,
    }


def evaluated_on_one_device(data_dir: str, workdir: Path, trained_on: list[str]) -> dict:
    """Trains STEPS steps under `trained_on`; then restores that workdir on one device and evaluates it."""
    trained = train(make_config(data_dir, *trained_on), workdir)
    state, final = trained.state, trained.final
    one_device = [*STRATEGIES["single"], "--config.parallel.strategy=dp", "--config.parallel.mesh.model=1"]
    restored = load(workdir, overrides=one_device)
    return {
        "devices": len(restored.experiment.strategy.mesh.devices.flat),
        "step": restored.step,
        "restored_equal": all(np.array_equal(a, b) for a, b in zip(tolist(state), tolist(restored.state), strict=True)),
        "eval_trained": final,
        "eval_restored": evaluate(restored),
    }


def restores(data_dir: str, root: str) -> dict:
    """Checkpoints written under one strategy and device count, restored under another (issue: other hardware)."""
    root_path, results = Path(root), {}
    results["unbroken"] = timed(results, "unbroken", loop_run, make_config(data_dir, *STRATEGIES["single"]))
    cases = {"single->fsdp": ("single", "fsdp"), "pmap->dp": ("pmap", "dp"), "fsdp->pmap": ("fsdp", "pmap")}
    for name, (first, then) in cases.items():
        results[name] = timed(
            results, name, resumed_elsewhere, data_dir, root_path / name, STRATEGIES[first], STRATEGIES[then]
        )
    results["fsdp->eval on 1"] = timed(
        results, "fsdp->eval on 1", evaluated_on_one_device, data_dir, root_path / "fsdp", STRATEGIES["fsdp"]
    )
    results["gpt tp->eval on 1"] = timed(
        results, "gpt tp->eval on 1", evaluated_on_one_device, data_dir, root_path / "tp", [*GPT_LM, *STRATEGIES["tp"]]
    )
    return results


def process(data_dir: str, port: str, process_id: str, workdir: str, strategy: str) -> dict:
    config = make_config(
        data_dir,
        "--config.data.shuffle=False",
        *STRATEGIES[strategy],
        f"--config.parallel.coordinator_address=127.0.0.1:{port}",
        "--config.parallel.num_processes=2",
        f"--config.parallel.process_id={process_id}",
        "--config.parallel.initialization_timeout=60",
        "--config.train.log_every=1",
    )
    trained = train(config, workdir)
    state, final = trained.state, trained.final  # the checkpoint is written collectively
    checkpointer = Checkpointer(Path(workdir), save_every=STEPS, keep=1)
    restored = checkpointer.restore(STEPS, abstract_like(state), None)  # and restored collectively
    checkpointer.close()
    log = [json.loads(line) for line in (Path(workdir) / "metrics.jsonl").read_text().splitlines()]
    return {
        "losses": [record["train/loss"] for record in log],
        "params": named(state.params),
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
    elif mode == "restores":
        result = restores(data_dir, str(Path(out).parent / "restores"))
    elif mode == "process":
        result = process(data_dir, *rest)
    else:
        result = lonely(data_dir, *rest)
    with open(out, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
