"""Damaged workdirs and mistaken commands end in one line, never a traceback: damaged checkpoints (one warning
line when falling back, one error line when none can be read), stray files where a checkpoint would go, deleted
checkpoints with their history kept, a model that does not fit the data's geometry, a workdir's config.json as
--config, an empty --workdir, and SIGTERM before the first step."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxmodels import cli
from jaxmodels.checkpoint import UNUSABLE_DIR
from jaxmodels.metric_writers import DROPPED, read_history
from tests.conftest import EXPERIMENTS, assert_one_error_line

CNN = str(EXPERIMENTS / "mnist1d_cnn.py")
SHORT = [
    "--config.train.checkpoint_every=10", "--config.train.eval_every=20", "--config.train.log_every=10",
    "--config.train.progress_bar=False",
]  # fmt: skip
pytestmark = pytest.mark.usefixtures("compilation_cache_dir")


def train(workdir: Path, num_steps: int, *extra: str) -> list[str]:
    return ["train", "--config", CNN, "--workdir", str(workdir), f"--config.train.num_steps={num_steps}", *SHORT,
            *extra]  # fmt: skip


def in_subprocess(*argv: str) -> subprocess.CompletedProcess:
    """`jaxmodels ARGV` as a process of its own: what background threads print until it exits counts too."""
    return subprocess.run([sys.executable, "-m", "jaxmodels.cli", *argv], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def base(tmp_path_factory, data_dir) -> Path:
    """A finished 40-step CNN run: checkpoints 20, 30, 40; rows at steps 10 to 40."""
    workdir = tmp_path_factory.mktemp("base") / "run"
    assert cli.main(train(workdir, 40)) == 0
    return workdir


@pytest.fixture
def copy(base, tmp_path) -> Path:
    workdir = tmp_path / "copy"
    shutil.copytree(base, workdir)
    return workdir


def truncate_arrays(step_dir: Path, files: int | None = None) -> None:
    """Cuts the checkpoint's array data files (the first `files` of them, or all) to 10 bytes."""
    data = sorted(p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d")
    for path in data[:files]:
        path.write_bytes(path.read_bytes()[:10])


def test_one_truncated_array_file_falls_back_with_one_warning_line(copy):
    truncate_arrays(copy / "checkpoints" / "40", files=1)
    done = in_subprocess(*train(copy, 50))
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if not line.startswith("step ")]
    assert len(lines) == 3, done.stderr  # the warning, the resume and the history lines: no traceback
    assert lines[0].startswith(f"warning: checkpoint {copy.absolute() / 'checkpoints' / '40'} is unreadable")
    assert lines[0].endswith("falling back to step 30")
    assert lines[1].startswith("resumed from the checkpoint at step 30")
    assert lines[2].startswith("1 row of metrics.jsonl logged after step 30 moved to")


@pytest.mark.parametrize("command", ["eval", "export"])
def test_every_checkpoint_truncated_is_one_error_line(copy, command, tmp_path):
    for step_dir in (copy / "checkpoints").iterdir():
        truncate_arrays(step_dir)
    argv = ["eval", "--workdir", str(copy)] if command == "eval" else [
        "export", "--workdir", str(copy), "--out", str(tmp_path / "out")]  # fmt: skip
    done = in_subprocess(*argv)
    line = assert_one_error_line(done.returncode, done.stderr, "40", "unreadable" if command == "eval" else "damaged")
    assert done.stderr.strip().splitlines() == [line]  # no "Event loop is closed", no "Exception ignored"


@pytest.mark.parametrize("stray", ["file", "empty directory"])
def test_a_stray_file_or_empty_dir_named_like_a_step_is_set_aside_with_a_warning(copy, stray, capsys):
    path = copy / "checkpoints" / "50"
    if stray == "file":
        path.write_text("hello\n")
    else:
        path.mkdir()
    assert cli.main(train(copy, 60)) == 0
    err = capsys.readouterr().err
    assert f"warning: checkpoint {copy.absolute() / 'checkpoints' / '50'} is " in err
    assert f"moved to {copy.absolute() / UNUSABLE_DIR / '50'}; falling back to step 40" in err
    aside = copy / UNUSABLE_DIR / "50"
    assert aside.read_text() == "hello\n" if stray == "file" else list(aside.iterdir()) == []
    assert (path / "commit_success.txt").is_file()  # step 50 saved in its place


def test_deleted_checkpoints_set_the_old_history_aside_with_a_warning(copy, capsys):
    before = (copy / "metrics.jsonl").read_bytes()
    shutil.rmtree(copy / "checkpoints")
    assert cli.main(train(copy, 20)) == 0
    err = capsys.readouterr().err
    assert f"warning: {copy / 'metrics.jsonl'} held 4 rows (steps 10 to 40) but there is no checkpoint" in err
    assert (copy / DROPPED).read_bytes() == before  # every earlier row, byte for byte
    assert [row["step"] for row in read_history(copy)] == [10, 20]


@pytest.mark.parametrize("command", ["train", "compile"])
def test_a_model_that_does_not_fit_the_datas_geometry_is_one_line_naming_both_sizes(command, tmp_path, capsys):
    # 16-pixel patches on 8x8 images: the forward pass gives an empty sequence, the gradient negative sizes. As
    # vit_b16 there, but with the small ViT's widths, for speed.
    argv = ["--config", str(EXPERIMENTS / "digits_vit.py"), "--config.model.patch_size=16"]
    workdir = tmp_path / "vit"
    status = cli.main([command, *argv, *(["--workdir", str(workdir)] if command == "train" else [])])
    assert_one_error_line(status, capsys.readouterr().err, "'vit'", "patch_size=16", "inputs float32[100, 8, 8, 1]")
    assert not workdir.exists()


def test_under_pmap_the_geometry_mismatch_is_one_line_at_the_first_step(tmp_path, capsys):
    # pmap compiles at its first call, not ahead: the same error comes from there, before any checkpoint.
    argv = ["--config", str(EXPERIMENTS / "digits_vit.py"), "--config.model.patch_size=16"]
    workdir = tmp_path / "vit"
    status = cli.main(["train", *argv, "--config.parallel.strategy=pmap", "--workdir", str(workdir)])
    assert_one_error_line(status, capsys.readouterr().err, "'vit'", "patch_size=16", "inputs float32[100, 8, 8, 1]")
    assert not (workdir / "checkpoints").exists() or not any((workdir / "checkpoints").iterdir())


def test_a_workdirs_config_json_reruns_its_exact_settings_elsewhere(base, tmp_path, capsys):
    rerun = tmp_path / "rerun"
    assert cli.main(["train", "--config", str(base / "config.json"), "--workdir", str(rerun)]) == 0
    assert json.loads((rerun / "config.json").read_text()) == json.loads((base / "config.json").read_text())
    evaluations = [{k: v for k, v in row.items() if k.startswith("test/")} for row in read_history(base)]
    assert [{k: v for k, v in row.items() if k.startswith("test/")} for row in read_history(rerun)] == evaluations
    capsys.readouterr()
    assert_one_error_line(
        cli.main(["train", "--config", str(base / "metrics.jsonl"), "--workdir", str(tmp_path / "x")]),
        capsys.readouterr().err,
        "neither an experiment file (.py",
        "config.json",
    )


def test_an_empty_workdir_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert_one_error_line(cli.main(train("", 10)), capsys.readouterr().err, "--workdir is empty")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def catches_sigterm(pid: int) -> bool:
    """Whether process `pid` has a handler for SIGTERM (the SigCgt mask of /proc/PID/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def test_sigterm_before_the_first_step_exits_0_with_the_resume_line(data_dir, tmp_path):
    argv = ["-m", "jaxmodels.cli", *train(tmp_path / "run", 40)]
    process = subprocess.Popen([sys.executable, *argv], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not catches_sigterm(process.pid):  # as soon as the command catches it: JAX is still loading
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert err.strip().splitlines() == [
        f"jaxmodels: stopped by SIGTERM before the first step; nothing to save. To resume, run the same command "
        f"again: jaxmodels {' '.join(argv[2:])}"
    ]
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
