"""A sweep's report: its finished trials best first, their values and metric, and what mattered.

The table is `jaxmodels compare`'s (jaxmodels.compare) over the finished trials' workdirs, with a column per
swept key: the complete trials best first, then the pruned ones (marked so, best first). Written as report.md
and report.csv in the sweep dir, with report.png (the optimisation history: each trial's value by trial number
and the best so far; next to it the parameters' importances, Optuna's fANOVA estimate, once two trials are
complete) and curves.png (the metric against the step, a line per trial). Reads the study and the workdirs only.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import optuna
from optuna.trial import TrialState

from jaxmodels.compare import Comparison, compare_runs, format_markdown, plot_curves, write_csv
from jaxmodels.errors import ConfigError
from jaxmodels.sweeps import settings as settings_lib
from jaxmodels.sweeps.settings import SweepSettings

OUTPUTS = ("report.md", "report.csv", "report.png", "curves.png")


@dataclasses.dataclass(frozen=True)
class SweepReport:
    """The state of a sweep: its settings, its trials by state, the table of finished ones and the importances."""

    sweep_dir: Path
    settings: SweepSettings
    counts: dict[str, int]  # trial state name ('COMPLETE', 'PRUNED', 'FAIL', 'RUNNING', 'WAITING') -> trials
    comparison: Comparison | None  # None before any trial finished
    history: list[tuple[int, float, bool]]  # (trial number, value, pruned) of the finished trials
    importances: dict[str, float]  # swept key -> importance (empty with fewer than 2 complete trials)

    @property
    def best(self) -> str | None:
        """The workdir name of the best complete trial (None before one completed)."""
        rows = self.comparison.rows if self.comparison else []
        return rows[0].name if rows and not rows[0].name.endswith(" (pruned)") else None

    def markdown(self) -> str:
        """The report as printed and as report.md: a summary line, the table, the importances."""
        settings, counts = self.settings, self.counts
        finished = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
        lines = [
            f"# Sweep {self.sweep_dir.name}",
            "",
            f"{finished} of {settings.num_trials} trials finished ({counts.get('COMPLETE', 0)} complete, "
            f"{counts.get('PRUNED', 0)} pruned; {counts.get('RUNNING', 0) + counts.get('WAITING', 0)} running or "
            f"queued, {counts.get('FAIL', 0)} failed or stopped). Each trial's value: its best {settings.metric} "
            f"({settings.mode}) at its evaluations.",
        ]
        if self.comparison is None:
            return "\n".join([*lines, "", "No trial has finished yet."])
        lines += ["", f"Best trial: {self.best or '(none complete yet)'}.", "", format_markdown(self.comparison)]
        if self.importances:
            ranked = ", ".join(f"{key} {value:.2f}" for key, value in self.importances.items())
            lines += ["", f"Parameter importances (fANOVA, complete trials): {ranked}."]
        return "\n".join(lines)


def build_report(sweep_dir: str | Path) -> SweepReport:
    """The report of the sweep in `sweep_dir`, from its sweep.json, its study and its trials' workdirs."""
    sweep_dir = Path(sweep_dir)
    settings = settings_lib.read_settings(sweep_dir)
    if settings is None:
        raise ConfigError(
            f"{str(sweep_dir)!r} holds no sweep ({settings_lib.SETTINGS_FILE} is missing); pass the --workdir of a "
            "`jaxmodels sweep`"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=sweep_dir.resolve().name, storage=_read_only_storage(sweep_dir, settings))
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    finished = [
        trial
        for trial in trials
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        and (sweep_dir / trial.user_attrs.get("workdir", "")).joinpath("metrics.jsonl").is_file()
    ]
    history = [(trial.number, _value(trial), trial.state == TrialState.PRUNED) for trial in finished]
    return SweepReport(
        sweep_dir, settings, counts, _comparison(sweep_dir, settings, finished), history, _importances(study)
    )


def _read_only_storage(sweep_dir: Path, settings: SweepSettings) -> str:
    url = settings.storage_url(sweep_dir)
    if url.startswith("sqlite") and not (sweep_dir / settings_lib.DEFAULT_DATABASE).is_file():
        raise ConfigError(f"{str(sweep_dir)!r} holds no {settings_lib.DEFAULT_DATABASE}: the sweep never started")
    return url


def _comparison(sweep_dir: Path, settings: SweepSettings, finished: list) -> Comparison | None:
    """The finished trials' workdirs compared by the metric: complete ones best first, then the pruned ones."""
    if not finished:
        return None
    pruned = {trial.user_attrs["workdir"] for trial in finished if trial.state == TrialState.PRUNED}
    compared = compare_runs([sweep_dir / trial.user_attrs["workdir"] for trial in finished], settings.metric,
                            settings.mode)  # fmt: skip
    rows = [row for row in compared.rows if row.name not in pruned]
    rows += [dataclasses.replace(row, name=f"{row.name} (pruned)") for row in compared.rows if row.name in pruned]
    return Comparison(compared.metric, compared.mode, rows, list(settings.space))


def _value(trial: optuna.trial.FrozenTrial) -> float:
    """A finished trial's value: its objective, or for a pruned one the last value it reported."""
    if trial.value is not None:
        return trial.value
    return trial.intermediate_values[trial.last_step] if trial.last_step is not None else math.nan


def _importances(study: optuna.Study) -> dict[str, float]:
    """fANOVA importances of the swept keys over the complete trials; empty where they cannot be estimated (fewer
    than two complete trials, or a key that never varied)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2 or not complete[0].params:
        return {}
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}


def write_report(sweep_dir: str | Path) -> SweepReport:
    """Builds the sweep's report and writes it into the sweep dir (`OUTPUTS`; the table and plots once a trial
    finished). The plots go first, so a missing matplotlib leaves nothing half written."""
    report = build_report(sweep_dir)
    out = report.sweep_dir
    if report.comparison is not None:
        plot_curves(report.comparison, out / "curves.png")  # says how to install matplotlib if it is missing
        _plot_history(report, out / "report.png")
        write_csv(report.comparison, out / "report.csv")
    (out / "report.md").write_text(report.markdown() + "\n")
    return report


def _plot_history(report: SweepReport, path: Path) -> None:
    """report.png: each finished trial's value by number (pruned ones as crosses) with the best so far, and the
    importances as bars when there are some."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(12 if report.importances else 7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 2 if report.importances else 1, 1)
    metric, mode = report.settings.metric, report.settings.mode
    for pruned, marker, label in ((False, "o", "complete"), (True, "x", "pruned (last value)")):
        points = [(number, value) for number, value, is_pruned in report.history if is_pruned == pruned]
        if points:
            axes.scatter(*zip(*points, strict=True), marker=marker, label=label)
    complete = sorted((number, value) for number, value, pruned in report.history if not pruned)
    if complete:
        choose = max if mode == "max" else min
        best = [choose(value for _, value in complete[: index + 1]) for index in range(len(complete))]
        axes.step([number for number, _ in complete], best, where="post", label="best so far")
    axes.set(xlabel="trial", ylabel=metric, title=f"optimisation history ({mode} is better)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend()
    if report.importances:
        bars = figure.add_subplot(1, 2, 2)
        keys = list(report.importances)[::-1]
        bars.barh(keys, [report.importances[key] for key in keys])
        bars.set(xlabel="importance (fANOVA)", title="parameter importances")
    figure.savefig(path, dpi=100)
