"""From a config to everything a run needs, in one place: the step every entry point runs.

`build_experiment(config)` validates the config and assembles, in this order: the device strategy, the task
and the data view it trains on, the model (its registered family and sizes, completed by the data), the
optimizer, the data feed, and the one bound train step. Training (`jaxmodels.loop`), the workdir commands
(`jaxmodels.run`) and the ahead-of-time report (`jaxmodels.compile_report`) all use this `Experiment`, so
they can never disagree about what a config means. Nothing here trains.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import flax.linen as nn
import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.experimental import multihost_utils

from jaxmodels import config as config_lib
from jaxmodels import parallel
from jaxmodels.data import pipeline, views
from jaxmodels.data.feeds import GrainFeed, ResidentFeed, StreamedEvalBatches
from jaxmodels.errors import ConfigError, JaxmodelsError
from jaxmodels.files import first_line
from jaxmodels.models import registry
from jaxmodels.optim import make_optimizer, make_schedule
from jaxmodels.steps import TrainState, create_train_state, eval_step, train_step
from jaxmodels.tasks import Task, make_task, summarize, task_spec


@dataclasses.dataclass
class Experiment:
    """A config made concrete: model, task, optimizer, data and the compiled steps that use them."""

    config: ml_collections.ConfigDict
    model: nn.Module
    task: Task
    view: views.DataView
    feed: ResidentFeed | GrainFeed
    strategy: parallel.Strategy  # how state, batches and steps are laid out on the devices
    schedule: optax.Schedule
    eval_batches: list[dict[str, Any]] | StreamedEvalBatches  # placed once, or read and placed at each evaluation
    abstract_state: TrainState  # shapes and dtypes of the (canonical) train state; nothing allocated
    loop_step: Any  # compiled (state, metric_sums, *feed.args_for_step(step)) -> (state, metric_sums)
    evaluate_batch: Any  # compiled (state, batch) -> metric sums
    zero_metrics: dict[str, np.ndarray]  # the structure of the train-metric sums, all zeros
    notes: list[str]  # what the build decided that the user should hear (e.g. a size variant's sizes won)
    create_state: Callable[[], TrainState]  # the freshly initialised, placed train state

    @functools.cached_property
    def initial_state(self) -> TrainState:
        """The train state at step 0, placed for the strategy (created on first use)."""
        return self.create_state()

    def abstract_step_inputs(self) -> tuple[Any, ...]:
        """`loop_step`'s arguments (state, metric sums, *feed arguments) as shapes, dtypes and shardings: what
        the step is compiled for. No parameter is allocated; the feed does not move on."""
        strategy = self.strategy
        state = strategy.abstract_placed_state(self.abstract_state)
        sums = strategy.abstract_inputs(strategy.put_replicated(self.zero_metrics))
        return (state, sums, *strategy.abstract_inputs(self.feed.example_args()))

    def compile_step_ahead(self) -> Future:
        """Starts compiling `loop_step` on a background thread; the result is the compiled step (or its error).

        The train loop calls it before it creates or restores the state, so that XLA compiles the step while the
        initialiser compiles and runs: ResNet-20's first step on 32x32 images went from 8.5-8.7 to 7.5 s on 2
        cores. The step's first call then finds the executable in jit's cache. Under pmap, whose first call would
        compile again, nothing is compiled ahead: the future is already done, with None. Otherwise the step is
        lowered here, on the caller's thread: a model that does not fit the data (`lower_step`) is a ConfigError
        before the run writes anything (the lowering took 0.3 of 3.0 s for the MNIST-1D CNN, 1.6 of 9.4 s for the
        char GPT, measured on a loaded 2-core machine; compiling, done ahead, is the rest).
        """
        if not self.strategy.first_call_reuses_compilation:  # pmap: its abstract inputs do not lower across hosts
            nothing = Future()
            nothing.set_result(None)
            return nothing
        lowered = self.lower_step()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxmodels-compile-step")
        compiling = executor.submit(lowered.compile)
        executor.shutdown(wait=False)
        return compiling

    def lower_step(self) -> Any:
        """`loop_step` traced and lowered for its abstract inputs (not compiled yet). A model whose forward pass
        takes the data's batches but whose train step does not (e.g. ViT patches larger than the images: the
        gradient of a patch embedding with negative sizes) is a ConfigError naming the model and data sizes."""
        try:
            return self.loop_step.lower(*self.abstract_step_inputs())
        except JaxmodelsError:
            raise
        except (TypeError, ValueError, IndexError) as error:  # what JAX raises on shapes that do not fit
            raise _does_not_fit(self.config, self.model, self.feed.example_batch, error) from None

    def first_step(self, *step_inputs: Any) -> tuple[TrainState, dict]:
        """`loop_step`'s first call. Where the step was not lowered ahead (pmap, `compile_step_ahead`) this call
        traces it, so a model that does not fit the data is the same ConfigError as `lower_step` raises."""
        if self.strategy.first_call_reuses_compilation:
            return self.loop_step(*step_inputs)
        try:
            return self.loop_step(*step_inputs)
        except (TypeError, ValueError, IndexError) as error:  # what JAX raises on shapes that do not fit
            raise _does_not_fit(self.config, self.model, self.feed.example_batch, error) from None

    def evaluate(self, state: TrainState) -> dict[str, float]:
        """Averages of the task's metrics over the whole eval split (padding masked out), keyed '<split>/<name>'."""
        sums = None
        for index, batch in enumerate(self.eval_batches, start=1):
            metrics = self.evaluate_batch(state, batch)
            sums = metrics if sums is None else jax.tree.map(jnp.add, sums, metrics)
            self.strategy.pace(index, sums)  # several CPU devices: bounded, as the train loop's steps
        averages = summarize(self.strategy.to_host(sums), self.task)
        return {f"{self.view.eval_name}/{key}": value for key, value in averages.items()}


def build_experiment(config: ml_collections.ConfigDict, workdir: Path | None = None) -> Experiment:
    """Validates `config` and builds everything a run needs (data is read, nothing is trained).

    `workdir`, when given, is where a tokenizer trained before is read from (`jaxmodels.run.train` keeps a new
    one there once the run is accepted). Every check that needs no data runs before any data is read.
    """
    config_lib.validate(config)
    registry.check_arguments(config.model.name, config_lib.model_arguments(config))
    parallel.split_host_cpu(config)
    parallel.initialize_distributed(config)
    strategy = parallel.make_strategy(config, registry.logical_axes_of(config.model.name))
    view = views.build(
        config, workdir, view=task_spec(config.task.name).view, options=registry.view_options_of(config.model.name)
    )
    arguments, notes = model_arguments(config, view)
    model = registry.get_model(config.model.name, **arguments)
    model = model.clone(**strategy.model_overrides(type(model)))  # e.g. BatchNorm's pmap axis
    task = make_task(config)
    tx = make_optimizer(config.optimizer, config.train.num_steps)
    init_key, dropout_key, data_key = jax.random.split(jax.random.key(config.seed), 3)
    feed = make_feed(config, view, data_key, strategy)
    eval_batches = _eval_batches(view, config, strategy)

    create = functools.partial(create_train_state, model, task, tx)
    abstract_state = _eval_shape_on_data(config, model, feed.example_batch, create, feed.example_batch, init_key)
    bound_train_step = functools.partial(
        train_step,
        model=model,
        task=task,
        tx=tx,
        accumulate_steps=config.train.accumulate_steps,
        compute_dtype=config.train.compute_dtype,
        remat=config.train.remat,
        skip_nonfinite=config.train.on_nonfinite == "skip",
        **strategy.step_options(),
    )

    def loop_step(state: TrainState, sums: dict, *feed_args: Any) -> tuple[TrainState, dict]:
        batch = strategy.constrain_batch(feed.select_batch(state.step, *feed_args))
        state, metrics = bound_train_step(state, batch, jax.random.fold_in(dropout_key, state.step))
        return state, jax.tree.map(jnp.add, sums, metrics)

    # The train step's metrics are the task's, plus `skipped_steps` with on_nonfinite=skip; their shapes come from
    # an eval step, which needs no collective axis (a pmap axis exists only inside pmap).
    single_eval_step = functools.partial(eval_step, model=model, task=task)
    metric_shapes = _eval_shape_on_data(
        config, model, feed.example_batch, single_eval_step, abstract_state, feed.example_batch
    )
    zero_metrics = jax.tree.map(lambda shape: np.zeros(shape.shape, shape.dtype), metric_shapes)
    if config.train.on_nonfinite == "skip":
        zero_metrics["skipped_steps"] = np.zeros((), np.float32)
    _check_metric_keys(config, logged_metrics(zero_metrics, task, view.eval_name))
    return Experiment(
        config=config,
        model=model,
        task=task,
        view=view,
        feed=feed,
        strategy=strategy,
        schedule=make_schedule(config.optimizer, config.train.num_steps),
        eval_batches=eval_batches,
        abstract_state=abstract_state,
        loop_step=strategy.compile_step(loop_step, strategy.state_shardings(abstract_state)),
        evaluate_batch=strategy.compile_eval(
            functools.partial(eval_step, model=model, task=task, **strategy.step_options())
        ),
        zero_metrics=zero_metrics,
        notes=notes,
        create_state=lambda: strategy.init_state(create, feed.example_batch, init_key),
    )


def _eval_shape_on_data(
    config: ml_collections.ConfigDict, model: nn.Module, batch: dict[str, Any], function: Callable[..., Any], *args: Any
) -> Any:
    """`jax.eval_shape(function, *args)` where `function` applies `model` to the data's `batch`. A model that
    cannot take the data's batches is a ConfigError naming the model (and the class whose docstring says what it
    takes), the dataset and the batch's shapes, not the traceback of a layer deep inside."""
    try:
        return jax.eval_shape(function, *args)
    except JaxmodelsError:
        raise
    except Exception as error:  # whatever the model's layers raise on inputs of the wrong shape or type
        raise _does_not_fit(config, model, batch, error) from None


def _does_not_fit(
    config: ml_collections.ConfigDict, model: nn.Module, batch: dict[str, Any], error: Exception
) -> ConfigError:
    """The error for a model that fails on the data's batches: the model with its sizes, the data with its
    batch shapes, and what failed."""
    shapes = ", ".join(f"{key} {value.dtype}{list(value.shape)}" for key, value in batch.items())
    arguments = sorted(config_lib.model_arguments(config).items())
    sizes = ", ".join(f"{key}={value}" for key, value in arguments if config_lib.is_int(value))
    return ConfigError(
        f"model {config.model.name!r} ({type(model).__module__}.{type(model).__name__}{f': {sizes}' if sizes else ''}) "
        f"does not fit the data {config.data.name!r} ({config.task.name} task): its batches are {shapes}, on which "
        f"the model fails ({type(error).__name__}: {first_line(error)}); "
        "choose a model made for this data (config key model.name) or other data (data.name)"
    )


# What the train loop logs besides the task's metrics (jaxmodels.loop), at every log step.
LOOP_METRICS = ("train/learning_rate", "train/steps_per_second")


def logged_metrics(zero_metrics: dict[str, Any], task: Task, eval_name: str) -> list[str]:
    """The keys of a metrics.jsonl row at an eval step: the task's train and eval metrics and the loop's own."""
    sums = {key: value for key, value in zero_metrics.items() if key != "skipped_steps"}
    task_metrics = list(summarize({**sums, "count": np.ones(())}, task))  # one example: every average exists
    extra = ["train/skipped_steps"] if "skipped_steps" in zero_metrics else []
    return [
        *(f"train/{key}" for key in task_metrics),
        *extra,
        *LOOP_METRICS,
        *(f"{eval_name}/{key}" for key in task_metrics),
    ]


def _check_metric_keys(config: ml_collections.ConfigDict, metrics: list[str]) -> None:
    """ConfigError before training if `checkpoint.best_metric` (with `keep_best`) or `early_stopping.metric`
    is no metric the run logs."""
    named = {"early_stopping.metric": config.early_stopping.metric}
    if config.checkpoint.keep_best:
        named["checkpoint.best_metric"] = config.checkpoint.best_metric
    for key, metric in named.items():
        if metric and metric not in metrics:
            close = difflib.get_close_matches(metric, metrics, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"config key {key!r} is {metric!r}, not a metric of this run; choose one of {', '.join(metrics)}.{hint}"
            )


def model_arguments(config: ml_collections.ConfigDict, view: views.DataView) -> tuple[dict[str, Any], list[str]]:
    """The config's model arguments, completed with the sizes the data fixes (classes, vocabulary).

    A size variant (e.g. gpt2_small) sets its published sizes over the config's, and a note says so; the
    resolved sizes are written back into `config.model`, so the saved config names the model that was built.
    A data size the config leaves out is filled in; one it sets must agree with the data.
    """
    arguments, notes = registry.resolve_arguments(config.model.name, config_lib.model_arguments(config))
    for key, value in arguments.items():
        if config.model.get(key) != value:
            config.model[key] = value
    accepted = registry.model_fields(config.model.name)
    for key, size in view.model_sizes.items():
        if key not in accepted:
            continue
        if key not in arguments:
            arguments[key] = size
            if registry.variant_sizes(config.model.name):  # a published size: say what differs from the paper's
                notes.append(f"model {config.model.name} takes {key}={size} from the data {config.data.name!r}")
        elif arguments[key] != size:
            raise ConfigError(
                f"config key model.{key}={arguments[key]} does not match the data: {config.data.name!r} "
                f"({config.task.name} task) has {key} {size}; set --config.model.{key}={size} or leave it out"
            )
    return arguments, notes


def _eval_batches(
    view: views.DataView, config: ml_collections.ConfigDict, strategy: parallel.Strategy
) -> list[dict[str, Any]] | StreamedEvalBatches:
    """The padded eval batches, every process running as many: all placed now for a split held in memory, or, for
    a streamed one, read and placed batch by batch at each evaluation (the same batches, so the same metrics)."""
    read_batches = functools.partial(
        pipeline.padded_eval_batches,
        view.eval_examples,
        config.data.eval_batch_size // jax.process_count(),
        _eval_batches_per_process(view, config),
    )
    if isinstance(view.eval_examples, pipeline.StreamedExamples):
        return StreamedEvalBatches(read_batches, strategy.place_batch)
    return [strategy.place_batch(batch) for batch in read_batches()]


def _eval_batches_per_process(view: views.DataView, config: ml_collections.ConfigDict) -> int:
    """Eval batches each process runs: enough for the largest shard, the same on every process."""
    local = len(next(iter(view.eval_examples.values())))
    largest = local if jax.process_count() == 1 else int(np.max(multihost_utils.process_allgather(local)))
    per_process = max(config.data.eval_batch_size // jax.process_count(), 1)
    return max(-(-largest // per_process), 1)


def make_feed(
    config: ml_collections.ConfigDict, view: views.DataView, data_key: jax.Array, strategy: parallel.Strategy
) -> ResidentFeed | GrainFeed:
    """The train feed `data.loader` asks for: the split resident on the device, or a Grain pipeline.

    Both read the same examples in the same order (the epoch permutations of `data_key`), so the loader changes
    speed and memory, never the run.
    """
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
        return GrainFeed(dataset, strategy, workers=config.data.workers)
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
        data_key=data_key,
        shuffle=config.data.shuffle,
        process_index=process_index,
        process_count=process_count,
        threads=config.data.prefetch_threads,
        buffer=config.data.prefetch_buffer,
    )
    return GrainFeed(dataset, strategy, workers=config.data.workers)
