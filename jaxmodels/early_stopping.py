"""Early stopping: end a run whose eval metric has stopped improving (`config.early_stopping`).

After each evaluation the monitored metric is compared with the best so far; an improvement by more than
`min_delta` resets the count, anything else adds one. After `patience` evaluations without improvement the
run saves a checkpoint and ends normally (exit 0), saying why. The count is a function of the run's
metrics.jsonl, so a resumed run (or a re-run of a stopped one) takes it up exactly where it was.
Keep the best checkpoint with `checkpoint.keep_best` and `checkpoint.best_metric` set to the same metric.

`Stopper` is what the loop asks after each evaluation; `EarlyStopping` is one, a sweep's pruning another.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Protocol

import ml_collections


class Stopper(Protocol):
    """What the train loop consults after each evaluation (jaxmodels.loop.train's `stoppers`)."""

    def update(self, step: int, metrics: dict[str, float]) -> bool:
        """Takes the eval metrics at `step`; True when the run should end there."""
        ...

    @property
    def should_stop(self) -> bool:
        """Whether the run has already been told to end (a resumed run that had stopped stays stopped)."""
        ...

    def reason(self) -> str:
        """Why the run ends, for the line the loop prints."""
        ...


@dataclasses.dataclass
class EarlyStopping:
    """Counts the evaluations since `metric` last improved by more than `min_delta` (in direction `mode`)."""

    metric: str
    mode: str  # 'max' or 'min'
    patience: int
    min_delta: float = 0.0
    best: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0

    @classmethod
    def from_config(
        cls, config: ml_collections.ConfigDict, history: Iterable[dict[str, float]]
    ) -> EarlyStopping | None:
        """The stopper `config.early_stopping` asks for (None when off), replayed over the run's past rows."""
        settings = config.early_stopping
        if not settings.metric:
            return None
        stopper = cls(settings.metric, settings.mode, settings.patience, settings.min_delta)
        for row in history:
            if settings.metric in row:
                stopper.update(int(row["step"]), row)
        return stopper

    def update(self, step: int, metrics: dict[str, float]) -> bool:
        """Takes the evaluation at `step`; True when the run should stop."""
        value = float(metrics[self.metric])
        sign = 1.0 if self.mode == "max" else -1.0
        if math.isfinite(value) and (self.best is None or sign * (value - self.best) > self.min_delta):
            self.best, self.best_step, self.evals_without_improvement = value, step, 0
        else:
            self.evals_without_improvement += 1
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        return self.evals_without_improvement >= self.patience

    def reason(self) -> str:
        best = f"best {self.best:.6g} at step {self.best_step}" if self.best is not None else "never finite"
        return (
            f"{self.metric} has not improved by more than {self.min_delta:g} for {self.evals_without_improvement} "
            f"evaluations ({best}; early_stopping.patience={self.patience})"
        )
