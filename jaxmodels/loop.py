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

import flax.linen as nn
import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import flags as absl_flags
from jax.experimental import multihost_utils

from jaxmodels import config as config_lib
from jaxmodels import parallel
from jaxmodels.checkpoint import Checkpointer, abstract_like, init_from_pretrained
from jaxmodels.data import pipeline, views
from jaxmodels.data.feeds import GrainFeed, ResidentFeed
from jaxmodels.errors import ConfigError, JaxmodelsError
from jaxmodels.metric_writers import MetricWriter, ProgressDisplay
from jaxmodels.models import get_model
from jaxmodels.models.registry import model_fields
from jaxmodels.optim import make_optimizer, make_schedule
from jaxmodels.preemption import Preempted, PreemptionGuard
from jaxmodels.sample import continue_tokens
from jaxmodels.tasks import Task, make_task, summarize
from jaxmodels.train import TrainState, create_train_state, eval_step, train_step


@dataclasses.dataclass
class Experiment:
    """A config made concrete: model, task, optimizer, data and the compiled steps that use them."""

    config: ml_collections.ConfigDict
    model: nn.Module
    task: Task
    view: views.DataView
    feed: ResidentFeed | GrainFeed
    eval_batches: list[dict[str, Any]]
    initial_state: TrainState
    loop_step: Any  # jitted (state, metric_sums, *feed_args) -> (state, metric_sums)
    evaluate_batch: Any  # jitted (state, batch) -> metric sums
    zero_metrics: dict[str, np.ndarray]  # the structure of the metric sums, all zeros
    schedule: optax.Schedule
    strategy: parallel.Strategy  # how state, batches and steps are laid out on the devices


def build_experiment(config: ml_collections.ConfigDict, workdir: Path | None = None) -> Experiment:
    """Validates `config` and builds everything a run needs (data is read, nothing is trained).

    `workdir`, when given, keeps what the data view trains once and must reuse (tokenizers).
    """
    config_lib.validate(config)
    parallel.initialize_distributed(config)
    strategy = parallel.make_strategy(config)
    view = views.build(config, workdir)
    model = get_model(config.model.name, **model_arguments(config, view))
    model = model.clone(**strategy.model_overrides(type(model)))  # e.g. BatchNorm's pmap axis
    task = make_task(config)
    tx = make_optimizer(config.optimizer, config.train.num_steps)
    init_key, dropout_key, data_key = jax.random.split(jax.random.key(config.seed), 3)
    feed = _make_feed(config, view, data_key, strategy)
    eval_batches = [
        strategy.place_batch(batch)
        for batch in pipeline.padded_eval_batches(
            view.eval_examples,
            config.data.eval_batch_size // jax.process_count(),
            _eval_batches_per_process(view, config),  # every process yields as many batches
        )
    ]

    create = functools.partial(create_train_state, model, task, tx)
    abstract_state = jax.eval_shape(create, feed.example_batch, init_key)
    initial_state = strategy.init_state(create, feed.example_batch, init_key)

    step_options = {
        "accumulate_steps": config.train.accumulate_steps,
        "compute_dtype": config.train.compute_dtype,
        "remat": config.train.remat,
        "skip_nonfinite": config.train.on_nonfinite == "skip",
    }
    bound_train_step = functools.partial(train_step, model=model, task=task, tx=tx, **step_options)
    parallel_train_step = functools.partial(bound_train_step, **strategy.step_options())

    def loop_step(state: TrainState, sums: dict, *feed_args: Any) -> tuple[TrainState, dict]:
        batch = strategy.constrain_batch(feed.select_batch(state.step, *feed_args))
        state, metrics = parallel_train_step(state, batch, jax.random.fold_in(dropout_key, state.step))
        return state, jax.tree.map(jnp.add, sums, metrics)

    metric_shapes = jax.eval_shape(
        functools.partial(eval_step, model=model, task=task), abstract_state, feed.example_batch
    )  # the train step's metrics, less `skipped_steps` (an eval step needs no collective axis)
    zero_metrics = jax.tree.map(lambda shape: np.zeros(shape.shape, shape.dtype), metric_shapes)
    if step_options["skip_nonfinite"]:
        zero_metrics["skipped_steps"] = np.zeros((), np.float32)
    state_shardings = strategy.state_shardings(initial_state)
    return Experiment(
        config=config,
        model=model,
        task=task,
        view=view,
        feed=feed,
        eval_batches=eval_batches,
        initial_state=initial_state,
        loop_step=strategy.compile_step(loop_step, state_shardings),
        evaluate_batch=strategy.compile_eval(
            functools.partial(eval_step, model=model, task=task, **strategy.step_options())
        ),
        zero_metrics=zero_metrics,
        schedule=make_schedule(config.optimizer, config.train.num_steps),
        strategy=strategy,
    )


def model_arguments(config: ml_collections.ConfigDict, view: views.DataView) -> dict[str, Any]:
    """The config's model arguments, completed with the sizes the data fixes (classes, vocabulary).

    A size the config leaves out is filled in; one it sets must agree with the data.
    """
    arguments = config_lib.model_arguments(config)
    accepted = model_fields(config.model.name)
    for key, size in view.model_sizes.items():
        if key not in accepted:
            continue
        if key not in arguments:
            arguments[key] = size
        elif arguments[key] != size:
            raise ConfigError(
                f"config key model.{key}={arguments[key]} does not match the data: {config.data.name!r} "
                f"({config.task.name} view) has {key} {size}; set --config.model.{key}={size} or leave it out"
            )
    return arguments


def _eval_batches_per_process(view: views.DataView, config: ml_collections.ConfigDict) -> int:
    """Eval batches each process runs: enough for the largest shard, the same on every process."""
    local = len(next(iter(view.eval_examples.values())))
    largest = local if jax.process_count() == 1 else int(np.max(multihost_utils.process_allgather(local)))
    per_process = max(config.data.eval_batch_size // jax.process_count(), 1)
    return max(-(-largest // per_process), 1)


def _make_feed(
    config: ml_collections.ConfigDict, view: views.DataView, data_key: jax.Array, strategy: parallel.Strategy
) -> ResidentFeed | GrainFeed:
    process_index, process_count = jax.process_index(), jax.process_count()
    batch_size = config.data.batch_size // process_count  # data.batch_size is global: each process reads its rows
    if view.train_examples is not None:  # a sampling view: its own endless dataset of examples or batches
        dataset = view.train_examples
        if isinstance(dataset, grain.MapDataset):
            dataset = (
                dataset[process_index::process_count]
                .batch(batch_size, drop_remainder=True)
                .repeat(None)
                .to_iter_dataset(grain.ReadOptions(config.data.prefetch_threads, config.data.prefetch_buffer))
            )
        return GrainFeed(_with_workers(dataset, config.data.workers), strategy)
    records = view.train_records
    loader = config.data.loader
    if loader == "auto":
        loader = "resident" if view.train_bytes <= config.data.resident_max_mb * 2**20 else "grain"
    if loader == "resident":
        indices = pipeline.shard_indices(len(records), process_index, process_count)
        arrays = pipeline.load_arrays(records, view.preprocess, indices)
        return ResidentFeed(arrays, batch_size, data_key, shuffle=config.data.shuffle, strategy=strategy)
    source, preprocess = records, view.preprocess
    if view.train_bytes <= config.data.host_cache_max_mb * 2**20:  # decode once, keep in host memory
        indices = pipeline.shard_indices(len(records), process_index, process_count)
        source, preprocess = pipeline.ExampleArrays(pipeline.load_arrays(records, preprocess, indices)), None
        process_index, process_count = 0, 1  # the cached arrays hold this process's shard only
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
    return GrainFeed(_with_workers(dataset, config.data.workers), strategy)


def _with_workers(dataset: grain.IterDataset, workers: int) -> grain.IterDataset:
    """Moves the pipeline into `workers` processes (Grain multiprocess prefetch); 0 keeps it in threads."""
    if not workers:
        return dataset
    if not absl_flags.FLAGS.is_parsed():  # Grain's workers read absl flags; we have no absl main
        absl_flags.FLAGS.mark_as_parsed()
    return dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))


def evaluate(experiment: Experiment, state: TrainState) -> dict[str, float]:
    """Averages of the task's metrics over the whole eval split (padding masked out)."""
    sums = None
    for batch in experiment.eval_batches:
        metrics = experiment.evaluate_batch(state, batch)
        sums = metrics if sums is None else jax.tree.map(jnp.add, sums, metrics)
    return summarize(experiment.strategy.to_host(sums), experiment.task)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> tuple[TrainState, dict[str, float]]:
    """Trains `config` in `workdir` (resuming if it holds a checkpoint); returns the final state and eval metrics.

    SIGTERM or Ctrl-C saves a checkpoint at the current step and raises `Preempted`; calling again resumes.
    """
    workdir = Path(workdir)
    _prepare_workdir(workdir)
    experiment = build_experiment(config, workdir)
    strategy = experiment.strategy
    checkpointer = Checkpointer.from_config(workdir, config)
    notes: list[str] = []  # printed once the progress display exists
    try:
        restored = checkpointer.restore_latest(
            abstract_like(strategy.canonical_state(experiment.initial_state)),
            experiment.feed.checkpoint_item,
            experiment.zero_metrics,
            warn=notes.append,
        )
        if restored:
            state, start, sums = strategy.from_canonical(restored.state), restored.step, restored.metric_sums
            notes.append(f"resumed from the checkpoint at step {start} in {checkpointer.directory}")
        else:
            state, start, sums = experiment.initial_state, 0, experiment.zero_metrics
            if config.checkpoint.init_from:
                canonical = init_from_pretrained(
                    strategy.canonical_state(state),
                    config.checkpoint.init_from,
                    subtree=config.checkpoint.init_subtree,
                    log=notes.append,
                )
                state = strategy.from_canonical(strategy.place_state(canonical))
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
            state, final = _run(experiment, state, sums, start, checkpointer, writer, progress, guard)
            return experiment.strategy.canonical_state(state), final
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
    eval_prefix = experiment.view.eval_name
    sums = experiment.strategy.put_replicated(sums)
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
        stop = guard.stop_at(done)
        if not (done % train_cfg.log_every == 0 or eval_due or save_due):
            if stop:
                _checkpoint_and_stop(done, state, sums, checkpointer, experiment, guard)
            continue  # the common case: no host sync, straight to the next dispatch
        scalars = _train_scalars(experiment.strategy.to_host(sums), experiment.task)
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
            metrics = scalars if eval_due else None  # ranks the checkpoint when checkpoint.keep_best is set
            canonical = experiment.strategy.canonical_state(state)
            checkpointer.save(done, canonical, feed.checkpoint_item, metric_sums=experiment.strategy.to_host(sums),
                              metrics=metrics, force=True)  # fmt: skip
        if stop:
            _checkpoint_and_stop(done, state, sums, checkpointer, experiment, guard)
        window_start, window_step = time.perf_counter(), done  # logging and eval time is not step time
    return state, final


def _train_scalars(sums: dict[str, Any], task: Task) -> dict[str, float]:
    """Per-example averages of the train-metric sums; `skipped_steps` (train.on_nonfinite=skip) stays a count."""
    sums = dict(jax.device_get(sums))
    skipped = sums.pop("skipped_steps", None)
    scalars = {f"train/{key}": value for key, value in summarize(sums, task).items()}
    if skipped is not None:
        scalars["train/skipped_steps"] = float(skipped)
    return scalars


def _checkpoint_and_stop(
    step: int, state: TrainState, sums: dict, checkpointer: Checkpointer, experiment: Experiment, guard
) -> None:
    """On SIGTERM/SIGINT: save this step (with the pending metric sums) and stop; a re-run resumes here."""
    host_sums = experiment.strategy.to_host(sums)
    _check_finite(_train_scalars(host_sums, experiment.task), step, checkpointer)
    canonical = experiment.strategy.canonical_state(state)
    checkpointer.save(step, canonical, experiment.feed.checkpoint_item, metric_sums=host_sums, force=True)
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


def _restore_workdir(workdir: Path, overrides: list[str]) -> tuple[Experiment, TrainState, int]:
    """The experiment a workdir's config.json describes, with its latest checkpoint restored."""
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise JaxmodelsError(f"{str(workdir)!r} holds no config.json: is it a jaxmodels workdir? Train into it first")
    config = config_lib.apply_overrides(config_lib.config_from_dict(json.loads(config_path.read_text())), overrides)
    experiment = build_experiment(config, workdir)
    if not (workdir / "checkpoints").is_dir():
        raise JaxmodelsError(f"no checkpoint in {workdir / 'checkpoints'}; train first with `jaxmodels train`")
    checkpointer = Checkpointer.from_config(workdir, config, read_only=True)
    try:
        warn = functools.partial(print, file=sys.stderr)
        restored = checkpointer.restore_latest(
            abstract_like(experiment.strategy.canonical_state(experiment.initial_state)),
            None,
            None,
            warn=warn,
            set_aside=False,
        )
        if restored is None:
            raise JaxmodelsError(f"no checkpoint in {checkpointer.directory}; train first with `jaxmodels train`")
        step, state = restored.step, experiment.strategy.from_canonical(restored.state)
    finally:
        checkpointer.close()
    return experiment, state, step


def evaluate_workdir(workdir: str | Path, overrides: list[str] | None = None) -> tuple[int, dict[str, float]]:
    """Restores the latest checkpoint of `workdir` and evaluates it on the eval split."""
    experiment, state, step = _restore_workdir(Path(workdir), overrides or [])
    metrics = {f"{experiment.view.eval_name}/{key}": value for key, value in evaluate(experiment, state).items()}
    return step, metrics


def sample_workdir(
    workdir: str | Path, prompt: str, num_tokens: int, temperature: float, top_k: int | None, seed: int
) -> str:
    """Text generated by the language model of `workdir`: the prompt and `num_tokens` more tokens."""
    experiment, state, _ = _restore_workdir(Path(workdir), [])
    tokenizer = experiment.view.tokenizer
    if experiment.config.task.name != "lm" or tokenizer is None:
        raise ConfigError(f"{str(workdir)!r} holds a {experiment.config.task.name!r} run; sampling needs task lm")
    if num_tokens < 0 or temperature < 0 or (top_k is not None and top_k < 1):
        raise ConfigError("sampling needs --num_tokens >= 0, --temperature >= 0 and --top_k >= 1")
    prompt_ids = tokenizer.encode(prompt)
    if len(prompt_ids) == 0:
        raise ConfigError("the prompt encodes to no tokens; give a --prompt")
    rng = jax.random.key(seed)
    ids = continue_tokens(experiment.model, state.params, prompt_ids, num_tokens, rng, temperature, top_k)
    return tokenizer.decode(ids)
