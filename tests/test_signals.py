"""Ctrl-C (SIGINT) during training: from the library (`jm.train` raises `Preempted` after saving, and resumes), on
the `PreemptionGuard` itself (a second Ctrl-C interrupts at once), and through the `jaxmodels train` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import jaxmodels as jm
from jaxmodels.metric_writers import MetricWriter, read_history
from jaxmodels.preemption import Preempted, PreemptionGuard
from tests.conftest import EXPERIMENTS, committed_steps

# The `mlp` of models/cnn.py on MNIST-1D: the quickest model to compile.
MLP = ("--config.model.name=mlp", "--config.model.hidden_sizes=(16,)")


pytestmark = pytest.mark.usefixtures("compilation_cache_dir")  # the three runs here compile one MLP once


def _handlers() -> tuple:
    return signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


def test_sigint_in_train_saves_the_step_raises_preempted_and_a_second_call_resumes(
    small_config, tmp_path, monkeypatch, capfd
):
    config = small_config(*MLP, "--config.train.num_steps=60", "--config.train.eval_every=60")
    write = MetricWriter.write

    def write_then_sigint(self, step, scalars):  # Ctrl-C while the loop logs step 30 (a checkpoint exists at 20)
        write(self, step, scalars)
        if step == 30:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(MetricWriter, "write", write_then_sigint)
    before = _handlers()
    with pytest.raises(Preempted) as stopped:
        jm.train(config, tmp_path)
    assert _handlers() == before  # the guard put the handlers back
    # The flag is read after each step: the loop stops after the next one and saves it.
    assert (stopped.value.step, stopped.value.signal_name) == (31, "SIGINT")
    assert stopped.value.directory == tmp_path.absolute() / "checkpoints"
    assert committed_steps(tmp_path) == [20, 31]
    assert [row["step"] for row in read_history(tmp_path)] == [10, 20, 30]

    monkeypatch.undo()
    capfd.readouterr()
    resumed = jm.train(config, tmp_path)
    assert f"resumed from the checkpoint at step 31 in {tmp_path.absolute() / 'checkpoints'}" in capfd.readouterr().err
    assert resumed.step == 60
    assert [row["step"] for row in resumed.history] == [10, 20, 30, 40, 50, 60]


def test_a_second_sigint_while_the_first_is_pending_raises_keyboard_interrupt():
    before = _handlers()
    after_first = None
    with PreemptionGuard() as guard:
        assert _handlers() != before
        os.kill(os.getpid(), signal.SIGINT)
        after_first = (guard.requested, guard.signal_name)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert after_first == (True, "SIGINT")
    assert _handlers() == before


def test_a_second_sigterm_only_keeps_the_request_and_sigint_after_it_interrupts():
    before = _handlers()
    with PreemptionGuard() as guard:
        assert not guard.requested
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # a scheduler repeating itself: still a clean stop
        assert (guard.requested, guard.signal_name) == (True, "SIGTERM")
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert _handlers() == before


def test_sigint_to_the_train_command_saves_and_exits_0(tmp_path, data_dir, compilation_cache_dir):
    workdir = tmp_path / "run"
    command = [
        sys.executable, "-m", "jaxmodels.cli", "train", "--config", str(EXPERIMENTS / "mnist1d_cnn.py"),
        "--workdir", str(workdir), *MLP, "--config.train.num_steps=100000", "--config.train.checkpoint_every=20",
        "--config.train.eval_every=100000", "--config.train.log_every=100", "--config.train.progress_bar=False",
    ]  # fmt: skip
    env = {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(compilation_cache_dir),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while not committed_steps(workdir):  # the loop runs (and guards) once the first checkpoint is written
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    line = next(line for line in err.splitlines() if line.startswith("jaxmodels: stopped by SIGINT at step "))
    step = int(line.split("at step ")[1].split(";")[0])
    assert step > 20 and step in committed_steps(workdir)
    assert f"checkpoint saved in {workdir.absolute() / 'checkpoints'}" in line
    assert "To resume, run the same command again: jaxmodels train" in line
    assert out == ""  # no final metrics line: the run did not finish
