"""`jaxmodels sweep` (jaxmodels.sweeps): pruning through the loop, trials as workdirs, exactly N finished trials
after a kill and with two workers on PostgreSQL, resumed trials, space-file validation and the report."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pgserver
import pytest

import jaxmodels as jm
from jaxmodels import cli
from jaxmodels.errors import ConfigError
from jaxmodels.sweeps.space import load_space
from tests.conftest import EXPERIMENTS, assert_one_error_line, committed_steps

LOGREG = EXPERIMENTS / "mnist1d_logreg.py"
LR_SPACE = {"optimizer.learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def fast(num_steps: int) -> list[str]:
    every = f"{min(10, num_steps)}"
    return [
        f"--config.train.num_steps={num_steps}", f"--config.train.eval_every={every}",
        f"--config.train.log_every={every}", f"--config.train.checkpoint_every={every}",
        "--config.train.progress_bar=False",
    ]  # fmt: skip


class OddTrialsPruned(optuna.pruners.BasePruner):
    """Prunes every odd-numbered trial once it has reported a value: only a run that reports through the loop
    and stops when told can end as these tests expect."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number % 2 == 1 and trial.last_step is not None


def last_step(workdir: Path) -> int:
    """The last step of metrics.jsonl whose line was written whole (a kill may cut the last one)."""
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1] if lines[-1].endswith("}") else lines[-2])["step"]


def finished_trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(states=FINISHED)


def test_a_sweep_prunes_through_the_loop_and_reports_its_trials(
    data_dir: str, compilation_cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    sweep_dir = tmp_path / "lr"
    report = jm.sweep(sweep_dir, LOGREG, LR_SPACE, num_trials=4, overrides=fast(20), sampler="random",
                      pruner=OddTrialsPruned(), heartbeat_interval=1)  # fmt: skip
    assert report.counts == {"COMPLETE": 2, "PRUNED": 2}
    for number, steps in ((0, 20), (1, 10), (2, 20), (3, 10)):  # pruned at their first evaluation, step 10
        workdir = sweep_dir / f"trial_{number}"
        assert (workdir / "config.json").is_file() and last_step(workdir) == steps
        assert jm.load(workdir).step == steps  # a pruned run saved its checkpoint where it stopped
    assert "trial 1 pruned: test/accuracy" in capsys.readouterr().err
    study = optuna.load_study(study_name="lr", storage=f"sqlite:///{sweep_dir / 'study.db'}")
    values = {trial.user_attrs["workdir"]: trial.value for trial in study.get_trials(states=(FINISHED[0],))}
    history = jm.load(sweep_dir / "trial_0").history
    assert values["trial_0"] == max(row["test/accuracy"] for row in history if "test/accuracy" in row)
    trial_config = json.loads((sweep_dir / "trial_2" / "config.json").read_text())
    assert trial_config["optimizer"]["learning_rate"] == study.trials[2].params["optimizer.learning_rate"]

    # The report: best complete trial first, then the pruned ones; files in the sweep dir; --report alone.
    assert cli.main(["sweep", "--workdir", str(sweep_dir), "--report"]) == 0
    printed = capsys.readouterr().out
    rows = [line.split("|")[1].strip() for line in printed.splitlines() if line.startswith("| trial_")]
    best = max(values, key=values.get)
    assert rows[0] == best == report.best and sorted(rows[2:]) == ["trial_1 (pruned)", "trial_3 (pruned)"]
    assert {path.name for path in sweep_dir.iterdir()} >= {"report.md", "report.csv", "report.png", "curves.png"}
    assert (sweep_dir / "report.csv").read_text().splitlines()[1].startswith(f"{best},")
    assert printed.strip() == (sweep_dir / "report.md").read_text().strip()

    # Done is done: the same call trains nothing more; another space is refused, naming the difference.
    assert jm.sweep(sweep_dir, num_trials=4, pruner=OddTrialsPruned()).counts == report.counts
    other = {"optimizer.learning_rate": {**LR_SPACE["optimizer.learning_rate"], "high": 0.5}}
    with pytest.raises(ConfigError, match=r"not the sweep recorded in .*sweep\.json: space"):
        jm.sweep(sweep_dir, LOGREG, other, num_trials=4, overrides=fast(20))


def fake_train(config, workdir: Path, *, stoppers=()) -> None:
    """Stands in for `jm.train` in a sweep: writes the config and a metrics history whose BEST test/accuracy
    (at step 20) is not its final one (at step 30), both set by the trial's learning rate; trains nothing."""
    from jaxmodels import config as config_lib

    rate = config.optimizer.learning_rate
    workdir.mkdir(parents=True)
    (workdir / "config.json").write_text(config_lib.to_json(config))
    rows = [
        {"step": 10, "test/accuracy": rate},
        {"step": 20, "test/accuracy": 2 * rate},
        {"step": 30, "test/accuracy": rate},
    ]
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def fake_sweep(sweep_dir: Path, monkeypatch: pytest.MonkeyPatch, *overrides: str) -> list[optuna.trial.FrozenTrial]:
    """Three trials of a random-sampler sweep over the learning rate, trained by `fake_train`."""
    monkeypatch.setattr("jaxmodels.sweeps.runner.run.train", fake_train)
    monkeypatch.setattr("jaxmodels.sweeps.runner.report_lib.write_report", lambda sweep_dir: None)  # not tested here
    jm.sweep(sweep_dir, LOGREG, LR_SPACE, num_trials=3, overrides=overrides, sampler="random", pruner="none")
    return optuna.load_study(study_name=sweep_dir.name, storage=f"sqlite:///{sweep_dir / 'study.db'}").trials


def test_a_trials_value_is_its_best_evaluation_not_its_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for trial in fake_sweep(tmp_path / "best", monkeypatch):
        rate = trial.params["optimizer.learning_rate"]
        assert trial.value == 2 * rate  # the step-20 evaluation; the final one (step 30) is `rate`


def test_the_sampler_draws_from_the_configs_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def rates(name: str, *overrides: str) -> list[float]:
        return [
            trial.params["optimizer.learning_rate"] for trial in fake_sweep(tmp_path / name, monkeypatch, *overrides)
        ]

    seed_0 = rates("seed0", "--config.seed=0")
    assert rates("seed0_again", "--config.seed=0") == seed_0  # the same seed draws the same points
    assert rates("seed7", "--config.seed=7") != seed_0


@pytest.mark.parametrize(
    ("space", "fragments"),
    [
        (
            {"optimizer.learnin_rate": {"type": "float", "low": 0.1, "high": 1}},
            ["Did you mean 'optimizer.learning_rate'"],
        ),
        ({"optimizer.learning_rate": {"type": "float", "low": 0.1, "high": 0.01}}, ["'low' (0.1) must be below"]),
        ({"optimizer.learning_rate": {"type": "floats", "low": 0.1, "high": 1}}, ["choose one of float, int"]),
        (
            {"optimizer.learning_rate": {"type": "float", "low": 0, "high": 1, "log": True}},
            ["log range needs 'low' > 0"],
        ),
        ({"optimizer.learning_rate": {"type": "float", "low": -1, "high": 1}}, ["must be >= 0"]),
        ({"train.num_steps": {"type": "float", "low": 10, "high": 20}}, ["holds an integer", '"type": "int"']),
        ({"optimizer.name": {"type": "categorical", "choices": ["adam", "sgdd"]}}, ["Did you mean 'sgd'"]),
        ({"model.hiden": {"type": "int", "low": 8, "high": 16}}, ["has no argument 'hiden'"]),
        ([], ["must map config keys to ranges"]),
    ],
)
def test_a_bad_space_file_is_one_error_line_and_creates_nothing(
    space, fragments, data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture
):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    command = [
        "sweep",
        "--config",
        str(LOGREG),
        "--space",
        str(path),
        "--workdir",
        str(tmp_path / "s"),
        "--trials",
        "2",
    ]
    line = assert_one_error_line(cli.main(command), capsys.readouterr().err, "space file", *fragments)
    assert "space.json" in line
    assert not (tmp_path / "s").exists()


def test_a_storage_that_cannot_be_opened_leaves_no_sweep_dir(data_dir: str, tmp_path: Path, capsys):
    storage = "bogus://nowhere"  # no such database dialect
    space = tmp_path / "space.json"
    space.write_text(json.dumps(LR_SPACE))
    (tmp_path / "kept").mkdir()  # an empty sweep dir that existed before is left as it was
    for workdir in (tmp_path / "new" / "lr", tmp_path / "kept"):
        command = ["sweep", "--config", str(LOGREG), "--space", str(space), "--workdir", str(workdir), "--trials", "1"]
        status = cli.main([*command, "--storage", storage])
        assert_one_error_line(status, capsys.readouterr().err, f"cannot open the sweep's storage {storage!r}")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kept", "space.json"]
    assert list((tmp_path / "kept").iterdir()) == []


def test_the_example_space_file_fits_its_experiment():
    space = load_space(EXPERIMENTS / "mnist1d_cnn_space.json", jm.load_config(EXPERIMENTS / "mnist1d_cnn.py"))
    assert "optimizer.learning_rate" in space


def worker(sweep_dir: Path, trials: int, num_steps: int, *extra: str) -> subprocess.Popen:
    space = str(sweep_dir.parent / "space.json")
    command = [
        sys.executable, "-m", "jaxmodels.cli", "sweep", "--config", str(LOGREG), "--space", space,
        "--workdir", str(sweep_dir), "--trials", str(trials), "--sampler", "random", "--pruner", "none",
        "--heartbeat", "1", *fast(num_steps), *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(sweep_dir))


def _env(sweep_dir: Path) -> dict[str, str]:
    cache = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(sweep_dir.parent / "jax_cache")
    return {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def finish(process: subprocess.Popen) -> str:
    try:
        _, err = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{process.args} did not finish in 300 s: {process.communicate()[1][-3000:]}")
    assert process.returncode == 0, err
    return err


def test_a_killed_sweep_restarts_to_exactly_n_trials_and_resumes_the_killed_one(
    data_dir: str, compilation_cache_dir: Path, tmp_path: Path
):
    (tmp_path / "space.json").write_text(json.dumps(LR_SPACE))
    sweep_dir = tmp_path / "killed"
    process = worker(sweep_dir, 2, 100)
    deadline = time.monotonic() + 300
    while not committed_steps(sweep_dir / "trial_0"):  # the first trial has saved a checkpoint
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    killed_at = last_step(sweep_dir / "trial_0")
    assert killed_at < 100

    err = finish(worker(sweep_dir, 2, 100))  # the same command again
    assert "taking up trial 0" in err, err
    resumed = re.search(r"resumed from the checkpoint at step (\d+) in \S*trial_0", err)
    assert resumed and 0 < int(resumed.group(1)) <= killed_at, err
    assert last_step(sweep_dir / "trial_0") == 100
    steps = [json.loads(line)["step"] for line in (sweep_dir / "trial_0" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # continued, not started over: each step logged once
    finished = finished_trials(f"sqlite:///{sweep_dir / 'study.db'}", "killed")
    assert len(finished) == 2
    assert "trial_0" in {trial.user_attrs["workdir"] for trial in finished}  # once, with its original values


def test_two_workers_on_postgresql_finish_exactly_n_trials(data_dir: str, compilation_cache_dir: Path, tmp_path: Path):
    server = pgserver.get_server(tmp_path / "pg")
    try:
        url = server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)
        (tmp_path / "space.json").write_text(json.dumps(LR_SPACE))
        sweep_dir = tmp_path / "shared"
        workers = [worker(sweep_dir, 3, 20, "--storage", url) for _ in range(2)]
        errors = [finish(process) for process in workers]
        finished = finished_trials(url, "shared")
        assert len(finished) == 3, errors
        assert len({trial.user_attrs["workdir"] for trial in finished}) == 3
        assert all(last_step(sweep_dir / trial.user_attrs["workdir"]) == 20 for trial in finished)
    finally:
        server.cleanup()
