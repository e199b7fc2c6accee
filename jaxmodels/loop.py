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
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxmodels import config as config_lib
from jaxmodels.checkpoint import Checkpointer, abstract_like, init_from_pretrained
from jaxmodels.data import features, pipeline, sources
from jaxmodels.data.feeds import GrainFeed, ResidentFeed
from jaxmodels.errors import ConfigError, JaxmodelsError
from jaxmodels.metric_writers import MetricWriter, ProgressDisplay
from jaxmodels.models import get_model
from jaxmodels.optim import make_optimizer, make_schedule
from jaxmodels.preemption import Preempted, PreemptionGuard
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


def build_experiment(config: ml_collections.ConfigDict) -> Experiment:
    """Validates `config` and builds everything a run needs (data is read, nothing is trained)."""
    config_lib.validate(config)
    model = get_model(config.model.name, **config_lib.model_arguments(config))
    task = make_task(config)
    tx = make_optimizer(config.optimizer, config.train.num_steps)
    init_key, dropout_key, data_key = jax.random.split(jax.random.key(config.seed), 3)

    builder = sources.open_dataset(config.data.name, config.data.data_dir)
    preprocess = features.classification_features(builder.info)
    feed = _make_feed(config, builder, preprocess, data_key)
    eval_source = sources.open_split(builder, config.data.eval_split)
    eval_arrays = pipeline.load_arrays(
        eval_source, preprocess, pipeline.shard_indices(len(eval_source), jax.process_index(), jax.process_count())
    )
    eval_batches = [jax.device_put(b) for b in pipeline.padded_eval_batches(eval_arrays, config.data.eval_batch_size)]

    initial_state = jax.jit(functools.partial(create_train_state, model, task, tx))(feed.example_batch, init_key)
    _check_num_classes(model, task, initial_state, feed.example_batch, preprocess.num_classes, config)

    skip_nonfinite = config.train.on_nonfinite == "skip"
    bound_train_step = functools.partial(train_step, model=model, task=task, tx=tx, skip_nonfinite=skip_nonfinite)

    def loop_step(state: TrainState, sums: dict, *feed_args: Any) -> tuple[TrainState, dict]:
        batch = feed.select_batch(state.step, *feed_args)
        state, metrics = bound_train_step(state, batch, jax.random.fold_in(dropout_key, state.step))
        return state, jax.tree.map(jnp.add, sums, metrics)

    metric_shapes = jax.eval_shape(bound_train_step, initial_state, feed.example_batch, dropout_key)[1]
    return Experiment(
        config=config,
        feed=feed,
        eval_batches=eval_batches,
        initial_state=initial_state,
        loop_step=jax.jit(loop_step, donate_argnums=(0, 1)),
        evaluate_batch=jax.jit(functools.partial(eval_step, model=model, task=task)),
        zero_metrics=jax.tree.map(lambda shape: np.zeros(shape.shape, shape.dtype), metric_shapes),
        schedule=make_schedule(config.optimizer, config.train.num_steps),
    )


def _make_feed(config, builder, preprocess, data_key) -> ResidentFeed | GrainFeed:
    source = sources.open_split(builder, config.data.train_split)
    process_index, process_count = jax.process_index(), jax.process_count()
    loader = config.data.loader
    if loader == "auto":
        size_mb = _split_size_mb(builder, config.data.train_split)
        loader = "resident" if size_mb <= config.data.resident_max_mb else "grain"
    if loader == "resident":
        indices = pipeline.shard_indices(len(source), process_index, process_count)
        arrays = pipeline.load_arrays(source, preprocess, indices)
        return ResidentFeed(arrays, config.data.batch_size, data_key, shuffle=config.data.shuffle)
    dataset = pipeline.grain_train_dataset(
        source,
        preprocess,
        batch_size=config.data.batch_size,
        seed=config.seed,
        shuffle=config.data.shuffle,
        process_index=process_index,
        process_count=process_count,
        threads=config.data.prefetch_threads,
        buffer=config.data.prefetch_buffer,
    )
    pipeline.steps_per_epoch(len(source) // process_count, config.data.batch_size)
    return GrainFeed(dataset)


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
    return summarize(sums)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> tuple[TrainState, dict[str, float]]:
    """Trains `config` in `workdir` (resuming if it holds a checkpoint); returns the final state and eval metrics.

    SIGTERM or Ctrl-C saves a checkpoint at the current step and raises `Preempted`; calling again resumes.
    """
    workdir = Path(workdir)
    experiment = build_experiment(config)
    _prepare_workdir(workdir)
    checkpointer = Checkpointer.from_config(workdir, config)
    notes: list[str] = []  # printed once the progress display exists
    try:
        restored = checkpointer.restore_latest(
            abstract_like(experiment.initial_state),
            experiment.feed.checkpoint_item,
            experiment.zero_metrics,
            warn=notes.append,
        )
        if restored:
            state, start, sums = restored.state, restored.step, restored.metric_sums
            notes.append(f"resumed from the checkpoint at step {start} in {checkpointer.directory}")
        else:
            state, start, sums = experiment.initial_state, 0, experiment.zero_metrics
            if config.checkpoint.init_from:
                state = init_from_pretrained(
                    state, config.checkpoint.init_from, subtree=config.checkpoint.init_subtree, log=notes.append
                )
        _write_config(workdir, config)  # only now: a refused checkpoint keeps the config.json that wrote it
    except BaseException:
        checkpointer.close()
        raise
    writer = MetricWriter(workdir, resume_step=start)
    progress = ProgressDisplay(config.train.num_steps, start, enabled=config.train.progress_bar)
    for note in notes:
        progress.log(note)
    try:
        with PreemptionGuard() as guard, progress:
            return _run(experiment, state, sums, start, checkpointer, writer, progress, guard)
    finally:
        checkpointer.close()
        writer.close()


def _prepare_workdir(workdir: Path) -> None:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=workdir):  # writable? (mkdir succeeds on an existing read-only dir)
            pass
    except OSError as error:
        raise JaxmodelsError(
            f"cannot write to workdir {str(workdir)!r}: {error.strerror}; choose a writable --workdir"
        ) from None


def _write_config(workdir: Path, config: ml_collections.ConfigDict) -> None:
    if jax.process_index() == 0:
        (workdir / "config.json").write_text(config_lib.to_json(config))


def _run(
    experiment: Experiment,
    state: TrainState,
    sums: dict[str, Any],
    start: int,
    checkpointer: Checkpointer,
    writer: MetricWriter,
    progress: ProgressDisplay,
    guard: PreemptionGuard,
) -> tuple[TrainState, dict[str, float]]:
    """Steps from `start` to `train.num_steps`, logging, evaluating and checkpointing on schedule.

    `sums` are the train-metric sums since the last log line (restored with a checkpoint).
    """
    train_cfg, feed = experiment.config.train, experiment.feed
    eval_prefix = experiment.config.data.eval_split
    sums = jax.device_put(sums)
    final: dict[str, float] = {}
    if start >= train_cfg.num_steps:
        final = {f"{eval_prefix}/{key}": value for key, value in evaluate(experiment, state).items()}
    window_start, window_step = time.perf_counter(), start
    for step in range(start, train_cfg.num_steps):
        state, sums = experiment.loop_step(state, sums, *feed.args_for_step(step))
        done = step + 1
        is_last = done == train_cfg.num_steps
        eval_due = done % train_cfg.eval_every == 0 or is_last
        save_due = checkpointer.should_save(done, evaluated=eval_due) or is_last
        if not (done % train_cfg.log_every == 0 or eval_due or save_due):
            if guard.requested:
                _checkpoint_and_stop(done, state, sums, checkpointer, feed, guard)
            continue  # the common case: no host sync, straight to the next dispatch
        scalars = _train_scalars(sums)
        sums = jax.device_put(experiment.zero_metrics)
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
            metrics = scalars if eval_due else None  # ranks the checkpoint when checkpoint.keep_best is set
            checkpointer.save(done, state, feed.checkpoint_item, metric_sums=sums, metrics=metrics, force=True)
        if guard.requested:
            _checkpoint_and_stop(done, state, sums, checkpointer, feed, guard)
        window_start, window_step = time.perf_counter(), done  # logging and eval time is not step time
    return state, final


def _train_scalars(sums: dict[str, Any]) -> dict[str, float]:
    """Per-example averages of the train-metric sums; `skipped_steps` (train.on_nonfinite=skip) stays a count."""
    sums = dict(jax.device_get(sums))
    skipped = sums.pop("skipped_steps", None)
    scalars = {f"train/{key}": value for key, value in summarize(sums).items()}
    if skipped is not None:
        scalars["train/skipped_steps"] = float(skipped)
    return scalars


def _checkpoint_and_stop(step: int, state: TrainState, sums: dict, checkpointer: Checkpointer, feed, guard) -> None:
    """On SIGTERM/SIGINT: save this step (with the pending metric sums) and stop; a re-run resumes here."""
    _check_finite(_train_scalars(sums), step, checkpointer)
    checkpointer.save(step, state, feed.checkpoint_item, metric_sums=sums, force=True)
    checkpointer.wait()
    raise Preempted(step, guard.signal_name, checkpointer.directory)


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
    if not (workdir / "checkpoints").is_dir():
        raise JaxmodelsError(f"no checkpoint in {workdir / 'checkpoints'}; train first with `jaxmodels train`")
    checkpointer = Checkpointer.from_config(workdir, config, read_only=True)
    try:
        warn = functools.partial(print, file=sys.stderr)
        restored = checkpointer.restore_latest(
            abstract_like(experiment.initial_state), None, None, warn=warn, set_aside=False
        )
        if restored is None:
            raise JaxmodelsError(f"no checkpoint in {checkpointer.directory}; train first with `jaxmodels train`")
        step, state = restored.step, restored.state
    finally:
        checkpointer.close()
    metrics = {f"{config.data.eval_split}/{key}": value for key, value in evaluate(experiment, state).items()}
    return step, metrics
