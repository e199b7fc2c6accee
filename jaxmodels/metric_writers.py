"""Where metrics go: `<workdir>/metrics.jsonl`, TensorBoard event files, and the console.

Only process 0 writes, so a multi-host run logs once. On resume from step S, records after S
leave metrics.jsonl for metrics.dropped.jsonl (and TensorBoard purges them), so the log of a resumed
run equals the log of an unbroken one; nothing is ever deleted (see `MetricWriter`).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import jax
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from jaxmodels.errors import JaxmodelsError


def read_history(workdir: Path) -> list[dict[str, float]]:
    """The rows of `<workdir>/metrics.jsonl` in order; unreadable lines (torn by a crash, edited) are skipped."""
    path = Path(workdir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [row for row in map(_parse_row, path.read_bytes().splitlines()) if row is not None]


def _parse_row(line: bytes) -> dict[str, float] | None:
    """A metrics.jsonl record: a JSON object with a numeric `step`; None for anything else (a torn or damaged line,
    bytes that are not UTF-8), which readers skip and a resumed run drops."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):  # ValueError: bad JSON or bad UTF-8
        return None
    if not isinstance(row, dict):
        return None
    step = row.get("step")
    return row if isinstance(step, int | float) and not isinstance(step, bool) and math.isfinite(step) else None


class MetricWriter:
    """Appends `{"step": ..., "train/loss": ...}` records to metrics.jsonl and TensorBoard.

    Opening it on a resume from step S rewrites metrics.jsonl as the history up to S, one row per step in step
    order, and moves every other line, byte for byte, to the end of metrics.dropped.jsonl, saying so through
    `log`: rows logged after S (the run logs them again), rows of a step logged twice (two runs wrote at once;
    the last row of a step is kept), unreadable lines, and a whole history whose checkpoints are gone (S = 0).
    Nothing is ever deleted, and a metrics.jsonl that needs no change is not rewritten.
    """

    def __init__(self, workdir: Path, resume_step: int, log: Callable[[str], None] | None = None):
        self.enabled = jax.process_index() == 0
        self.path = workdir / "metrics.jsonl"
        self._tensorboard = None
        if not self.enabled:
            return
        _keep_history_until(self.path, resume_step, log or (lambda message: print(message, file=sys.stderr)))
        from tensorboardX import SummaryWriter  # imported lazily: it loads protobuf, ~0.3 s

        self._tensorboard = SummaryWriter(str(workdir / "tensorboard"), purge_step=resume_step + 1)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as log:  # an OSError (a full disk) is the caller's to report; a torn line is
            log.write(json.dumps({"step": step, **scalars}) + "\n")  # set aside by the next run
        for key, value in scalars.items():
            self._tensorboard.add_scalar(key, value, step)

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()


DROPPED = "metrics.dropped.jsonl"


def _keep_history_until(path: Path, step: int, log: Callable[[str], None]) -> None:
    """Rewrites the history `path` as its rows up to `step`, one per step; moves the other lines (see
    `MetricWriter`) to metrics.dropped.jsonl in their order. Both files are written before either changes: a full
    disk raises a JaxmodelsError and leaves them as they were."""
    if not path.exists():
        return
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    rows = [_parse_row(line) for line in lines]
    last = {row["step"]: index for index, row in enumerate(rows) if row is not None and row["step"] <= step}
    kept = sorted(last.values(), key=lambda index: rows[index]["step"])
    if kept == list(range(len(lines))):
        return  # nothing to drop, and in order
    dropped = [line for index, line in enumerate(lines) if index not in last.values()]
    _write_both(path, [lines[index] for index in kept], path.with_name(DROPPED), dropped)
    later = [row["step"] for row in rows if row is not None and row["step"] > step]
    twice = sorted({row["step"] for index, row in enumerate(rows) if row and row["step"] <= step and index not in kept})
    unreadable = rows.count(None)
    moved = f"moved to {path.with_name(DROPPED)}"
    if later and step == 0:
        log(
            f"warning: {path} held {_rows(len(later))} (steps {min(later):g} to {max(later):g}) but there is no "
            f"checkpoint to resume from (were the checkpoints deleted?); this run starts at step 0 and its earlier "
            f"history is {moved}"
        )
    elif later:
        log(f"{_rows(len(later))} of {path.name} logged after step {step:g} {moved}; this run logs those steps again")
    if twice:
        log(
            f"warning: {path} held more than one row for steps {', '.join(f'{key:g}' for key in twice)} (did two runs "
            f"write to this workdir at once?); kept the last row of each step, the others {moved}"
        )
    if unreadable:
        lines = "an unreadable line" if unreadable == 1 else f"{unreadable} unreadable lines"
        log(f"warning: {path} held {lines} (torn by a crash or a full disk, or edited); {moved}")


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count} rows"


def _write_both(path: Path, history: list[bytes], dropped_path: Path, dropped: list[bytes]) -> None:
    """Appends `dropped` to `dropped_path` and replaces `path` with `history`, or changes neither."""
    size = dropped_path.stat().st_size if dropped_path.exists() else None
    staged = path.with_name(f".{path.name}.new")
    try:
        staged.write_bytes(b"".join(line + b"\n" for line in history))
        with dropped_path.open("ab") as out:
            out.write(b"".join(line + b"\n" for line in dropped))
        os.replace(staged, path)
    except OSError as error:
        staged.unlink(missing_ok=True)
        if size is None:
            dropped_path.unlink(missing_ok=True)
        else:
            os.truncate(dropped_path, size)
        raise JaxmodelsError(
            f"cannot rewrite {path} for this run ({error.strerror or error}); it is unchanged. Free disk space (or "
            "make the workdir writable) and run the same command again"
        ) from None


class ProgressDisplay:
    """A live progress bar (steps, loss, steps/s) plus one console line per evaluation."""

    def __init__(self, num_steps: int, start_step: int, enabled: bool):
        self.console = Console(stderr=True)
        self.enabled = enabled and jax.process_index() == 0
        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} steps/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.enabled,
        )
        self._task = self._progress.add_task("train", total=num_steps, completed=start_step, loss="-", rate="-")

    def __enter__(self) -> ProgressDisplay:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def update(self, step: int, loss: float | None, steps_per_second: float) -> None:
        shown = "-" if loss is None else f"{loss:.4f}"  # None: every step of the window was skipped
        self._progress.update(self._task, completed=step, loss=shown, rate=f"{steps_per_second:,.0f}")

    def log(self, message: str) -> None:
        if jax.process_index() == 0:
            self.console.print(message, highlight=False, soft_wrap=True)  # one line per message: greppable logs
