"""A full disk: `train` says so in one line (exit 2), a second try leaves the workdir byte-identical, and once
space is freed the same command resumes. On a real 2 MiB tmpfs where the tests may mount one (as root, as in
CI); where mounting is not permitted, with ENOSPC injected into Orbax's writes and the free-space query, so the
test always runs."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orbax.checkpoint as ocp
import pytest

from jaxmodels import checkpoint, cli
from jaxmodels.metric_writers import read_history
from tests.conftest import EXPERIMENTS, assert_one_error_line, committed_steps

NUM_STEPS = 300  # the CNN's checkpoints take about 140 KB: 2 MiB fill up around step 140
COMMAND = [
    "train", "--config", str(EXPERIMENTS / "mnist1d_cnn.py"), f"--config.train.num_steps={NUM_STEPS}",
    "--config.train.checkpoint_every=10", "--config.train.keep_checkpoints=1000", "--config.train.log_every=10",
    "--config.train.eval_every=1000000", "--config.train.progress_bar=False",
]  # fmt: skip


@contextlib.contextmanager
def small_tmpfs(path: Path) -> Iterator[bool]:
    """A 2 MiB tmpfs mounted on `path` (True), or just the directory where mounting is not permitted (False)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)], capture_output=True)
    try:
        yield mounted.returncode == 0
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(path)], check=True)


def snapshot(workdir: Path) -> dict[str, str]:
    return {str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(workdir.rglob("*")) if p.is_file()}  # fmt: skip


def free_space(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)


def test_a_full_disk_is_one_line_the_workdir_stays_as_it_was_and_the_run_resumes_once_space_is_freed(
    data_dir, compilation_cache_dir, tmp_path, capfd, monkeypatch
):
    with small_tmpfs(tmp_path / "disk") as real:
        workdir = tmp_path / "disk" / "run"
        argv = [*COMMAND, "--workdir", str(workdir)]
        if real:  # a process of its own: what Orbax's and TensorBoard's threads print at exit counts too
            first = subprocess.run([sys.executable, "-m", "jaxmodels.cli", *argv], capture_output=True, text=True)
            status, err = first.returncode, first.stderr
        else:
            monkeypatch.setattr(ocp.CheckpointManager, "save", _full_after(ocp.CheckpointManager.save, 140))
            status = cli.main(argv)
            err = capfd.readouterr().err
        line = assert_one_error_line(status, err, "No space left on device", "Free disk space")
        assert err.strip().splitlines() == [line], err  # nothing else: no traceback, no Orbax log, no warning
        last = committed_steps(workdir)[-1]
        assert f"the last complete checkpoint is step {last}" in line and 100 <= last < NUM_STEPS

        before = snapshot(workdir)  # again, with the disk still full: refused before anything changes
        if not real:
            monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 0))
        assert_one_error_line(cli.main(argv), capfd.readouterr().err, "Free disk space", "run the same command again")
        assert snapshot(workdir) == before

        if real:
            free_space(tmp_path / "disk")
        else:
            monkeypatch.undo()
        assert cli.main(argv) == 0
        assert f"resumed from the checkpoint at step {last}" in capfd.readouterr().err
        steps = [row["step"] for row in read_history(workdir)]
        assert steps == list(range(10, NUM_STEPS + 1, 10))


def _full_after(save, step: int):
    """Orbax's save, failing as a full disk does from `step` on."""

    def saving(self, at_step, *args, **kwargs):
        if at_step >= step:
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(self, at_step, *args, **kwargs)

    return saving


@pytest.fixture(autouse=True)
def _not_in_the_repository(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # any stray relative path lands in the test's dir
