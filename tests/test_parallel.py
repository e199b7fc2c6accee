"""Multi-device training (jaxmodels.parallel): every strategy reproduces the one-device run.

The 8-device checks run in a subprocess (tests/parallel_worker.py) that sets
XLA_FLAGS=--xla_force_host_platform_device_count=8 before importing JAX; the tests here judge its results.
XLA's backend optimisation is turned down there: it halves compile time, and every run compared shares it.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmodels import config as config_lib
from jaxmodels import parallel
from jaxmodels.compile_report import compile_report
from jaxmodels.errors import ConfigError
from jaxmodels.experiment import build_experiment
from jaxmodels.models import get_model
from jaxmodels.optim import make_optimizer
from jaxmodels.preemption import AGREE_EVERY
from jaxmodels.steps import create_train_state, train_step
from jaxmodels.tasks import Classify
from tests.conftest import committed_steps

ROOT = Path(__file__).resolve().parents[1]


def worker(mode: str, data_dir: str, out: Path, *args: str, devices: int = 8, timeout: int = 600):
    env = dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} --xla_backend_optimization_level=0",
        PYTHONPATH=str(ROOT),
        JAX_PLATFORMS="cpu",
    )
    command = [sys.executable, "-m", "tests.parallel_worker", mode, data_dir, str(out), *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: int = 600) -> subprocess.CompletedProcess:
    """Waits for `process`; on timeout kills it and fails with what it printed (no orphan keeps running)."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"{shlex.join(process.args)} did not finish in {timeout} s; its stderr ends: {stderr[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def worker_results(mode: str, data_dir: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Runs the worker's `mode` on 8 fake devices and returns the JSON it wrote."""
    out = tmp_path_factory.mktemp(mode) / f"{mode}.json"
    done = finish(worker(mode, data_dir, out))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def results(data_dir, tmp_path_factory) -> dict:
    return worker_results("strategies", data_dir, tmp_path_factory)


def assert_same_run(run: dict, reference: dict) -> None:
    np.testing.assert_allclose(run["losses"], reference["losses"], rtol=1e-5, atol=1e-5)
    assert run["params"].keys() == reference["params"].keys()
    for path, expected in reference["params"].items():
        np.testing.assert_allclose(run["params"][path], expected, rtol=1e-4, atol=1e-4, err_msg=path)


MATRIX = [
    f"{family}/{strategy}"
    for family, strategies in {
        "mlp": ("pmap", "dp", "fsdp"),
        "bn": ("pmap", "dp", "fsdp"),  # a CNN with BatchNorm
        "lstm": ("pmap", "dp", "fsdp"),
        "gpt": ("pmap", "dp", "fsdp", "tp"),  # through the LM task on Shakespeare characters
    }.items()
    for strategy in strategies
]


@pytest.mark.parametrize("run", MATRIX)
def test_strategy_on_8_devices_matches_one_device(results, run):
    reference = results[run.split("/")[0] + "/single"]
    assert len(results[run]["losses"]) >= 20
    assert_same_run(results[run], reference)
    assert results[run]["eval"].keys() == reference["eval"].keys()
    np.testing.assert_allclose(list(results[run]["eval"].values()), list(reference["eval"].values()), rtol=1e-4)


@pytest.mark.parametrize("strategy", ["pmap", "dp", "fsdp"])
def test_batchnorm_statistics_match_one_device(results, strategy):
    for leaf, expected in zip(
        results[f"bn/{strategy}"]["model_state"], results["bn/single"]["model_state"], strict=True
    ):
        np.testing.assert_allclose(leaf, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy", ["pmap", "dp", "fsdp", "tp"])
def test_each_device_holds_its_own_rows_of_the_batch(results, strategy):
    """Data parallelism by the rows' values: 64 rows over 8 data-parallel devices are 8 rows per device, each
    row on one device; tp's (data 4, model 2) mesh gives each row to the 2 devices of its data group."""
    copies = 2 if strategy == "tp" else 1
    for rows in results["rows_per_device"][strategy].values():  # placed, and constrained in the step
        assert sorted(map(int, rows)) == list(range(8))  # the ids of the 8 devices
        assert all(len(held) == 8 * copies for held in rows.values())
        assert sorted(row for held in rows.values() for row in held) == sorted(list(range(64)) * copies)


def test_streamed_batches_are_assembled_into_the_same_global_batch(results):
    assert_same_run(results["mlp/dp_grain"], results["mlp/single_ordered"])


def test_tp_splits_attention_heads_and_mlp_units_over_the_model_axis(results):
    specs = results["gpt/tp"]["specs"]
    assert specs["['block_0']['attention']['query']['kernel']"] == "P(None, 'model', None)"
    assert specs["['block_0']['attention']['out']['kernel']"] == "P('model', None, None)"
    assert specs["['block_1']['mlp']['fc']['kernel']"] == "P(None, 'model')"
    assert specs["['block_1']['mlp']['proj']['kernel']"] == "P('model', None)"
    assert specs["['embeddings']['token']['embedding']"] == "P()"


def test_fsdp_shards_each_parameter_along_its_largest_divisible_dimension(results):
    specs = results["gpt/fsdp"]["specs"]
    assert specs["['embeddings']['token']['embedding']"] == "P(None, 'data')"  # (94 characters, 32): 94 % 8 != 0
    assert specs["['block_0']['mlp']['fc']['kernel']"] == "P(None, 'data')"  # (32, 128)
    assert specs["['block_0']['attention']['key']['kernel']"] == "P('data',)"  # (32, 4 heads, 8)
    assert parallel.fsdp_spec((10, 3), 8) == jax.sharding.PartitionSpec()


def test_compile_report_grows_with_the_batch_and_shrinks_per_device_under_fsdp(results):
    dp64, dp256, fsdp64 = (results["compile"][name] for name in ("dp64", "dp256", "fsdp64"))
    assert dp256["flops_per_device"] > 2 * dp64["flops_per_device"] > 0
    assert dp256["argument_bytes"] > dp64["argument_bytes"]
    assert fsdp64["state_bytes_per_device"] < dp64["state_bytes_per_device"] / 4
    assert fsdp64["argument_bytes"] < dp64["argument_bytes"] / 4


def test_placement_mistakes_are_one_line_config_errors(results):
    errors = results["errors"]
    assert "data.batch_size=60 is not divisible by the 8 data-parallel devices" in errors["indivisible_batch"]
    assert "parallel.mesh" in errors["mesh"] and "8" in errors["mesh"]
    assert "parallel.mesh.model=8" in errors["tp_heads"]
    assert all("\n" not in message for message in errors.values())


@pytest.fixture
def port() -> Iterator[int]:
    """A free port on 127.0.0.1 for a coordinator, held for the whole test: bound (not listening) with
    SO_REUSEPORT, so no other program is given it meanwhile, while the coordinator (gRPC binds with
    SO_REUSEPORT too) can still bind it."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("strategy", ["dp", "pmap"])
def test_two_processes_reproduce_the_single_process_run(results, data_dir, tmp_path, strategy, port):
    workdir = tmp_path / "run"
    outs = [tmp_path / f"process{i}.json" for i in range(2)]
    processes = [
        worker("process", data_dir, outs[i], str(port), str(i), str(workdir), strategy, devices=4) for i in range(2)
    ]
    for process in processes:
        done = finish(process)
        assert done.returncode == 0, done.stderr[-3000:]
    zero, one = (json.loads(out.read_text()) for out in outs)
    assert zero["process_count"] == 2 and zero["devices"] == 8 and zero["local_devices"] == 4
    assert_same_run(zero, results["mlp/single_ordered"])
    for path, expected in zero["params"].items():
        np.testing.assert_array_equal(one["params"][path], expected)  # both processes hold the same replica
    np.testing.assert_allclose(list(zero["eval"].values()), list(results["mlp/single_ordered"]["eval"].values()))
    assert zero["restored_equal"] and one["restored_equal"]
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == ["20"]


def test_a_peer_that_never_starts_ends_in_a_clear_timeout_error(data_dir, tmp_path, port):
    # The worker sets a 3 s timeout; `finish` fails the test if the process is still waiting after 120 s.
    done = finish(worker("lonely", data_dir, tmp_path / "out.json", str(port), devices=2), timeout=120)
    assert done.returncode == 2
    assert "jaxmodels: error: not all 2 processes connected to 127.0.0.1:" in done.stderr
    assert "parallel.initialization_timeout=3" in done.stderr


def test_sigterm_to_one_of_two_processes_stops_both_at_the_same_step(data_dir, tmp_path, port):
    workdir = tmp_path / "run"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")

    def launch(process_id: int) -> subprocess.Popen:
        command = [
            sys.executable, "-m", "jaxmodels.cli", "train", "--workdir", str(workdir),
            "--config", str(ROOT / "experiments/mnist1d_mlp.py"), f"--config.data.data_dir={data_dir}",
            "--config.train.num_steps=1000000", "--config.train.eval_every=1000000", "--config.train.log_every=10",
            "--config.train.checkpoint_every=50", "--config.train.progress_bar=False",
            f"--config.parallel.coordinator_address=127.0.0.1:{port}", "--config.parallel.num_processes=2",
            f"--config.parallel.process_id={process_id}", "--config.parallel.initialization_timeout=60",
        ]  # fmt: skip
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    processes = [launch(0), launch(1)]
    try:
        deadline = time.monotonic() + 300
        while not committed_steps(workdir):
            assert all(process.poll() is None for process in processes), finish(processes[0]).stderr[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        processes[1].send_signal(signal.SIGTERM)  # process 0 gets no signal
        done = [finish(process, timeout=120) for process in processes]
    finally:
        for process in processes:
            process.kill()  # a no-op for a finished process; stops a survivor of a failed check
    steps = []
    for result, stopped_by in zip(done, ["a signal to another process of the run", "SIGTERM"], strict=True):
        assert result.returncode == 0, result.stderr[-3000:]
        line = next(line for line in result.stderr.splitlines() if line.startswith("jaxmodels: stopped by"))
        assert f"stopped by {stopped_by} at step" in line and "To resume, run the same command again" in line
        steps.append(int(line.split(" at step ")[1].split(";")[0]))
    assert steps[0] == steps[1] > 0
    assert steps[0] % AGREE_EVERY == 0  # the processes agree on stopping every AGREE_EVERY steps
    assert (workdir / "checkpoints" / str(steps[0]) / "commit_success.txt").is_file()


# ------------------------------------------------------------------------------------------ CPU devices

DEVICES_OF_A_RUN = """
import json, sys, jax
import jaxmodels as jm
from jaxmodels.experiment import build_experiment
if sys.argv[1] == "jax-first":
    jax.numpy.zeros(1).block_until_ready()  # the backends start before the runs are built
meshes = [build_experiment(jm.load_config("experiments/mnist1d_mlp.py", [o, *sys.argv[3:]])).strategy.mesh_shape
          for o in sys.argv[2].split()]
print(json.dumps({"devices": len(jax.devices()), "meshes": [m["data"] for m in meshes]}))
"""


@pytest.mark.parametrize(
    "order, xla_flags, devices, meshes, note",
    [
        # the first run splits the CPU into 2 devices and dp spreads its batch over them; a later run in the same
        # process asks for 1 and gets 1 (the default), then 2 again
        ("runs-first", "", 2, [2, 1, 2], False),
        # an explicit XLA flag wins: every device it makes is used
        ("runs-first", "--xla_force_host_platform_device_count=3", 3, [3, 3, 3], False),
        # too late to split: the run says so and goes on with the one device JAX started with
        ("jax-first", "", 1, [1, 1, 1], True),
    ],
)
def test_cpu_devices_splits_the_host_before_jax_starts(data_dir, order, xla_flags, devices, meshes, note):
    env = dict(os.environ, XLA_FLAGS=xla_flags, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    runs = "parallel.cpu_devices=2 parallel.cpu_devices=1 parallel.cpu_devices=2"
    command = [
        sys.executable,
        "-c",
        DEVICES_OF_A_RUN,
        order,
        runs,
        f"data.data_dir={data_dir}",
        "data.batch_size=96",
        "data.eval_batch_size=96",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"devices": devices, "meshes": meshes}
    assert ("parallel.cpu_devices=2 cannot apply, JAX already runs with 1 CPU device" in done.stderr) == note


# ------------------------------------------------------------------------------- checkpoints across strategies


@pytest.fixture(scope="module")
def restores(data_dir, tmp_path_factory) -> dict:
    return worker_results("restores", data_dir, tmp_path_factory)


@pytest.mark.parametrize("case", ["single->fsdp", "pmap->dp", "fsdp->pmap"])
def test_a_run_resumed_under_another_strategy_continues_the_same_run(restores, case):
    run, unbroken = restores[case], restores["unbroken"]
    assert run["restored_equal"]  # the halfway checkpoint comes back bit for bit in the new layout
    if case.endswith("fsdp"):
        assert "P(None, 'data')" in run["restored_specs"]  # really sharded over the 8 devices
    assert_same_run(run, unbroken)
    np.testing.assert_allclose(list(run["eval"].values()), list(unbroken["eval"].values()), rtol=1e-4)


@pytest.mark.parametrize("case", ["fsdp->eval on 1", "gpt tp->eval on 1"])
def test_a_checkpoint_saved_on_8_devices_is_evaluated_on_1(restores, case):
    run = restores[case]
    assert run["devices"] == 1 and run["step"] == 20
    assert run["restored_equal"]
    assert run["eval_restored"].keys() == run["eval_trained"].keys()
    for key, value in run["eval_trained"].items():
        assert run["eval_restored"][key] == pytest.approx(value, rel=1e-4)


# ------------------------------------------------------------------------------------------ one device, in process


def _mlp_step(optimizer: tuple[str, ...] = (), **options):
    """One train step of a small MLP on a fixed batch of 32 with the base optimizer (Adam) changed by `optimizer`
    overrides; returns (state before, state after, metrics)."""
    model, task = get_model("mlp", hidden_sizes=(32,)), Classify()
    tx = make_optimizer(config_lib.apply_overrides(config_lib.base_config(), optimizer).optimizer, 10)
    rng = np.random.default_rng(0)
    batch = {"inputs": rng.normal(size=(32, 40)).astype(np.float32), "label": rng.integers(0, 10, 32).astype(np.int32)}
    state = create_train_state(model, task, tx, batch, jax.random.key(0))
    step = jax.jit(functools.partial(train_step, model=model, task=task, tx=tx, **options))
    return (state, *step(state, batch, jax.random.key(1)))


def test_accumulating_micro_batches_equals_one_step_on_the_whole_batch():
    """With plain SGD the update is the gradient itself, so every element checks the averaging of the
    micro-batches' gradients (Adam's update, about lr * sign(gradient), would hide a wrong scale)."""
    sgd = ("optimizer.name=sgd", "optimizer.momentum=0.0", "optimizer.learning_rate=1.0")
    initial, whole, whole_metrics = _mlp_step(sgd)
    _, accumulated, accumulated_metrics = _mlp_step(sgd, accumulate_steps=4)
    start = jax.tree.leaves(initial.params)
    for before, a, b in zip(start, jax.tree.leaves(accumulated.params), jax.tree.leaves(whole.params), strict=True):
        assert float(np.abs(b - before).max()) > 1e-3  # every parameter array moved
        np.testing.assert_allclose(a - before, b - before, rtol=1e-4, atol=1e-7)  # the updates, element by element
    np.testing.assert_allclose(accumulated_metrics["loss"], whole_metrics["loss"], rtol=1e-5)
    assert accumulated_metrics["count"] == whole_metrics["count"] == 32


def test_mixed_precision_computes_in_bfloat16_on_float32_parameters():
    _, state, metrics = _mlp_step(compute_dtype="bfloat16")
    _, _, reference = _mlp_step()
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state.params))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state.opt_state) if leaf.ndim)
    np.testing.assert_allclose(metrics["loss"], reference["loss"], rtol=2e-2)
    assert not np.array_equal(metrics["loss"], reference["loss"])  # it really ran in bfloat16


@pytest.mark.parametrize("policy", ["dots", "full"])
def test_rematerialisation_changes_memory_not_results(policy):
    _, state, _ = _mlp_step(remat=policy)
    _, reference, _ = _mlp_step()
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(reference), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def _config(*overrides: str):
    return config_lib.apply_overrides(config_lib.lock(config_lib.base_config()), list(overrides))


def test_a_bad_strategy_name_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'parallel.strategy' is 'ddp'; choose one of pmap, dp, fsdp, tp"):
        _config("--config.parallel.strategy=ddp")


def test_a_mesh_that_does_not_divide_the_devices_is_a_config_error():
    with pytest.raises(ConfigError, match=r"parallel.mesh .* does not divide the 8 devices"):
        parallel.mesh_shape(_config("--config.parallel.mesh.model=3"), 8)
    assert parallel.mesh_shape(_config("--config.parallel.mesh.model=2"), 8) == {"data": 4, "model": 2}
    with pytest.raises(ConfigError, match=r"parallel.num_devices=99"):
        parallel.select_devices(_config("--config.parallel.num_devices=99"))


def test_a_batch_that_does_not_split_evenly_is_a_config_error():
    with pytest.raises(ConfigError, match=r"data.batch_size=100 is not divisible by the 8 data-parallel devices"):
        parallel._check_divisible(_config(), 8)
    with pytest.raises(ConfigError, match=r"data.batch_size=100 is not divisible by train.accumulate_steps=3"):
        _config("--config.train.accumulate_steps=3")


def test_compile_command_prints_flops_and_memory(data_dir):
    result = subprocess.run(
        [sys.executable, "-m", "jaxmodels.cli", "compile", "--config", str(ROOT / "experiments/mnist1d_mlp.py")],
        capture_output=True,
        text=True,
        env=dict(os.environ, TFDS_DATA_DIR=data_dir),
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "FLOPs per step, per device" in result.stdout
    assert "params + optimizer state / device: 178.3 KiB" in result.stdout  # 15,210 params x 3 (Adam) x 4 B + step
    assert "temporaries" in result.stdout


def test_compile_counts_a_gpt_language_model_step_as_the_palm_formula_does(data_dir):
    config = config_lib.load_config_file(ROOT / "experiments/shakespeare_char_gpt.py")
    config = config_lib.apply_overrides(config, [f"--config.data.data_dir={data_dir}"])
    report = compile_report(build_experiment(config))
    tokens = config.data.batch_size * config.data.block_size
    layers, width, context = config.model.num_layers, config.model.embed_dim, config.model.block_size
    palm = (6 * report["parameters"] + 12 * layers * width * context) * tokens  # Chowdhery et al. 2022, App. B
    assert report["model"] == "gpt" and 800_000 < report["parameters"] < 830_000
    flops = report["flops_per_device"] * report["devices"]  # the batch split over the experiment's CPU devices
    assert 0.9 * palm < flops < 1.25 * palm  # plus softmax, layer norms, AdamW


@pytest.mark.parametrize(
    ("devices", "overrides", "least_accuracy"),
    [
        # The whole default experiment, 6,000 steps: it used to abort in an XLA rendezvous after ~2,500 steps.
        (2, [], 0.9),
        # 1,000 steps with no host sync in between (one log line at the end) on 8 devices.
        (
            8,
            ["--config.train.num_steps=1000", "--config.train.log_every=1000", "--config.train.eval_every=1000",
             "--config.parallel.strategy=pmap", "--config.data.batch_size=96"],
            0.8,
        ),
    ],
    ids=["2_devices_dp_6000_steps", "8_devices_pmap_1000_unsynced_steps"],
)  # fmt: skip
def test_long_multi_device_cpu_runs_finish(data_dir, tmp_path, devices, overrides, least_accuracy):
    command = [sys.executable, "-m", "jaxmodels.cli", "train", "--config", str(ROOT / "experiments/mnist1d_cnn.py")]
    result = subprocess.run(
        [*command, "--workdir", str(tmp_path), "--config.train.progress_bar=False", *overrides],
        capture_output=True,
        text=True,
        env=dict(os.environ, TFDS_DATA_DIR=data_dir, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}"),
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    final = json.loads(result.stdout.splitlines()[-1])
    assert final["test/accuracy"] > least_accuracy  # one device: 0.94 after 6,000 steps


def test_a_whole_text_evaluation_on_two_cpu_devices_finishes(data_dir, tmp_path):
    """The char GPT (two CPU devices, its experiment's default) scores all 125 batches of the validation text:
    unbounded, the evaluation's dispatches aborted the process in an XLA rendezvous (twice in two tries)."""
    command = [
        sys.executable, "-m", "jaxmodels.cli", "train", "--config", str(ROOT / "experiments/shakespeare_char_gpt.py"),
        "--workdir", str(tmp_path), "--config.data.eval_windows=0", "--config.train.num_steps=2",
        "--config.optimizer.warmup_steps=1", "--config.train.eval_every=2", "--config.train.progress_bar=False",
        "--config.parallel.cpu_devices=2",  # the experiment's default, stated so that the test keeps it
    ]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}  # cpu_devices, not forced
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    final = json.loads(result.stdout.splitlines()[-1])
    assert 3.0 < final["val/loss"] < np.log(89) + 0.5  # two steps in: near uniform over the 89 characters


@pytest.mark.parametrize(
    "name, inputs, sizes",
    [
        ("cifar_resnet20", jnp.zeros((2, 32, 32, 3)), {"num_classes": 10}),
        (
            "gpt",
            jnp.zeros((2, 16), jnp.int32),
            {"vocab_size": 50, "block_size": 16, "num_layers": 2, "num_heads": 2, "embed_dim": 32},
        ),
        ("char_rnn", jnp.zeros((2, 16), jnp.int32), {"vocab_size": 50}),
    ],
)
def test_the_initialiser_compiled_for_one_call_draws_the_same_parameters_bit_for_bit(name, inputs, sizes):
    # Strategies compile the state initialiser with XLA's backend optimisation lowered (faster first steps): the
    # parameters of a seed must not change by a bit (normal, truncated normal and orthogonal draws here).
    model = get_model(name, **sizes)

    def init(key: jax.Array) -> dict:
        return model.init({"params": key, "dropout": key}, inputs, train=False)

    fast, default = parallel.run_once(init, jax.random.key(3)), jax.jit(init)(jax.random.key(3))
    assert jax.tree.structure(fast) == jax.tree.structure(default)
    for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(default), strict=True):
        np.testing.assert_array_equal(a, b)
