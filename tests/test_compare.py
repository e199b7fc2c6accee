"""`jaxmodels compare`: workdirs side by side, from hand-written config.json and metrics.jsonl (no training)."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest

from jaxmodels import config as config_lib
from jaxmodels.cli import main
from jaxmodels.compare import compare_runs, format_markdown, write_outputs
from jaxmodels.errors import JaxmodelsError
from tests.conftest import assert_one_error_line, run_cli

# Three runs of a learning-rate sweep: (learning rate, other config changes, metrics.jsonl rows).
RUNS = {
    "lr1e-2": (
        1e-2,
        {},
        [
            {"step": 10, "train/loss": 1.0},
            {"step": 20, "train/loss": 0.8, "test/accuracy": 0.5, "test/loss": 0.9},
            {"step": 40, "train/loss": 0.6, "test/accuracy": 0.7, "test/loss": 0.6},
            {"step": 60, "train/loss": 0.5, "test/accuracy": 0.65, "test/loss": 0.7},
        ],
    ),
    "lr3e-3": (
        3e-3,
        {},
        [
            {"step": 20, "test/accuracy": 0.4, "test/loss": 1.2},
            {"step": 40, "test/accuracy": 0.6, "test/loss": 0.8},
            {"step": 60, "test/accuracy": 0.8, "test/loss": 0.5},
        ],
    ),
    "lr1e-3": (  # stopped early, never logged test/loss, and ran without a progress bar (not a difference)
        1e-3,
        {"progress_bar": False},
        [
            {"step": 20, "test/accuracy": 0.3},
            {"step": 40, "test/accuracy": 0.45},
            {"step": 50, "train/loss": 0.9},
        ],
    ),
}


def write_workdir(path: Path, learning_rate: float, rows: list[dict], **train: object) -> Path:
    """A workdir as `jaxmodels train` leaves it, as far as compare reads it: config.json and metrics.jsonl."""
    config = config_lib.base_config()
    config.optimizer.learning_rate = learning_rate
    config.train.update(train)
    path.mkdir(parents=True)
    (path / "config.json").write_text(config_lib.to_json(config))
    (path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("sweep")
    return [str(write_workdir(root / name, lr, rows, **train)) for name, (lr, train, rows) in RUNS.items()]


def parse_table(text: str) -> list[list[str]]:
    """The cells of a Markdown table, the separator line left out."""
    lines = [line for line in text.strip().splitlines() if not set(line) <= {"|", "-", " "}]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]


def test_the_table_has_a_row_per_run_best_first_with_the_differing_config_key(workdirs, capsys):
    status, out, err = run_cli("compare", *workdirs)
    assert (status, err) == (0, "")
    assert parse_table(out) == [
        ["run", "best test/accuracy (max)", "best step", "final test/accuracy (max)", "final step", "steps",
         "optimizer.learning_rate"],
        ["lr3e-3", "0.8", "60", "0.8", "60", "60", "0.003"],
        ["lr1e-2", "0.7", "40", "0.65", "60", "60", "0.01"],
        ["lr1e-3", "0.45", "40", "0.45", "40", "50", "0.001"],
    ]  # fmt: skip


def test_compare_runs_returns_the_numbers_and_the_keys_that_differ(workdirs):
    comparison = compare_runs(workdirs, "test/accuracy")
    assert (comparison.metric, comparison.mode) == ("test/accuracy", "max")
    assert comparison.differing_keys == ["optimizer.learning_rate"]  # train.progress_bar differs but is skipped
    numbers = [(row.name, row.best, row.best_step, row.final, row.final_step, row.steps) for row in comparison.rows]
    assert numbers == [
        ("lr3e-3", 0.8, 60, 0.8, 60, 60),
        ("lr1e-2", 0.7, 40, 0.65, 60, 60),
        ("lr1e-3", 0.45, 40, 0.45, 40, 50),
    ]
    assert comparison.rows[1].curve == ((20, 0.5), (40, 0.7), (60, 0.65))
    assert comparison.rows[2].config["train.progress_bar"] is False


def test_a_loss_is_minimized_by_default_and_runs_without_the_metric_come_last(workdirs, capsys):
    comparison = compare_runs(workdirs, "test/loss")
    assert comparison.mode == "min"
    numbers = [(row.name, row.best, row.best_step, row.final, row.final_step) for row in comparison.rows]
    assert numbers == [("lr3e-3", 0.5, 60, 0.5, 60), ("lr1e-2", 0.6, 40, 0.7, 60), ("lr1e-3", None, None, None, None)]
    status, out, _ = run_cli("compare", *workdirs, "--metric", "train/loss")
    assert status == 0
    assert [row[:6] for row in parse_table(out)[1:]] == [
        ["lr1e-2", "0.5", "60", "0.5", "60", "60"],
        ["lr1e-3", "0.9", "50", "0.9", "50", "50"],
        ["lr3e-3", "-", "-", "-", "-", "60"],
    ]
    assert [row.name for row in compare_runs(workdirs, "test/loss", mode="max").rows] == ["lr3e-3", "lr1e-2", "lr1e-3"]
    status, out, _ = run_cli("compare", *workdirs, "--metric", "test/accuracy", "--mode", "min")
    assert [row[0] for row in parse_table(out)[1:]] == ["lr1e-3", "lr3e-3", "lr1e-2"]


def test_out_writes_the_table_as_markdown_and_csv_and_the_curves_as_png(workdirs, tmp_path, capsys):
    out_dir = tmp_path / "report" / "sweep"
    status, out, err = run_cli("compare", *workdirs, "--out", str(out_dir))
    assert (status, err) == (0, "")
    assert sorted(path.name for path in out_dir.iterdir()) == ["compare.csv", "compare.md", "compare.png"]
    assert (out_dir / "compare.md").read_text() == out
    with (out_dir / "compare.csv").open(newline="") as file:
        assert list(csv.reader(file)) == [
            ["run", "workdir", "best", "best_step", "final", "final_step", "steps", "optimizer.learning_rate"],
            ["lr3e-3", workdirs[1], "0.8", "60", "0.8", "60", "60", "0.003"],
            ["lr1e-2", workdirs[0], "0.7", "40", "0.65", "60", "60", "0.01"],
            ["lr1e-3", workdirs[2], "0.45", "40", "0.45", "40", "50", "0.001"],
        ]
    assert (out_dir / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_out_nothing_is_written(workdirs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli("compare", *workdirs)[0] == 0
    assert list(tmp_path.iterdir()) == []


def test_runs_with_the_same_directory_name_are_named_by_their_paths(tmp_path):
    first = write_workdir(tmp_path / "lr1e-2" / "seed0", 1e-2, [{"step": 10, "test/accuracy": 0.5}])
    second = write_workdir(tmp_path / "lr3e-3" / "seed0", 3e-3, [{"step": 10, "test/accuracy": 0.6}])
    comparison = compare_runs([first, second], "test/accuracy")
    assert [row.name for row in comparison.rows] == [str(second), str(first)]


def test_nan_never_wins_but_is_shown_as_the_final_value(tmp_path):
    rows = [{"step": 10, "test/loss": 2.0}, {"step": 20, "test/loss": 1.5}, {"step": 30, "test/loss": math.nan}]
    diverged = write_workdir(tmp_path / "diverged", 1.0, rows)
    (row,) = compare_runs([diverged], "test/loss").rows
    assert (row.best, row.best_step, row.final_step) == (1.5, 20, 30) and math.isnan(row.final)
    assert parse_table(format_markdown(compare_runs([diverged], "test/loss")))[1][1:6] == [
        "1.5",
        "20",
        "nan",
        "30",
        "30",
    ]


def test_a_single_run_has_no_differing_keys(workdirs, capsys):
    status, out, _ = run_cli("compare", workdirs[0])
    assert status == 0
    assert parse_table(out) == [
        ["run", "best test/accuracy (max)", "best step", "final test/accuracy (max)", "final step", "steps"],
        ["lr1e-2", "0.7", "40", "0.65", "60", "60"],
    ]


def test_a_missing_matplotlib_is_one_error_saying_how_to_install_it(workdirs, tmp_path, monkeypatch):
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)  # `import` of it raises ImportError
    with pytest.raises(JaxmodelsError, match="pip install matplotlib"):
        write_outputs(compare_runs(workdirs, "test/accuracy"), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # nothing half written


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        ([], ["compare needs at least one workdir"]),
        (["{empty}"], ["holds no config.json and no metrics.jsonl", "not a workdir written by `jaxmodels train`"]),
        (["{run}", "{empty}/nowhere"], ["nowhere' does not exist"]),
        (["{run}", "{run}"], ["is given twice"]),
        (["{run}", "--metric", "test/acc"], ["no run logs the metric 'test/acc'", "Did you mean 'test/accuracy'?",
                                             "The runs log: test/accuracy, test/loss, train/loss"]),
        (["{run}", "--config.seed=1"], ["compare takes no --config overrides"]),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_status_2(argv, fragments, workdirs, tmp_path, capsys):
    argv = [arg.format(empty=tmp_path, run=workdirs[0]) for arg in argv]
    try:
        status = main(["compare", *argv])
    except SystemExit as exit_:  # argparse's own errors (a --config override here) exit by themselves
        status = exit_.code
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    lines = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert all(fragment in lines[0] for fragment in fragments), lines[0]


def test_help_lists_compare_and_its_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "compare" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    usage = capsys.readouterr().out
    assert all(option in usage for option in ("RUN_DIR [RUN_DIR ...]", "--metric", "--mode {max,min}", "--out DIR"))


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 2, b"not json\n\xff\xfe\n[1, 2]\n", b'{"train/loss": 1.0}\n'],
    ids=["binary", "not-json-objects", "rows-without-a-step"],
)
def test_a_metrics_file_without_one_readable_row_is_named_in_one_line(content, workdirs, tmp_path, capsys):
    damaged = write_workdir(tmp_path / "damaged", 1e-2, [])
    (damaged / "metrics.jsonl").write_bytes(content)
    status = main(["compare", str(workdirs[0]), str(damaged)])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_error_line(status, captured.err, f"{damaged / 'metrics.jsonl'} holds no readable metrics row")


def test_an_unreadable_metrics_file_is_named_in_one_line(workdirs, tmp_path, monkeypatch, capsys):
    damaged = write_workdir(tmp_path / "unreadable", 1e-2, [{"step": 10, "test/accuracy": 0.5}])
    unreadable, read_bytes = damaged / "metrics.jsonl", Path.read_bytes

    def refuse(path: Path) -> bytes:  # as reading a file without read permission does (the tests run as root)
        if path == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    status = main(["compare", str(workdirs[0]), str(damaged)])
    assert_one_error_line(status, capsys.readouterr().err, f"cannot read {unreadable}: Permission denied")
