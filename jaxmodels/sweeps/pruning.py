"""Pruning: a trial's run reports its eval metric to Optuna after each evaluation and ends when the pruner says so.

`TrialPruning` is a stopper of the train loop (jaxmodels.early_stopping.Stopper): the loop hands it every
evaluation, it calls `trial.report(value, step)` and `trial.should_prune()`, and a pruned run ends as early
stopping ends one, with a checkpoint at that step; the runner then marks the trial PRUNED. The pruner compares
the value with the other trials' values at the same step: the median rule (Optuna's MedianPruner: prune below
the median of the earlier trials, after 5 trials) or successive halving (keep the best fraction at each rung).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import optuna

from jaxmodels.errors import ConfigError

PRUNERS = ("median", "halving", "none")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """The pruner called `name` (one of `PRUNERS`)."""
    if name == "median":
        return optuna.pruners.MedianPruner()
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")


class TrialPruning:
    """Reports `metric` at each evaluation to `trial`; stops the run once the study's pruner prunes the trial.

    `reported` are the steps the trial already holds (a resumed trial inherits its original's values): an
    evaluation repeated after a resume is not reported twice, which Optuna would refuse.
    """

    def __init__(self, trial: optuna.Trial, metric: str, reported: Iterable[int] = ()):
        self.trial, self.metric = trial, metric
        self.reported = set(reported)
        self.pruned_at: int | None = None
        self.value = math.nan

    def update(self, step: int, metrics: dict[str, float]) -> bool:
        if self.metric not in metrics:
            raise ConfigError(
                f"the sweep's metric {self.metric!r} is not an eval metric of this run; choose one of "
                f"{', '.join(sorted(metrics))} (--metric)"
            )
        self.value = float(metrics[self.metric])
        if step not in self.reported:
            self.trial.report(self.value, step)
            self.reported.add(step)
        if self.trial.should_prune():
            self.pruned_at = step
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        return self.pruned_at is not None

    def reason(self) -> str:
        return f"trial {self.trial.number} pruned: {self.metric} {self.value:.4g} at step {self.pruned_at}"
