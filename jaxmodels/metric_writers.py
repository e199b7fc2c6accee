"""Where metrics go: `<workdir>/metrics.jsonl`, TensorBoard event files, and the console.

Only process 0 writes, so a multi-host run logs once. On resume from step S, records after S
are dropped from metrics.jsonl (and TensorBoard purges them), so the log of a resumed run
equals the log of an unbroken one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


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
    """Appends `{"step": ..., "train/loss": ...}` records to metrics.jsonl and TensorBoard."""

    def __init__(self, workdir: Path, resume_step: int):
        self.enabled = jax.process_index() == 0
        self.path = workdir / "metrics.jsonl"
        self._tensorboard = None
        if not self.enabled:
            return
        self._truncate_after(resume_step)
        from tensorboardX import SummaryWriter  # imported lazily: it loads protobuf, ~0.3 s

        self._tensorboard = SummaryWriter(str(workdir / "tensorboard"), purge_step=resume_step + 1)

    def _truncate_after(self, step: int) -> None:
        """Keeps the readable records up to `step`, byte for byte; drops later and unreadable lines."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_bytes().splitlines() if _step_of(line) <= step]
        self.path.write_bytes(b"".join(line + b"\n" for line in kept))

    def write(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as log:
            log.write(json.dumps({"step": step, **scalars}) + "\n")
        for key, value in scalars.items():
            self._tensorboard.add_scalar(key, value, step)

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()


def _step_of(line: bytes) -> float:
    """The step of a metrics.jsonl record; infinity (dropped on resume) for an unreadable line."""
    row = _parse_row(line)
    return float("inf") if row is None else row["step"]


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
