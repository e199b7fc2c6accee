"""`jaxmodels compare`: several workdirs side by side, by one metric and by the config keys that differ.

A sweep (learning rates, seeds, models) leaves one workdir per run. Reading their metrics.jsonl files one by one
hides the answer to "which setting won, and by how much"; this module puts it in one table: per run the best and
the final value of a metric with their steps and the steps trained, plus one column per config key whose value
differs between the runs (the keys that explain the difference; the keys all runs share would only add noise).
Rows are sorted best first. Optionally the table is also written as Markdown and CSV, with a plot of the metric's
curves. Workdirs are only read, as data: config.json and metrics.jsonl.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import difflib
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from jaxmodels.config import _flatten, is_number, load_saved_config
from jaxmodels.errors import JaxmodelsError
from jaxmodels.files import make_writable_dir
from jaxmodels.metric_writers import read_history

MODES = ("max", "min")
# Config keys left out of the differing columns: they change how a run is displayed, not what it computes.
IGNORED_KEYS = ("train.progress_bar",)
ABSENT = "(absent)"  # a key one run's config lacks (e.g. a model argument of another model family)


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One workdir's numbers for the compared metric, and its whole config as dotted keys.

    `best`/`best_step` and `final`/`final_step` are None when the run never logged the metric (`best` also when
    every logged value is NaN); `steps` is the last step the run logged (0 for an empty metrics.jsonl).
    """

    name: str
    workdir: Path
    best: float | None
    best_step: int | float | None
    final: float | None
    final_step: int | float | None
    steps: int | float
    config: dict[str, Any]
    curve: tuple[tuple[int | float, float], ...]  # (step, value) for every row that holds the metric

    def cell(self, key: str) -> str:
        """The value of the dotted config key `key` as a table cell; `ABSENT` if this run's config lacks it."""
        return _config_text(self.config[key]) if key in self.config else ABSENT


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Runs compared by `metric` in `mode` ('max' or 'min' is better): rows best first, and the config keys whose
    values differ between them (sorted), which are the table's last columns."""

    metric: str
    mode: str
    rows: list[RunSummary]
    differing_keys: list[str]

    def header(self) -> list[str]:
        """The column titles of the table: the run, the metric's numbers, then the differing config keys."""
        metric = f"{self.metric} ({self.mode})"
        return ["run", f"best {metric}", "best step", f"final {metric}", "final step", "steps", *self.differing_keys]

    def table(self) -> list[list[str]]:
        """The table's rows as text cells, in the order of `rows`."""
        return [
            [
                row.name,
                _number_text(row.best),
                _number_text(row.best_step),
                _number_text(row.final),
                _number_text(row.final_step),
                _number_text(row.steps),
                *(row.cell(key) for key in self.differing_keys),
            ]
            for row in self.rows
        ]


def default_mode(metric: str) -> str:
    """'min' for a loss (a metric whose name ends in 'loss'), 'max' for anything else (accuracy, ...)."""
    return "min" if metric.endswith("loss") else "max"


def compare_runs(workdirs: Sequence[str | Path], metric: str, mode: str | None = None) -> Comparison:
    """Compares the workdirs written by `jaxmodels train` by `metric` (a key of their metrics.jsonl).

    `mode` says which direction is better ('max' or 'min'; None: `default_mode(metric)`). Raises a JaxmodelsError
    for no workdir, a directory that is not a workdir, a workdir given twice, or a metric no run logs.
    """
    mode = default_mode(metric) if mode is None else mode
    if mode not in MODES:
        raise JaxmodelsError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    paths = _checked_workdirs(workdirs)
    histories = [_readable_history(path) for path in paths]
    _check_metric_logged(metric, histories)
    configs = [dict(_flatten(load_saved_config(path / "config.json").to_dict())) for path in paths]
    rows = [
        _summarize(name, path, history, config, metric, mode)
        for name, path, history, config in zip(_run_names(paths), paths, histories, configs, strict=True)
    ]
    return Comparison(metric, mode, _sorted_best_first(rows, mode), differing_keys(configs))


def _checked_workdirs(workdirs: Sequence[str | Path]) -> list[Path]:
    """The workdirs as paths, each checked to hold what `jaxmodels train` writes, none named twice."""
    if not workdirs:
        raise JaxmodelsError("compare needs at least one workdir: jaxmodels compare RUN_DIR [RUN_DIR ...]")
    paths = [Path(workdir) for workdir in workdirs]
    for path in paths:
        if problem := _workdir_problem(path):
            raise JaxmodelsError(
                f"{str(path)!r} {problem}: it is not a workdir written by `jaxmodels train`; pass the workdirs of runs"
            )
    seen: dict[Path, Path] = {}
    for path in paths:
        if path.resolve() in seen:
            raise JaxmodelsError(
                f"the workdir {str(path)!r} is given twice (also as {str(seen[path.resolve()])!r}); name each run once"
            )
        seen[path.resolve()] = path
    return paths


def _workdir_problem(path: Path) -> str | None:
    """Why `path` is not a workdir a run wrote (it needs config.json and metrics.jsonl), or None if it is one."""
    if not path.is_dir():
        return "does not exist" if not path.exists() else "is not a directory"
    missing = [name for name in ("config.json", "metrics.jsonl") if not (path / name).is_file()]
    return f"holds no {' and no '.join(missing)}" if missing else None


def _readable_history(workdir: Path) -> list[dict[str, Any]]:
    """The rows of the workdir's metrics.jsonl; a JaxmodelsError naming the file if it cannot be read, or if it
    holds lines but not one readable row (binary garbage, another format): such a run would show as never logged."""
    path = workdir / "metrics.jsonl"
    try:
        text = path.read_bytes()
        history = read_history(workdir)
    except OSError as error:
        raise JaxmodelsError(
            f"cannot read {path}: {error.strerror or error}; make it readable or leave the run out"
        ) from None
    if text.strip() and not history:
        raise JaxmodelsError(
            f"{path} holds no readable metrics row (each line should be a JSON object with a 'step'): is it damaged? "
            "Restore it, or leave the run out"
        )
    return history


def _run_names(paths: Sequence[Path]) -> list[str]:
    """Each run's name in the table: its directory's name, or the path as given where two runs share that name
    (runs/lr1e-2/seed0 and runs/lr3e-3/seed0) so that every row stays identifiable."""
    names = [path.resolve().name or str(path) for path in paths]
    counts = collections.Counter(names)
    return [name if counts[name] == 1 else str(path) for name, path in zip(names, paths, strict=True)]


def _check_metric_logged(metric: str, histories: Iterable[list[dict[str, Any]]]) -> None:
    """Raises a JaxmodelsError listing the metrics the runs do log (closest first) if none logs `metric`."""
    logged = sorted({key for history in histories for row in history for key in row} - {"step"})
    if metric in logged:
        return
    if not logged:
        raise JaxmodelsError(f"no run logs the metric {metric!r}: their metrics.jsonl files hold no metrics yet")
    close = difflib.get_close_matches(metric, logged, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise JaxmodelsError(f"no run logs the metric {metric!r}.{hint} The runs log: {', '.join(logged)}")


def _summarize(
    name: str, workdir: Path, history: list[dict[str, Any]], config: dict[str, Any], metric: str, mode: str
) -> RunSummary:
    """One run's best and final value of `metric` with their steps, from the rows of its metrics.jsonl."""
    curve = tuple((_plain_step(row["step"]), float(row[metric])) for row in history if is_number(row.get(metric)))
    best = _best_point(curve, mode)
    final = curve[-1] if curve else (None, None)
    steps = max((_plain_step(row["step"]) for row in history), default=0)
    return RunSummary(name, workdir, best[1], best[0], final[1], final[0], steps, config, curve)


def _best_point(curve: Sequence[tuple[int | float, float]], mode: str) -> tuple[int | float | None, float | None]:
    """(step, value) of the best value in `mode`, the earliest one on a tie; NaN (a diverged step) never wins."""
    comparable = [point for point in curve if not math.isnan(point[1])]
    if not comparable:
        return None, None
    choose = max if mode == "max" else min
    return choose(comparable, key=lambda point: point[1])  # max/min return the first of equal values


def _sorted_best_first(rows: list[RunSummary], mode: str) -> list[RunSummary]:
    """The rows by best value, best first; runs without a best value last; ties keep the order given."""
    sign = -1.0 if mode == "max" else 1.0
    return sorted(rows, key=lambda row: (row.best is None, 0.0 if row.best is None else sign * row.best))


def differing_keys(configs: Sequence[dict[str, Any]]) -> list[str]:
    """The dotted keys (sorted) whose value is not the same in every flattened config, a key some configs lack
    included; keys under `IGNORED_KEYS` are left out."""
    missing = object()
    keys = sorted({key for config in configs for key in config})
    return [
        key
        for key in keys
        if not any(key == ignored or key.startswith(f"{ignored}.") for ignored in IGNORED_KEYS)
        and any(config.get(key, missing) != configs[0].get(key, missing) for config in configs[1:])
    ]


def format_markdown(comparison: Comparison) -> str:
    """The comparison as one Markdown table (columns padded, so it reads in a terminal too); no trailing newline."""
    lines = [comparison.header(), *comparison.table()]
    cells = [[_escape(cell) for cell in line] for line in lines]
    widths = [max(3, *(len(line[column]) for line in cells)) for column in range(len(cells[0]))]

    def render(line: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + " |"

    return "\n".join([render(cells[0]), render(["-" * width for width in widths]), *map(render, cells[1:])])


def write_csv(comparison: Comparison, path: Path) -> None:
    """The table's data as CSV: the same rows and columns plus each run's workdir; numbers at full precision,
    an empty field where the table shows '-'."""
    header = ["run", "workdir", "best", "best_step", "final", "final_step", "steps", *comparison.differing_keys]
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in comparison.rows:
            numbers = (row.best, row.best_step, row.final, row.final_step, row.steps)
            writer.writerow(
                [
                    row.name,
                    str(row.workdir),
                    *("" if value is None else value for value in numbers),
                    *(row.cell(key) for key in comparison.differing_keys),
                ]
            )


def plot_curves(comparison: Comparison, path: Path) -> None:
    """A PNG of the metric against the step, one line per run (labelled by its name), with matplotlib's Agg
    backend; matplotlib is imported here, as only this output needs it (it comes with the `notebooks` extra)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise JaxmodelsError(
            "writing compare.png needs matplotlib, which is not installed: pip install matplotlib"
        ) from None
    figure = Figure(figsize=(8, 5), layout="constrained")
    FigureCanvasAgg(figure)  # renders without a display and without touching pyplot's global backend
    axes = figure.add_subplot()
    for row in comparison.rows:
        if row.curve:
            steps, values = zip(*row.curve, strict=True)
            axes.plot(steps, values, marker="." if len(steps) <= 50 else None, label=row.name)
    axes.set(xlabel="step", ylabel=comparison.metric, title=f"{comparison.metric} ({comparison.mode} is better)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.savefig(path, dpi=100)


def write_outputs(comparison: Comparison, out_dir: str | Path) -> list[Path]:
    """Writes compare.png, compare.md (the printed table) and compare.csv into `out_dir`, created if needed;
    returns their paths. The plot goes first, so a missing matplotlib leaves nothing half written."""
    out = Path(out_dir)
    make_writable_dir(out, "output directory", "--out")
    paths = [out / "compare.png", out / "compare.md", out / "compare.csv"]
    plot_curves(comparison, paths[0])
    paths[1].write_text(format_markdown(comparison) + "\n")
    write_csv(comparison, paths[2])
    return paths


def _plain_step(step: int | float) -> int | float:
    """A step as logged, an integral float (1e3 in an edited file) shown as the integer it is."""
    return int(step) if isinstance(step, float) and step.is_integer() else step


def _number_text(value: int | float | None) -> str:
    """A metric value or step as a table cell: 6 significant digits; '-' for none."""
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def _config_text(value: Any) -> str:
    """A config value as a table cell: strings bare ('' for the empty one), everything else as Python writes it."""
    if isinstance(value, str):
        return value or "''"
    return repr(value)


def _escape(cell: str) -> str:
    """A cell safe inside a Markdown table row: no line breaks, pipes escaped."""
    return " ".join(cell.splitlines()).replace("|", r"\|")
