"""The train loop: build an experiment from its config, then train, evaluate, log and checkpoint.

Written once for every model family. The loop only dispatches compiled steps: metrics
accumulate on the device and are read back every `train.log_every` steps, so nothing forces
a device-to-host sync per step. Re-running the same command on the same workdir resumes from
its latest checkpoint and ends bitwise equal to an unbroken run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxmodels import config as config_lib
from jaxmodels import parallel
from jaxmodels.checkpoint import Checkpointer, abstract_like
from jaxmodels.data import features, pipeline, sources
from jaxmodels.data.feeds import GrainFeed, ResidentFeed
from jaxmodels.errors import ConfigError, JaxmodelsError
from jaxmodels.metric_writers import MetricWriter, ProgressDisplay
from jaxmodels.models import get_model
from jaxmodels.optim import make_optimizer, make_schedule
from jaxmodels.tasks import make_task, summarize
from jaxmodels.train import TrainState, create_train_state, eval_step, train_step


@dataclasses.dataclass
class Experiment:
    """A config made concrete: model, task, optimizer, data and the compiled steps that use them."""

    config: ml_collections.ConfigDict
    feed: ResidentFeed | GrainFeed
    eval_batches: list[dict[str, Any]]
    initial_state: TrainState
    loop_step: Any  # jitted (state, metric_sums, *feed_args) -> (state, metric_sums)
    evaluate_batch: Any  # jitted (state, batch) -> metric sums
    zero_metrics: dict[str, np.ndarray]  # the structure of the metric sums, all zeros
    schedule: optax.Schedule
    strategy: parallel.Strategy  # how state, batches and steps are laid out on the devices


def build_experiment(config: ml_collections.ConfigDict) -> Experiment:
    """Validates `config` and builds everything a run needs (data is read, nothing is trained)."""
    config_lib.validate(config)
    parallel.initialize_distributed(config)
    strategy = parallel.make_strategy(config)
    model = get_model(config.model.name, **config_lib.model_arguments(config))
    model = model.clone(**strategy.model_overrides(type(model)))  # e.g. BatchNorm's pmap axis
    task = make_task(config)
    tx = make_optimizer(config.optimizer, config.train.num_steps)
    init_key, dropout_key, data_key = jax.random.split(jax.random.key(config.seed), 3)

    builder = sources.open_dataset(config.data.name, config.data.data_dir)
    preprocess = features.classification_features(builder.info)
    feed = _make_feed(config, builder, preprocess, data_key, strategy)
    eval_source = sources.open_split(builder, config.data.eval_split)
    eval_arrays = pipeline.load_arrays(
        eval_source, preprocess, pipeline.shard_indices(len(eval_source), jax.process_index(), jax.process_count())
    )
    eval_batches = [
        strategy.place_batch(b)
        for b in pipeline.padded_eval_batches(
            eval_arrays,
            config.data.eval_batch_size // jax.process_count(),
            -(-len(eval_source) // config.data.eval_batch_size),  # every process yields as many batches
        )
    ]

    create = functools.partial(create_train_state, model, task, tx)
    abstract_state = jax.eval_shape(create, feed.example_batch, init_key)
    _check_num_classes(model, task, abstract_state, feed.example_batch, preprocess.num_classes, config)
    initial_state = strategy.init_state(create, feed.example_batch, init_key)

    step_options = {
        "accumulate_steps": config.train.accumulate_steps,
        "compute_dtype": config.train.compute_dtype,
        "remat": config.train.remat,
    }
    bound_train_step = functools.partial(train_step, model=model, task=task, tx=tx, **step_options)
    parallel_train_step = functools.partial(bound_train_step, **strategy.step_options())

    def loop_step(state: TrainState, sums: dict, *feed_args: Any) -> tuple[TrainState, dict]:
        batch = strategy.constrain_batch(feed.select_batch(state.step, *feed_args))
        state, metrics = parallel_train_step(state, batch, jax.random.fold_in(dropout_key, state.step))
        return state, jax.tree.map(jnp.add, sums, metrics)

    metric_shapes = jax.eval_shape(
        functools.partial(eval_step, model=model, task=task), abstract_state, feed.example_batch
    )
    state_shardings = strategy.state_shardings(initial_state)
    return Experiment(
        config=config,
        feed=feed,
        eval_batches=eval_batches,
        initial_state=initial_state,
        loop_step=strategy.compile_step(loop_step, state_shardings),
        evaluate_batch=strategy.compile_eval(
            functools.partial(eval_step, model=model, task=task, **strategy.step_options())
        ),
        zero_metrics=jax.tree.map(lambda shape: np.zeros(shape.shape, shape.dtype), metric_shapes),
        schedule=make_schedule(config.optimizer, config.train.num_steps),
        strategy=strategy,
    )


def _make_feed(config, builder, preprocess, data_key, strategy) -> ResidentFeed | GrainFeed:
    source = sources.open_split(builder, config.data.train_split)
    process_index, process_count = jax.process_index(), jax.process_count()
    batch_size = config.data.batch_size // process_count  # data.batch_size is global: each process reads its rows
    loader = config.data.loader
    if loader == "auto":
        size_mb = _split_size_mb(builder, config.data.train_split)
        loader = "resident" if size_mb <= config.data.resident_max_mb else "grain"
    if loader == "resident":
        indices = pipeline.shard_indices(len(source), process_index, process_count)
        arrays = pipeline.load_arrays(source, preprocess, indices)
        return ResidentFeed(arrays, batch_size, data_key, shuffle=config.data.shuffle, strategy=strategy)
    dataset = pipeline.grain_train_dataset(
        source,
        preprocess,
        batch_size=batch_size,
        seed=config.seed,
        shuffle=config.data.shuffle,
        process_index=process_index,
        process_count=process_count,
        threads=config.data.prefetch_threads,
        buffer=config.data.prefetch_buffer,
    )
    pipeline.steps_per_epoch(len(source) // process_count, batch_size)
    return GrainFeed(dataset, strategy)


def _split_size_mb(builder, split: str) -> float:
    info = builder.info.splits[split]
    return (info.num_bytes or 0) / 2**20


def _check_num_classes(model, task, state, example_batch, num_classes: int, config) -> None:
    args, kwargs = task.model_inputs(example_batch)
    variables = {"params": state.params, **state.model_state}
    outputs = jax.eval_shape(functools.partial(model.apply, train=False, **kwargs), variables, *args)
    if outputs.shape[-1] != num_classes:
        raise ConfigError(
            f"model {config.model.name!r} outputs {outputs.shape[-1]} classes but dataset {config.data.name!r} has "
            f"{num_classes}; set --config.model.num_classes={num_classes}"
        )


def evaluate(experiment: Experiment, state: TrainState) -> dict[str, float]:
    """Averages of the task's metrics over the whole eval split (padding masked out)."""
    sums = None
    for batch in experiment.eval_batches:
        metrics = experiment.evaluate_batch(state, batch)
        sums = metrics if sums is None else jax.tree.map(jnp.add, sums, metrics)
    return summarize(experiment.strategy.to_host(sums))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> tuple[TrainState, dict[str, float]]:
    """Trains `config` in `workdir` (resuming if it holds a checkpoint); returns the final state and eval metrics."""
    workdir = Path(workdir)
    experiment = build_experiment(config)
    _prepare_workdir(workdir, config)
    checkpointer = Checkpointer(workdir, save_every=config.train.checkpoint_every, keep=config.train.keep_checkpoints)
    data_iterator = experiment.feed.checkpoint_item
    state = experiment.initial_state
    start = checkpointer.latest_step() or 0
    if start:
        canonical = abstract_like(experiment.strategy.canonical_state(state))
        state = experiment.strategy.from_canonical(checkpointer.restore(start, canonical, data_iterator))
    writer = MetricWriter(workdir, resume_step=start)
    progress = ProgressDisplay(config.train.num_steps, start, enabled=config.train.progress_bar)
    if start:
        progress.log(f"resumed from the checkpoint at step {start} in {checkpointer.directory}")
    try:
        with progress:
            state, final = _run(experiment, state, start, checkpointer, writer, progress)
            return experiment.strategy.canonical_state(state), final
    finally:
        checkpointer.close()
        writer.close()


def _prepare_workdir(workdir: Path, config: ml_collections.ConfigDict) -> None:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        if jax.process_index() == 0:
            (workdir / "config.json").write_text(config_lib.to_json(config))
    except OSError as error:
        raise JaxmodelsError(
            f"cannot write to workdir {str(workdir)!r}: {error.strerror}; choose a writable --workdir"
        ) from None


def _run(
    experiment: Experiment,
    state: TrainState,
    start: int,
    checkpointer: Checkpointer,
    writer: MetricWriter,
    progress: ProgressDisplay,
) -> tuple[TrainState, dict[str, float]]:
    """Steps from `start` to `train.num_steps`, logging, evaluating and checkpointing on schedule."""
    train_cfg, feed = experiment.config.train, experiment.feed
    eval_prefix = experiment.config.data.eval_split
    sums = experiment.strategy.put_replicated(experiment.zero_metrics)
    final: dict[str, float] = {}
    if start >= train_cfg.num_steps:
        final = {f"{eval_prefix}/{key}": value for key, value in evaluate(experiment, state).items()}
    window_start, window_step = time.perf_counter(), start
    for step in range(start, train_cfg.num_steps):
        state, sums = experiment.loop_step(state, sums, *feed.args_for_step(step))
        done = step + 1
        is_last = done == train_cfg.num_steps
        eval_due = done % train_cfg.eval_every == 0 or is_last
        save_due = checkpointer.should_save(done) or is_last
        if not (done % train_cfg.log_every == 0 or eval_due or save_due):
            continue  # the common case: no host sync, straight to the next dispatch
        scalars = {f"train/{key}": value for key, value in summarize(experiment.strategy.to_host(sums)).items()}
        sums = experiment.strategy.put_replicated(experiment.zero_metrics)
        now = time.perf_counter()
        rate = (done - window_step) / (now - window_start)
        _check_finite(scalars, done, checkpointer)
        scalars["train/learning_rate"] = float(experiment.schedule(step))
        scalars["train/steps_per_second"] = rate
        if eval_due:
            final = {f"{eval_prefix}/{key}": value for key, value in evaluate(experiment, state).items()}
            scalars.update(final)
            progress.log(f"step {done}: " + ", ".join(f"{key} {value:.4g}" for key, value in scalars.items()))
        writer.write(done, scalars)
        progress.update(done, scalars["train/loss"], rate)
        if save_due:  # only states whose loss was just checked finite are saved
            checkpointer.save(done, experiment.strategy.canonical_state(state), feed.checkpoint_item, force=True)
        window_start, window_step = time.perf_counter(), done  # logging and eval time is not step time
    return state, final


def _check_finite(scalars: dict[str, float], step: int, checkpointer: Checkpointer) -> None:
    if all(np.isfinite(value) for value in scalars.values()):
        return
    last = checkpointer.latest_step()
    where = (
        f"the last good checkpoint is step {last} in {checkpointer.directory}" if last else "no checkpoint was saved"
    )
    raise JaxmodelsError(
        f"training diverged: non-finite train metrics {scalars} in the steps up to {step}; {where}. "
        "Lower optimizer.learning_rate or set optimizer.grad_clip_norm"
    )


def evaluate_workdir(workdir: str | Path, overrides: list[str] | None = None) -> tuple[int, dict[str, float]]:
    """Restores the latest checkpoint of `workdir` and evaluates it on the eval split."""
    workdir = Path(workdir)
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise JaxmodelsError(f"{str(workdir)!r} holds no config.json: is it a jaxmodels workdir? Train into it first")
    config = config_lib.apply_overrides(
        config_lib.config_from_dict(json.loads(config_path.read_text())), overrides or []
    )
    experiment = build_experiment(config)
    checkpointer = Checkpointer(workdir, save_every=config.train.checkpoint_every, keep=config.train.keep_checkpoints)
    try:
        step = checkpointer.latest_step()
        if step is None:
            raise JaxmodelsError(f"no checkpoint in {checkpointer.directory}; train first with `jaxmodels train`")
        canonical = abstract_like(experiment.strategy.canonical_state(experiment.initial_state))
        state = experiment.strategy.from_canonical(checkpointer.restore(step, canonical, None))
    finally:
        checkpointer.close()
    metrics = {f"{config.data.eval_split}/{key}": value for key, value in evaluate(experiment, state).items()}
    return step, metrics
