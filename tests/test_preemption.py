"""Interrupted runs through the CLI, as a scheduler or a crash interrupts them: kill -9 and SIGTERM.

Each test starts an unbroken reference run and the run it interrupts side by side, then re-runs the
interrupted command and compares the final checkpoints (params, optimizer state, step) and metrics logs.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxmodels.data import sources
from jaxmodels.params_io import load_params
from tests.conftest import EXPERIMENTS, committed_steps

NUM_STEPS = 1000
COMMON = [
    f"--config.train.num_steps={NUM_STEPS}", "--config.train.checkpoint_every=50", "--config.train.eval_every=250",
    "--config.train.log_every=50", "--config.train.progress_bar=False",
]  # fmt: skip
RUNS = {
    # The `mlp` with dropout on MNIST-1D (dropout masks must be reproduced too).
    "mlp": [
        "--config", str(EXPERIMENTS / "mnist1d_cnn.py"),
        "--config.model.name=mlp", "--config.model.hidden_sizes=(64, 64)", "--config.model.dropout=0.2",
    ],
    # A small char-level GPT with dropout: Grain-streamed random windows, whose iterator position is saved.
    "gpt": [
        "--config", str(EXPERIMENTS / "shakespeare_char_gpt.py"),
        "--config.model.num_layers=2", "--config.model.embed_dim=32", "--config.model.dropout=0.1",
        "--config.model.block_size=32", "--config.data.block_size=32", "--config.data.batch_size=8",
        "--config.data.eval_windows=32",
    ],
}  # fmt: skip


def start(workdir: Path, run: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "jaxmodels.cli", "train", "--workdir", str(workdir), *RUNS[run], *COMMON, *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    """Waits for `process`; on timeout kills it (no orphan keeps running) and fails with its stderr."""
    try:
        _, err = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{process.args} did not finish in 600 s; its stderr ends: {process.communicate()[1][-3000:]}")
    return process.returncode, err


def arbitrary_moment() -> float:
    """A random delay in [0, 0.1) s: mid-step, mid-save or mid-log. Printed with its seed, so that a failure
    can be replayed with JAXMODELS_TEST_SEED=<seed>."""
    seed = int(os.environ.get("JAXMODELS_TEST_SEED", random.randrange(2**32)))
    delay = random.Random(seed).uniform(0.0, 0.1)
    print(f"interrupting {delay:.4f} s after the first checkpoint (JAXMODELS_TEST_SEED={seed})")
    return delay


def wait_for_first_checkpoint(workdir: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not committed_steps(workdir):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def final_state(workdir: Path):
    """The last checkpoint's train state, read onto this process's first device whatever devices saved it
    (orbax needs target shardings for a checkpoint saved on more devices than this process has)."""
    path = workdir.absolute() / "checkpoints" / str(NUM_STEPS) / "state"
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    with ocp.StandardCheckpointer() as reader:
        saved = reader.metadata(path).item_metadata
        target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), saved)
        return reader.restore(path, target)


def log(workdir: Path) -> list[dict]:
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "train/steps_per_second"} for r in records]


def assert_same_run(a: Path, b: Path) -> None:
    state_a, state_b = final_state(a), final_state(b)
    assert jax.tree.structure(state_a) == jax.tree.structure(state_b)
    for x, y in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b), strict=True):
        assert np.array_equal(x, y)  # bitwise: params, optimizer state, step
    assert log(a) == log(b)


@pytest.mark.parametrize("run", ["mlp", "gpt"])
def test_a_run_killed_at_any_moment_resumes_to_the_same_result(tmp_path, data_dir, run):
    sources.open_dataset("shakespeare" if run == "gpt" else "mnist1d", data_dir)  # prepared before the race
    reference, victim = start(tmp_path / "reference", run), start(tmp_path / "killed", run)
    wait_for_first_checkpoint(tmp_path / "killed", victim)
    time.sleep(arbitrary_moment())
    os.kill(victim.pid, signal.SIGKILL)
    assert finish(victim)[0] == -signal.SIGKILL
    code, err = finish(start(tmp_path / "killed", run))
    assert code == 0, err
    assert "resumed from the checkpoint at step" in err
    assert finish(reference)[0] == 0
    assert_same_run(tmp_path / "reference", tmp_path / "killed")

    result = subprocess.run(
        [sys.executable, "-m", "jaxmodels.cli", "export", "--workdir", str(tmp_path / "killed"), "--out",
         str(tmp_path / "export")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["step"] == NUM_STEPS
    exported, _ = load_params(tmp_path / "export")
    reference_params = final_state(tmp_path / "reference")["params"]
    assert all(map(np.array_equal, jax.tree.leaves(exported["params"]), jax.tree.leaves(reference_params)))


def test_sigterm_saves_exits_0_and_says_how_to_resume(tmp_path, data_dir):
    grain = "--config.data.loader=grain"  # the data iterator's position must be saved too
    reference, victim = start(tmp_path / "reference", "mlp", grain), start(tmp_path / "stopped", "mlp", grain)
    wait_for_first_checkpoint(tmp_path / "stopped", victim)
    time.sleep(arbitrary_moment())
    victim.send_signal(signal.SIGTERM)
    code, err = finish(victim)
    assert code == 0, err
    line = next(line for line in err.splitlines() if line.startswith("jaxmodels: stopped by SIGTERM at step"))
    step = int(line.split("at step ")[1].split(";")[0])
    assert 0 < step < NUM_STEPS and (tmp_path / "stopped" / "checkpoints" / str(step) / "commit_success.txt").is_file()
    assert f"To resume, run the same command again: jaxmodels train --workdir {tmp_path / 'stopped'}" in line
    code, err = finish(start(tmp_path / "stopped", "mlp", grain))
    assert code == 0, err
    assert f"resumed from the checkpoint at step {step}" in err
    assert finish(reference)[0] == 0
    assert_same_run(tmp_path / "reference", tmp_path / "stopped")
