"""One writer per workdir: a second `train` refuses naming the holder, a killed holder's lock is taken over (same
host: the kernel's lock; another host: a lease that stopped beating), readers keep working beside a running
train, a sweep steps past a trial dir in use, and a history written twice for a step is repaired, not kept."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import jaxmodels as jm
from jaxmodels import cli, workdir_lock
from jaxmodels.metric_writers import DROPPED, MetricWriter, read_history
from jaxmodels.workdir_lock import LOCK_FILE, WorkdirBusy, WorkdirLock
from tests.conftest import EXPERIMENTS, assert_one_error_line, committed_steps

MLP = ["--config.model.name=mlp", "--config.model.hidden_sizes=(16,)"]
QUICK = [
    "--config.train.progress_bar=False", "--config.train.log_every=10", "--config.train.eval_every=1000000",
    "--config.train.checkpoint_every=10",
]  # fmt: skip


def train_command(workdir: Path, *extra: str) -> list[str]:
    experiment = str(EXPERIMENTS / "mnist1d_cnn.py")
    return [sys.executable, "-m", "jaxmodels.cli", "train", "--config", experiment, "--workdir", str(workdir),
            *MLP, *QUICK, *extra]  # fmt: skip


def wait_for(condition, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, f"no {what} after 120 s"
        time.sleep(0.05)


def lease(workdir: Path) -> dict:
    try:
        return json.loads((workdir / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return {}


@pytest.fixture(scope="module")
def endless_holder(tmp_path_factory, data_dir, compilation_cache_dir):
    """A `jaxmodels train` subprocess training for ever in its workdir, holding the lock, with a checkpoint."""
    workdir = tmp_path_factory.mktemp("held")
    holder = subprocess.Popen(
        train_command(workdir, "--config.train.num_steps=100000000"), stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: lease(workdir).get("pid") == holder.pid and committed_steps(workdir), holder, "lock")
        yield workdir, holder
    finally:
        holder.kill()
        holder.wait()


def test_a_second_train_refuses_in_one_line_naming_the_holder(endless_holder):
    workdir, holder = endless_holder
    before = (workdir / "metrics.jsonl").read_bytes()
    second = subprocess.run(
        train_command(workdir, "--config.train.num_steps=100000000"), capture_output=True, text=True, timeout=300
    )
    line = assert_one_error_line(second.returncode, second.stderr, f"PID {holder.pid}", socket.gethostname())
    assert "in use by another training process" in line and "since 20" in line
    assert (workdir / "metrics.jsonl").read_bytes().startswith(before)  # only the holder appended
    assert holder.poll() is None


@pytest.mark.parametrize("command", ["eval", "export"])
def test_readers_work_beside_a_running_train(endless_holder, command, tmp_path, capsys):
    workdir, holder = endless_holder
    argv = ["eval", "--workdir", str(workdir)] if command == "eval" else ["export", "--workdir", str(workdir),
                                                                          "--out", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    assert printed["step"] % 10 == 0 and printed["step"] > 0  # a complete checkpoint, whichever was the latest
    assert holder.poll() is None


def test_a_killed_holders_lock_is_taken_over_and_the_history_has_one_row_per_step(endless_holder, small_config, capfd):
    workdir, holder = endless_holder
    os.kill(holder.pid, signal.SIGKILL)  # dies holding the lock, mid-run
    holder.wait()
    dead = lease(workdir)
    assert dead["pid"] == holder.pid  # the lease is still there: only the kernel's lock went with the process
    last = committed_steps(workdir)[-1]
    capfd.readouterr()
    run = jm.train(small_config(*MLP, *QUICK, f"--config.train.num_steps={last + 20}"), workdir)
    err = capfd.readouterr().err
    assert f"warning: took over the lock of {workdir} from a training process that is no longer running" in err
    assert f"PID {holder.pid}" in err
    assert run.step == last + 20
    steps = [row["step"] for row in read_history(workdir)]
    assert steps == sorted(set(steps)) and steps[-1] == last + 20
    assert not (workdir / LOCK_FILE).exists()  # released at the end


def foreign_lease(workdir: Path, silent_for: float) -> None:
    now = time.time()
    record = {"host": "node-17.cluster", "pid": 4242, "since": now - 3600, "beat": now - silent_for}
    (workdir / LOCK_FILE).write_text(json.dumps(record))


def test_a_lease_of_another_host_is_honoured_while_it_beats_and_taken_over_once_stale(tmp_path):
    warnings = []
    foreign_lease(tmp_path, silent_for=workdir_lock.BEAT_SECONDS)  # one beat late: alive
    with pytest.raises(WorkdirBusy, match=r"host node-17\.cluster, PID 4242, since 20"):
        WorkdirLock(tmp_path, warnings.append).acquire()
    stale = workdir_lock.BEAT_SECONDS * workdir_lock.STALE_BEATS + 1
    foreign_lease(tmp_path, silent_for=stale)
    lock = WorkdirLock(tmp_path, warnings.append)
    lock.acquire()
    try:
        assert len(warnings) == 1
        assert warnings[0].startswith(
            f"warning: took over the lock of {tmp_path} from a training process that is silent for {stale:.0f} s "
            "(host node-17.cluster, PID 4242, since 20"
        )
        assert lease(tmp_path)["pid"] == os.getpid() and lease(tmp_path)["host"] == socket.gethostname()
    finally:
        lock.release()
    assert not (tmp_path / LOCK_FILE).exists()


def test_the_holder_beats_and_stops_beating_once_taken_over(tmp_path, monkeypatch):
    monkeypatch.setattr(workdir_lock, "BEAT_SECONDS", 0.05)
    warnings = []
    lock = WorkdirLock(tmp_path, warnings.append)
    lock.acquire()
    first = lease(tmp_path)["beat"]
    time.sleep(0.3)
    assert lease(tmp_path)["beat"] > first
    foreign_lease(tmp_path, silent_for=0)  # a node that judged this one lost took the workdir over
    deadline = time.monotonic() + 10
    while not warnings and time.monotonic() < deadline:
        time.sleep(0.05)
    lock.release()
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"warning: the lock of {tmp_path} was taken over by another process (host node-17.cluster, PID 4242"
    )
    assert lease(tmp_path)["host"] == "node-17.cluster"  # its lease is left in place, not removed


def test_a_history_with_a_step_written_twice_is_repaired_and_the_extra_rows_kept_aside(tmp_path):
    rows = [{"step": 50, "v": 1}, {"step": 50, "v": 2}, {"step": 100, "v": 3}, {"step": 150, "v": 4},
            {"step": 100, "v": 5}, {"step": 150, "v": 6}, {"step": 200, "v": 7}]  # fmt: skip
    lines = [json.dumps(row).encode() for row in rows]
    (tmp_path / "metrics.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    notes = []
    MetricWriter(tmp_path, resume_step=150, log=notes.append).close()
    assert read_history(tmp_path) == [{"step": 50, "v": 2}, {"step": 100, "v": 5}, {"step": 150, "v": 6}]
    dropped = (tmp_path / DROPPED).read_bytes().splitlines()
    assert dropped == [lines[0], lines[2], lines[3], lines[6]]  # every other line, byte for byte, in order
    assert len(notes) == 2
    assert "1 row of metrics.jsonl logged after step 150" in notes[0]
    assert notes[1].startswith(f"warning: {tmp_path / 'metrics.jsonl'} held more than one row for steps 50, 100, 150")


def test_a_sweep_worker_steps_past_a_trial_dir_in_use(data_dir, compilation_cache_dir, tmp_path, capsys):
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "trial_0").mkdir(parents=True)
    manual = WorkdirLock(sweep_dir / "trial_0", print)  # a manual run training in the first trial's dir
    manual.acquire()
    try:
        space = {"optimizer.learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}
        report = jm.sweep(sweep_dir, EXPERIMENTS / "mnist1d_logreg.py", space, num_trials=1, sampler="random",
                          overrides=["--config.train.num_steps=10", "--config.train.eval_every=10",
                                     "--config.train.checkpoint_every=10", "--config.train.progress_bar=False"],
                          heartbeat_interval=1)  # fmt: skip
    finally:
        manual.release()
    assert report.counts == {"FAIL": 1, "COMPLETE": 1}  # the trial in use failed with the one line, the next ran
    err = capsys.readouterr().err
    assert "trial 0 (trial_0) failed: workdir" in err and f"PID {os.getpid()}" in err
    assert not (sweep_dir / "trial_0" / "metrics.jsonl").exists()  # the manual run's dir was left alone
    assert read_history(sweep_dir / "trial_1")[-1]["step"] == 10


def test_a_lease_of_this_host_is_honoured_while_its_process_runs(tmp_path):
    """Where the kernel's lock says nothing (a filesystem without locks), the PID in a fresh lease decides."""
    now = time.time()
    ended = subprocess.Popen(["true"])
    ended.wait()
    for pid, running in ((os.getppid(), True), (ended.pid, False)):
        record = {"host": socket.gethostname(), "pid": pid, "since": now, "beat": now}
        (tmp_path / LOCK_FILE).write_text(json.dumps(record))
        warnings = []
        lock = WorkdirLock(tmp_path, warnings.append)
        if running:
            with pytest.raises(WorkdirBusy, match=f"PID {pid}, since"):
                lock.acquire()
            continue
        lock.acquire()
        lock.release()
        assert len(warnings) == 1 and "no longer running" in warnings[0] and f"PID {pid}," in warnings[0]
