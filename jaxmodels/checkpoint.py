"""Orbax checkpoints of a run: save, keep, restore, and set aside what cannot be read.

A checkpoint `<workdir>/checkpoints/<step>/` holds, as items of one Orbax composite:
  state   the TrainState (step, params, optimizer state, model state such as batch statistics)
  data    the Grain iterator's position (streamed data only; resident data is a function of the step)
  metric_sums  the train-metric sums accumulated since the last log line (so a resumed log equals an unbroken
          one), as JSON; checkpoints written before this layout hold them in `loop`, which is still read
  config  the resolved config that wrote it (JSON)
The dropout RNG needs no saving: it is `fold_in(key(seed), step)`, recomputed from the restored step.

Saves are asynchronous: the train loop only dispatches an on-device copy of the state (no host sync) and
records the data iterator's position; one background thread hands the copy to Orbax, which writes it with
its own async machinery. Errors of a save surface at the next save, `wait` or `close`. Checkpoints are
kept by two rules at once (Orbax
preservation policies): the last `train.keep_checkpoints`, and with `checkpoint.keep_best` the best K by
`checkpoint.best_metric`. Orbax writes each save into `<step>.orbax-checkpoint-tmp-*` and renames it once
complete (after writing `commit_success.txt`), so a crash mid-save leaves only a temporary dir, which is
never read. Restoring walks back from the newest step: a step dir without the commit marker, one that
fails to read (truncated or garbled files), or a file named like a step (which a save would replace) is
damaged; once an older readable checkpoint is found, the damaged newer ones are moved to
`<workdir>/checkpoints.unusable/` with a warning naming them. When every checkpoint is damaged, nothing
is moved and the run refuses to start over on its own (`CheckpointError`). A readable checkpoint whose
train state has another structure than the config builds (another model, optimizer or data loader) is not
damage: it is a `StateMismatch` naming the config keys that differ from the checkpoint's saved config and
the ways forward, raised before anything is written or moved.
Parameter export and import (for inference and fine-tuning) are in `jaxmodels.params_io`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax import serialization
from orbax.checkpoint import checkpoint_managers as policies

from jaxmodels.absl_compat import flags_marked_parsed
from jaxmodels.background_errors import WithoutWriteFailures, silence_echoes, write_failure_reason
from jaxmodels.config import config_differences
from jaxmodels.errors import CheckpointError, JaxmodelsError
from jaxmodels.files import first_line
from jaxmodels.partial_loading import listed, path_name
from jaxmodels.steps import all_finite


class _WithoutReadOnlyNotice(logging.Filter):
    """Drops Orbax's warnings that a checkpoint directory is opened read-only (eval, export and load do so on
    purpose) and that a checkpoint's `state` item, read alone by export, has no checkpoint-level metadata file
    (an item never has one), and its notice that a damaged item's metadata cannot be read (the CheckpointError
    that follows says so): a warning on every such command is noise."""

    NOTICES = ("Given directory is read only", "Failed to get item metadata from directory")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        item_metadata = message.startswith("Metadata file does not exist") and "/state/" in message
        return not (message.startswith(self.NOTICES) or item_metadata)


logging.getLogger("absl").addFilter(_WithoutReadOnlyNotice())
for _logger in ("absl", "asyncio"):  # Orbax's threads log through absl; its abandoned tasks through asyncio
    logging.getLogger(_logger).addFilter(WithoutWriteFailures())

READ_ATTEMPTS = 5  # listings of the checkpoint dir tried while a train beside a reader removes checkpoints
COMMIT_MARKER = "commit_success.txt"  # Orbax writes it as the last file of a save, before the atomic rename
UNUSABLE_DIR = "checkpoints.unusable"


def leaf_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """{'opt_state/1/0/mu/Dense_0/kernel': shape, ...} of a state tree, tuples and lists alike and empty nodes
    dropped: the form in which Orbax's saved metadata and a state dict (`flax.serialization`) compare."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda node: hasattr(node, "shape"))
    return {path_name(path): tuple(leaf.shape) for path, leaf in leaves}


def describe_mismatch(saved: Any, expected: Any) -> list[str]:
    """Human-readable differences between two state trees (of shapes): missing, extra, reshaped."""
    saved, expected = leaf_shapes(saved), leaf_shapes(expected)
    problems = [
        f"{path} {saved[path]} in the checkpoint vs {shape} now"
        for path, shape in expected.items()
        if path in saved and saved[path] != shape
    ]
    problems += [f"{path} missing from the checkpoint" for path in expected if path not in saved]
    problems += [f"{path} only in the checkpoint" for path in saved if path not in expected]
    return problems


class StateMismatch(CheckpointError):
    """A readable checkpoint whose train state (or data position) does not fit what the config builds."""

    def __init__(self, message: str, *, step: int, part: str):
        super().__init__(message)
        self.step, self.part = step, part


# What each part of the train state is, for messages.
_PARTS = {
    "params": "model parameters",
    "model_state": "model state (e.g. BatchNorm statistics)",
    "opt_state": "optimizer state",
    "data": "data-loader position (a Grain iterator's)",
}


@dataclasses.dataclass(frozen=True)
class Restored:
    """What `Checkpointer.restore_latest` found: the step, the train state and the pending metric sums."""

    step: int
    state: Any
    metric_sums: Any


class Checkpointer:
    """The run's checkpoint directory `<workdir>/checkpoints`, managed by an Orbax CheckpointManager."""

    def __init__(
        self,
        workdir: Path,
        *,
        save_every: int,
        keep: int,
        keep_best: int = 0,
        best_metric: str = "",
        best_mode: str = "max",
        config: ml_collections.ConfigDict | None = None,
        read_only: bool = False,
    ):
        self.save_every = save_every
        self.workdir = Path(workdir).absolute()
        self.directory = self.workdir / "checkpoints"
        self.keep_best, self.best_metric = keep_best, best_metric
        self._config_json = json.loads(config.to_json()) if config is not None else None
        self._last_saved: int | None = None
        best_fn = (lambda metrics: metrics[best_metric]) if keep_best else None
        if keep_best:  # keep a checkpoint if it is among the last `keep` or the best `keep_best`
            keeping = {
                "preservation_policy": policies.AnyPreservationPolicy(
                    [
                        policies.LatestN(n=keep),
                        policies.BestN(
                            get_metric_fn=best_fn,
                            reverse=best_mode == "min",
                            n=keep_best,
                            keep_checkpoints_without_metrics=False,
                        ),
                    ]
                )
            }
        else:
            keeping = {"max_to_keep": None if read_only else keep}
        options = ocp.CheckpointManagerOptions(
            save_interval_steps=0 if read_only else save_every,
            create=not read_only,
            read_only=read_only,
            best_fn=best_fn,
            best_mode=best_mode,
            cleanup_tmp_directories=not read_only,  # leftovers of a save interrupted by a crash
            **keeping,
        )
        handlers = {
            "state": ocp.StandardCheckpointHandler(),
            "data": grain.checkpoint.CheckpointHandler(),
            # A few scalars: JSON needs no device transfer or collective. `loop` is the earlier, array layout.
            "metric_sums": ocp.JsonCheckpointHandler(),
            "loop": ocp.StandardCheckpointHandler(),
            "config": ocp.JsonCheckpointHandler(),
        }
        if jax.process_count() > 1:
            # Orbax's default barrier is a device collective, which can interleave differently with the train
            # step's own cross-process collectives on each process when saves run on a background thread (seen
            # with gloo on CPU: "sync_global_devices name mismatch"); the coordination service's barrier uses no
            # device.
            flags_marked_parsed().experimental_orbax_use_distributed_barrier = True
        silence_echoes()
        for attempt in range(READ_ATTEMPTS):
            try:
                self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
                break
            except FileNotFoundError:  # a step dir removed while Orbax listed them (a train beside a reader)
                if attempt == READ_ATTEMPTS - 1:
                    raise
        self._writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._pending: list[concurrent.futures.Future] = []

    @classmethod
    def from_config(cls, workdir: Path, config: ml_collections.ConfigDict, **kwargs: Any) -> Checkpointer:
        """The checkpointer `config.train` and `config.checkpoint` describe, saving `config` with each step."""
        return cls(
            workdir,
            save_every=config.train.checkpoint_every,
            keep=config.train.keep_checkpoints,
            keep_best=config.checkpoint.keep_best,
            best_metric=config.checkpoint.best_metric,
            best_mode=config.checkpoint.best_mode,
            config=config,
            **kwargs,
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def best_step(self) -> int | None:
        """The kept step with the best `best_metric` (None without `keep_best` or before the first eval)."""
        # With a best_fn, Orbax ranks only the checkpoints saved with metrics and gives None if there are none.
        return self._manager.best_step() if self.keep_best else None

    def should_save(self, step: int, evaluated: bool = False) -> bool:
        """Whether `step` falls on the save interval, or is an evaluation while the best are kept."""
        return step % self.save_every == 0 or (evaluated and self.keep_best > 0)

    def saved_config_file(self, step: int) -> Path:
        """Where checkpoint `step` keeps the config that wrote it (the `config` item's JsonCheckpointHandler file)."""
        return self.directory / str(step) / "config" / "metadata"

    def saved_config(self, step: int) -> dict[str, Any]:
        """The config (as JSON) that wrote checkpoint `step`; {} for checkpoints saved without one."""
        try:
            saved = json.loads(self.saved_config_file(step).read_text())
        except (OSError, ValueError):
            return {}
        return saved if isinstance(saved, dict) else {}

    def check_compatible(self, step: int, abstract_state: Any, *, needs_data: bool = False) -> None:
        """Raises `StateMismatch` if checkpoint `step` does not fit `abstract_state` (and, with `needs_data`, a
        Grain iterator) exactly. Reading the checkpoint's metadata may raise anything a damaged file raises."""
        saved = self._manager.item_metadata(step)["state"].tree
        expected = serialization.to_state_dict(abstract_state)
        for part in ("params", "model_state", "opt_state"):
            problems = describe_mismatch(saved.get(part, {}), expected[part])
            if problems:
                examples = "; ".join(problems[:2])
                raise self._mismatch(step, part, f"{len(problems)} arrays, e.g. {examples}")
        if needs_data and not (self.directory / str(step) / "data").is_dir():
            raise self._mismatch(step, "data", "the checkpoint holds none: it was written with resident data")

    def config_changes(self, step: int) -> list[str] | None:
        """How this run's config differs from the one that wrote checkpoint `step` (None: it saved none)."""
        saved = self.saved_config(step)
        return config_differences(saved, self._config_json or {}) if saved else None

    def restore_data_position(self, step: int, data_iterator: grain.DatasetIterator) -> None:
        """Moves `data_iterator` to where it was at checkpoint `step` (StateMismatch if the step holds none)."""
        if not (self.directory / str(step) / "data").is_dir():
            raise self._mismatch(step, "data", "the checkpoint holds none: it was written with resident data")
        self._manager.restore(step, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(data_iterator)))

    def _mismatch(self, step: int, part: str, details: str) -> StateMismatch:
        """The error for checkpoint `step` whose `part` does not fit: what differs and the ways forward."""
        differences = self.config_changes(step)
        changed = (
            f"config keys that differ from the checkpoint's: {listed(differences)}"
            if differences
            else "the checkpoint holds no config to compare with"
            if differences is None
            else "its saved config is the same"
        )
        ways = [f"go back to the checkpoint's settings (its config: {self.saved_config_file(step)})"]
        if part == "opt_state":
            ways.append(
                "or keep its parameters here with a fresh optimizer state: --config.checkpoint.reset_optimizer=True"
            )
        ways.append(
            f"or start a new run from its parameters: a new --workdir with --config.checkpoint.init_from={self.workdir}"
        )
        return StateMismatch(
            f"the checkpoint at step {step} in {self.directory} does not fit this config, in its {_PARTS[part]} "
            f"({details}); {changed}. Nothing was changed. Ways forward: {'; '.join(ways)}",
            step=step,
            part=part,
        )

    def restore(
        self, step: int, abstract_state: Any, data_iterator: grain.DatasetIterator | None, metric_sums: Any = None
    ) -> Any:
        """Restores train state (and the data iterator's position, in place) from checkpoint `step`.

        With `metric_sums` (a template) returns `(state, metric_sums)`; checkpoints without them give zeros.
        """
        self.check_compatible(step, abstract_state, needs_data=data_iterator is not None)
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        stored = {item for item in ("metric_sums", "loop") if (self.directory / str(step) / item).is_dir()}
        if metric_sums is not None and "metric_sums" in stored:
            items["metric_sums"] = ocp.args.JsonRestore()
        elif metric_sums is not None and "loop" in stored:
            items["loop"] = ocp.args.StandardRestore({"metric_sums": abstract_like(metric_sums)})
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        if metric_sums is None:
            return restored["state"]
        if "metric_sums" in items:
            saved = restored["metric_sums"]
        elif "loop" in items:
            saved = restored["loop"]["metric_sums"]
        else:
            saved = metric_sums
        return restored["state"], {  # a sum the checkpoint lacks (e.g. train.on_nonfinite switched on) starts at 0
            key: np.asarray(saved.get(key, zero), np.asarray(zero).dtype) for key, zero in metric_sums.items()
        }

    def restore_latest(
        self,
        abstract_state: Any,
        data_iterator: grain.DatasetIterator | None,
        metric_sums: Any,
        *,
        warn: Callable[[str], None],
        set_aside: bool = True,
    ) -> Restored | None:
        """The newest complete, readable checkpoint (None if the run has none).

        Damaged (incomplete or unreadable) step dirs newer than it are reported through `warn` and, with
        `set_aside`, moved to `<workdir>/checkpoints.unusable/` (never deleted), so the run can save those steps
        again. If every checkpoint is damaged, raises CheckpointError and moves nothing: starting over is the
        user's choice. A checkpoint that does not fit the config raises `StateMismatch`: that is a config change,
        not damage.
        """
        for _ in range(READ_ATTEMPTS):
            restored, damaged, removed = self._walk_back(abstract_state, data_iterator, metric_sums, set_aside)
            if restored is not None or not removed:
                break
            self.reload()  # a running train removed checkpoints while they were read: list them again
        for damaged_path, problem in damaged if restored is not None else ():
            moved = self._set_aside(damaged_path) if set_aside else None
            where = f"moved to {moved}" if moved else "skipped"
            warn(f"warning: checkpoint {damaged_path} is {problem}; {where}; falling back to step {restored.step}")
        if restored is None and damaged:
            problems = listed([f"{path.name} is {problem}" for path, problem in damaged])
            raise CheckpointError(
                f"no checkpoint in {self.directory} can be read ({problems}); nothing was moved or deleted. "
                "To start over, move that directory away or choose a new --workdir"
            )
        return restored

    def _walk_back(
        self, abstract_state: Any, data_iterator: grain.DatasetIterator | None, metric_sums: Any, set_aside: bool
    ) -> tuple[Restored | None, list[tuple[Path, str]], bool]:
        """From the newest step back: the first readable checkpoint (or None), the damaged ones newer than it, and
        whether a step dir disappeared while it was read (only readers, with `set_aside` off, see that: a train
        beside them removes checkpoints beyond train.keep_checkpoints)."""
        damaged: list[tuple[Path, str]] = []
        strays, removed = self._stray_files(), False
        for step in sorted({*self.all_steps(), *strays}, reverse=True):
            path = self.directory / str(step)
            if step in strays:  # a save at this step would delete it without a word
                damaged.append((path, "a file, not a checkpoint directory"))
                continue
            try:
                if not (path / COMMIT_MARKER).is_file():
                    raise _Incomplete
                restored = self.restore(step, abstract_state, data_iterator, metric_sums)
            except StateMismatch:
                raise
            except Exception as error:  # _Incomplete, or anything the readers raise on damaged files
                if not set_aside and removed_meanwhile(path):
                    removed = True
                    continue
                if isinstance(error, _Incomplete):
                    damaged.append((path, f"incomplete (no {COMMIT_MARKER}: a save was interrupted)"))
                    continue
                silence_echoes(reported=True)  # reads still pending call back into Orbax's closed event loop
                damaged.append((path, f"unreadable ({type(error).__name__}: {first_line(error)})"))
                continue
            state, sums = restored if metric_sums is not None else (restored, None)
            return Restored(step, state, sums), damaged, removed
        return None, damaged, removed

    def reload(self) -> None:
        """Lists the checkpoint dir again (steps saved or removed since by another process)."""
        for attempt in range(READ_ATTEMPTS):
            try:
                self._manager.reload()
                return
            except FileNotFoundError:  # a step dir removed while Orbax listed them
                if attempt == READ_ATTEMPTS - 1:
                    raise

    def _stray_files(self) -> set[int]:
        """Steps of the files (not directories) in the checkpoint directory named like a step, e.g. `50`."""
        if not self.directory.is_dir():
            return set()
        return {int(path.name) for path in self.directory.iterdir() if path.name.isdigit() and not path.is_dir()}

    def check_free_space(self, step: int) -> None:
        """CheckpointError if the workdir's filesystem has less room than checkpoint `step` takes: the next save
        would fail there, after a run had appended to the workdir's logs for nothing."""
        size = sum(path.stat().st_size for path in (self.directory / str(step)).rglob("*") if path.is_file())
        free = shutil.disk_usage(self.directory).free
        if free < size:
            raise CheckpointError(
                f"the filesystem of {self.workdir} has {free / 2**20:.2f} MiB free, less than one checkpoint takes "
                f"({size / 2**20:.2f} MiB at step {step}); nothing was changed. Free disk space and run the same "
                f"command again: it resumes from step {step}"
            )

    def _set_aside(self, path: Path) -> Path | None:
        if jax.process_index() != 0:
            return None
        target = self.workdir / UNUSABLE_DIR / path.name
        suffix = 1
        while target.exists():
            suffix += 1
            target = self.workdir / UNUSABLE_DIR / f"{path.name}-{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
        self.reload()
        return target

    def save(
        self,
        step: int,
        state: Any,
        data_iterator: grain.DatasetIterator | None,
        *,
        metric_sums: Any = None,
        metrics: dict[str, float] | None = None,
        force: bool = False,
    ) -> bool:
        """Saves asynchronously if `step` is due (or `force`); training continues meanwhile.

        `metrics` (eval results) rank the checkpoint for `keep_best`; non-finite ones are not recorded, so a
        diverged state is never the best. A state holding NaN or infinity is refused with an error.
        """
        self._raise_failed_saves()
        if step == self._last_saved or not (force or self._manager.should_save(step)):
            return False
        if self.keep_best and metrics is not None and self.best_metric not in metrics:
            raise CheckpointError(
                f"checkpoint.best_metric {self.best_metric!r} is not a metric of this run; "
                f"choose one of {', '.join(sorted(metrics))}"
            )
        ranked = None
        if self.keep_best and metrics is not None and all(math.isfinite(value) for value in metrics.values()):
            ranked = {key: float(value) for key, value in metrics.items()}
        # Only dispatches here (the loop donates `state` and the sums to its next step, hence the copy);
        # the iterator's position is read now, since the iterator moves on.
        state, metric_sums = _copy((state, metric_sums))
        finite = _all_finite(state)
        data = _IteratorPosition(data_iterator) if data_iterator is not None else None
        while len(self._pending) >= 2:  # at most one save queued behind the one being written
            self._result(self._pending.pop(0))
        self._pending.append(
            self._writer.submit(self._write_or_explain, step, state, finite, data, metric_sums, ranked)
        )
        self._last_saved = step
        return True

    def _write_or_explain(self, step: int, *args: Any) -> None:
        """`_write`, with a failed write (disk full, workdir gone read-only) turned into a one-line error."""
        try:
            self._write(step, *args)  # Orbax's async write of an earlier step may fail here, or in `wait`
        except JaxmodelsError:
            raise
        except Exception as error:
            raise _SaveFailed(step, error) from None

    def _result(self, future: concurrent.futures.Future) -> None:
        """The outcome of a save on the background thread: a failed write becomes its one-line CheckpointError,
        written once Orbax's other saves have ended, so that it names the checkpoint that really is the last."""
        try:
            future.result()
        except _SaveFailed as failed:
            with contextlib.suppress(Exception):
                self._manager.wait_until_finished()
            raise self._save_failed(failed.step, failed.error) from None

    def _save_failed(self, step: int, error: BaseException) -> CheckpointError:
        silence_echoes(reported=True)  # the failed write's echoes from Orbax's and TensorBoard's threads
        reason = write_failure_reason(error) or f"{type(error).__name__}: {first_line(error)}"
        return CheckpointError(
            f"saving the checkpoint at step {step} in {self.directory} failed ({reason}); "
            f"{self.last_complete(excluding=step)}. Free disk space (or make the workdir "
            "writable) and run the same command again to resume from it"
        )

    def last_complete(self, excluding: int | None = None) -> str:
        """'the last complete checkpoint is step N' (a committed one, other than `excluding`), for messages."""
        committed = [
            s for s in self.all_steps() if s != excluding and (self.directory / str(s) / COMMIT_MARKER).is_file()
        ]
        return f"the last complete checkpoint is step {committed[-1]}" if committed else "no checkpoint is complete"

    def _write(self, step: int, state: Any, finite: jax.Array, data: Any, metric_sums: Any, ranked: Any) -> None:
        """Runs on the background thread: refuses a non-finite state, else starts Orbax's (async) save."""
        if not bool(finite):
            last = self.latest_step()
            where = f"the last good checkpoint is step {last} in {self.directory}" if last else "no checkpoint exists"
            raise JaxmodelsError(
                f"training diverged: the train state at step {step} holds NaN or infinite values and was not saved; "
                f"{where}. Lower optimizer.learning_rate, set optimizer.grad_clip_norm (resuming with "
                "checkpoint.reset_optimizer=True), or train.on_nonfinite=skip"
            )
        items = {"state": ocp.args.StandardSave(state)}
        if data is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data)
        if metric_sums is not None:  # float32 -> Python float -> JSON is exact, and so is the way back
            items["metric_sums"] = ocp.args.JsonSave({key: np.asarray(v).tolist() for key, v in metric_sums.items()})
        if self._config_json is not None:
            items["config"] = ocp.args.JsonSave(self._config_json)
        self._manager.save(step, args=ocp.args.Composite(**items), metrics=ranked, force=True)

    def _raise_failed_saves(self) -> None:
        for future in [f for f in self._pending if f.done()]:
            self._pending.remove(future)
            self._result(future)  # re-raises the save's error here, on the train loop's thread

    def saving_in_progress(self) -> bool:
        """Whether an asynchronous save is still being written."""
        return any(not f.done() for f in self._pending) or self._manager.is_saving_in_progress()

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are committed; raises the error of one that failed."""
        pending, self._pending = self._pending, []
        for future in pending:
            self._result(future)
        try:
            self._manager.wait_until_finished()
        except Exception as error:
            raise self._save_failed(self._last_saved or 0, error) from None

    def close(self) -> None:
        """Waits for pending saves to finish, then releases the manager; raises the first error (one)."""
        try:
            self.wait()
        except BaseException:
            self._release(raising=False)  # `wait`'s error is the one to report
            raise
        self._release(raising=True)

    def _release(self, raising: bool) -> None:
        self._writer.shutdown(wait=True)
        try:
            self._manager.close()  # re-raises the error of a failed save, which `wait` may have raised already
        except Exception as error:
            if raising:
                raise self._save_failed(self._last_saved or 0, error) from None


class _SaveFailed(Exception):
    """A save of `step` that failed with `error` on the background thread (reported by `Checkpointer._result`)."""

    def __init__(self, step: int, error: BaseException):
        super().__init__(step, error)
        self.step, self.error = step, error


class _Incomplete(Exception):
    """A step dir without the commit marker."""


def removed_meanwhile(path: Path) -> bool:
    """Whether the step dir `path` is gone, or goes within a moment: removed by a train that keeps only its last
    checkpoints, not damaged. A removal takes a while, hence the moment."""
    for _ in range(5):
        if not path.exists():
            return True
        time.sleep(0.02)
    return False


class _IteratorPosition:
    """A Grain iterator's position, read at save time, in the form Grain's checkpoint handler writes."""

    def __init__(self, iterator: grain.DatasetIterator):
        self._state = json.dumps(iterator.get_state(), indent=4).encode()

    def get_state(self) -> bytes:
        return self._state


def _copy(tree: Any) -> Any:
    return jax.tree.map(lambda leaf: leaf.copy(), tree)


_all_finite = jax.jit(all_finite)


def abstract_like(state: Any) -> Any:
    """ShapeDtypeStructs (with shardings) of `state`: the restore target."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
