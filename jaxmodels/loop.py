"""The train loop: step, evaluate, log and checkpoint an `Experiment` (jaxmodels.experiment) in a workdir.

Written once for every model family. The loop only dispatches compiled steps: metrics
accumulate on the device and are read back every `train.log_every` steps, so nothing forces
a device-to-host sync per step. Re-running the same command on the same workdir resumes from
its latest checkpoint and ends bitwise equal to an unbroken run.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmodels import config as config_lib
from jaxmodels.checkpoint import Checkpointer, Restored, StateMismatch, abstract_like
from jaxmodels.data.views import check_data_unchanged, keep_data_fingerprint, keep_tokenizer
from jaxmodels.early_stopping import EarlyStopping, Stopper
from jaxmodels.errors import JaxmodelsError
from jaxmodels.experiment import Experiment
from jaxmodels.metric_writers import MetricWriter, ProgressDisplay, read_history
from jaxmodels.optim import schedules_at
from jaxmodels.params_io import init_from_pretrained, read_variables
from jaxmodels.preemption import Preempted, PreemptionGuard
from jaxmodels.steps import TrainState
from jaxmodels.tasks import Task, summarize

CONFIG_CHANGES = "config_changes.jsonl"  # one row per resume under a changed config


def train(
    experiment: Experiment, workdir: Path, stoppers: Sequence[Stopper] = (), guard: PreemptionGuard | None = None
) -> tuple[TrainState, dict[str, float]]:
    """Trains `experiment` in `workdir` (resuming if it holds a checkpoint); returns the final state (canonical:
    one logical copy) and the final eval metrics.

    `stoppers` are consulted after each evaluation, after `config.early_stopping`'s own: the first to say stop
    ends the run as early stopping does (a checkpoint at that step, a line saying why). A sweep's pruning is one.

    SIGTERM or Ctrl-C saves a checkpoint at the current step and raises `Preempted`; calling again resumes.
    `guard` is the caller's, entered before the experiment was built (a signal may come while data loads).
    """
    config = experiment.config
    strategy = experiment.strategy
    compiling = experiment.compile_step_ahead()  # XLA compiles the step while the state is created or restored
    checkpointer = Checkpointer.from_config(workdir, config)
    notes = list(experiment.notes)  # printed once the progress display exists
    try:
        if checkpointer.latest_step() is not None:
            check_data_unchanged(experiment.view, workdir)  # before anything is restored or written
        restored = _restore_or_reset(experiment, checkpointer, workdir, notes)
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
        if restored and start < config.train.num_steps:
            checkpointer.check_free_space(start)  # a full disk: refused before anything in the workdir changes
        if start < config.train.num_steps or not (workdir / "config.json").exists():
            # Only now: a refused checkpoint keeps the config.json that wrote it, and so does a finished run
            # that is only evaluated again.
            _write_run_files(workdir, experiment)
        compiling.result()  # the step's compile error, if any, is raised here, before the loop starts
        writer = MetricWriter(workdir, resume_step=start, log=notes.append)
    except BaseException:
        _close_after_failure(checkpointer)
        raise
    past = [row for row in read_history(workdir) if row.get("step", 0) <= start]
    early_stopping = EarlyStopping.from_config(config, past)
    stoppers = [*([early_stopping] if early_stopping else []), *stoppers]
    progress = ProgressDisplay(config.train.num_steps, start, enabled=config.train.progress_bar)
    for note in notes:
        progress.log(note)
    try:
        with contextlib.nullcontext(guard) if guard is not None else PreemptionGuard() as guard, progress:
            state, final = _run(experiment, state, sums, start, checkpointer, writer, progress, guard, stoppers)
    except BaseException:
        _close_after_failure(checkpointer, writer)
        raise
    checkpointer.close()
    writer.close()
    return experiment.strategy.canonical_state(state), final


def _close_after_failure(*closing: Checkpointer | MetricWriter) -> None:
    """Closes what the run opened while its error is on the way: that error is the one reported, not a second
    one that closing raises (the same failed save again, or a full disk refusing TensorBoard's last flush)."""
    for item in closing:
        with contextlib.suppress(Exception):
            item.close()


def _restore_or_reset(
    experiment: Experiment, checkpointer: Checkpointer, workdir: Path, notes: list[str]
) -> Restored | None:
    """The latest checkpoint of the run (None if it has none).

    A checkpoint whose optimizer state does not fit the config (another optimizer, clipping switched on) is
    a `StateMismatch`, unless `checkpoint.reset_optimizer` asks to keep its parameters and model state with a
    fresh optimizer state. A resume under a changed config is recorded in `<workdir>/config_changes.jsonl`.
    """
    strategy, feed = experiment.strategy, experiment.feed
    fresh = strategy.canonical_state(experiment.initial_state)
    try:
        restored = checkpointer.restore_latest(
            abstract_like(fresh), feed.checkpoint_item, experiment.zero_metrics, warn=notes.append
        )
        optimizer_state = "restored"
    except StateMismatch as mismatch:
        if not (mismatch.part == "opt_state" and experiment.config.checkpoint.reset_optimizer):
            raise
        step = mismatch.step
        variables = read_variables(workdir, step)
        state = fresh.replace(
            step=jnp.asarray(step, fresh.step.dtype),
            params=variables["params"],
            model_state=variables.get("model_state") or fresh.model_state,
            opt_state=schedules_at(fresh.opt_state, step),
        )
        if feed.checkpoint_item is not None:
            checkpointer.restore_data_position(step, feed.checkpoint_item)
        restored = Restored(step, strategy.place_state(state), experiment.zero_metrics)
        optimizer_state = "re-initialised (checkpoint.reset_optimizer)"
        notes.append(f"kept the parameters and model state of step {step} with a fresh optimizer state")
    if restored and restored.step < experiment.config.train.num_steps:
        _record_config_changes(workdir, restored.step, checkpointer.config_changes(restored.step), optimizer_state)
    return restored


def _record_config_changes(workdir: Path, step: int, changes: list[str] | None, optimizer_state: str) -> None:
    """Appends a resume under a changed config to `<workdir>/config_changes.jsonl` (the run's history)."""
    if not changes or jax.process_index() != 0:
        return
    time_now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    row = {"step": step, "time": time_now, "changes": changes, "optimizer_state": optimizer_state}
    with (workdir / CONFIG_CHANGES).open("a") as log:
        log.write(json.dumps(row) + "\n")


def _write_run_files(workdir: Path, experiment: Experiment) -> None:
    """config.json and, for text data, the tokenizer, which eval, sample and later runs reuse, and for user files
    their fingerprint, which a resume checks (process 0)."""
    if jax.process_index() == 0:
        (workdir / "config.json").write_text(config_lib.to_json(experiment.config))
        keep_tokenizer(experiment.view)
        keep_data_fingerprint(experiment.view, workdir)


def _run(
    experiment: Experiment,
    state: TrainState,
    sums: dict[str, Any],
    start: int,
    checkpointer: Checkpointer,
    writer: MetricWriter,
    progress: ProgressDisplay,
    guard: PreemptionGuard,
    stoppers: Sequence[Stopper],
) -> tuple[TrainState, dict[str, float]]:
    """Steps from `start` to `train.num_steps`, logging, evaluating and checkpointing on schedule, or until
    one of `stoppers` ends the run early.

    `sums` are the train-metric sums since the last log line (restored with a checkpoint).
    """
    train_cfg, feed = experiment.config.train, experiment.feed
    sums = experiment.strategy.put_replicated(sums)
    final: dict[str, float] = {}
    stopped = next((stopper for stopper in stoppers if stopper.should_stop), None)
    if start >= train_cfg.num_steps or stopped:
        if start < train_cfg.num_steps:
            progress.log(f"this run stopped early at step {start}: {stopped.reason()}")
        elif start > train_cfg.num_steps:
            progress.log(
                f"nothing to train: the checkpoint's step {start} is past train.num_steps={train_cfg.num_steps}; "
                f"evaluating step {start} (to train on, set train.num_steps above {start})"
            )
        return state, experiment.evaluate(state)
    if guard.stop_at(start, agree_now=True):  # signalled while the run was built: nothing new to save
        raise Preempted(start, guard.signal_name, checkpointer.directory, saved=False)
    window_start, window_step = time.perf_counter(), start
    for step in range(start, train_cfg.num_steps):
        step_fn = experiment.first_step if step == start else experiment.loop_step
        state, sums = step_fn(state, sums, *feed.args_for_step(step))
        done = step + 1
        experiment.strategy.pace(done, state.step)  # several CPU devices: bound the dispatched, unfinished steps
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
            final = experiment.evaluate(state)
            scalars.update(final)
            progress.log(f"step {done}: " + ", ".join(f"{key} {value:.4g}" for key, value in scalars.items()))
        try:
            writer.write(done, scalars)
        except OSError as error:  # a full disk may refuse the log line before it refuses a checkpoint
            raise JaxmodelsError(
                f"cannot append step {done} to {writer.path} ({error.strerror or error}); "
                f"{checkpointer.last_complete()}. Free disk space (or make the workdir writable) and run the same "
                "command again to resume from it"
            ) from None
        progress.update(done, scalars.get("train/loss"), rate)
        # Every stopper sees every evaluation (a list, not any(): one stopping must not hide it from the others).
        stopping_early = [stopper for stopper in stoppers if stopper.update(done, final)] if eval_due else []
        if save_due or stopping_early:  # only states whose loss was just checked finite are saved
            metrics = scalars if eval_due else None  # ranks the checkpoint when checkpoint.keep_best is set
            canonical = experiment.strategy.canonical_state(state)
            checkpointer.save(done, canonical, feed.checkpoint_item, metric_sums=experiment.strategy.to_host(sums),
                              metrics=metrics, force=True)  # fmt: skip
        if stopping_early:
            progress.log(f"stopped early at step {done}: {stopping_early[0].reason()}")
            return state, final
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
        "Lower optimizer.learning_rate or set optimizer.grad_clip_norm (with checkpoint.reset_optimizer=True to resume "
        "from the last good checkpoint)"
    )
