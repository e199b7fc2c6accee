"""The benchmark scripts, end to end on small workloads: `make benchmarks`' comparison (benchmarks/frameworks.py)
and its report, the prepared GPU script (benchmarks/gpu_throughput.py), which runs only when a GPU is lent and
must work the first time it does, and the scripts whose numbers the docs quote. Their numbers depend on the
machine, so the tests hold them to what must be true anywhere: rates above zero, the rows asked for, the
counts a run implies.

PyTorch is a peer, installed apart from jaxmodels (and absent in CI): every test that asks for it runs with an
import of `torch` that fails, so the scripts' handling of a missing peer is what is tested, on any machine.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture
def without_torch(tmp_path: Path) -> dict[str, str]:
    """An environment in which `import torch` raises ImportError, whether or not PyTorch is installed."""
    shim = tmp_path / "no_torch"
    shim.mkdir()
    (shim / "torch.py").write_text("raise ImportError(\"No module named 'torch'\")\n")
    path = os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path}


def run_script(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def markdown_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in `text`, without the header and separator rows."""
    lines = [line.strip() for line in text.splitlines()]

    def is_separator(line: str) -> bool:
        return line.startswith("|") and set(line) <= set("|-: ")

    rows = []
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        if line.startswith("|") and not is_separator(line) and not is_separator(following):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def number(cell: str) -> float:
    return float(cell.replace(",", "").rstrip("x"))


# ---------------------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------------------


def a_run() -> dict:
    """A comparison's results as frameworks.py collects them: jaxmodels, a slower peer and a failed one."""
    return {
        "date": "2026-12-03",
        "cpu": "test CPU",
        "cores": 2,
        "python": "3.11",
        "versions": {"jax": "0.10.2"},
        "xla_flags": "",
        "load_average": 0.5,
        "matmul_gflops": 100.0,
        "rounds": 3,
        "seconds": 1.0,
        "overrides": [],
        "results": {
            "char_gpt": {
                "jaxmodels": {
                    "steps_per_s": 20.0,
                    "rates": [20.0, 18.0, 22.0],
                    "first_step_s": 5.0,
                    "peak_rss_mb": 800.0,
                    "flops": 4e9,
                    "parameters": 812_928,
                    "feed_batches_per_s": 1500.0,
                    "checkpoint_save_s": 1.5,
                },
                "torch": {"steps_per_s": 16.0, "rates": [16.0, 18.0, 11.0], "first_step_s": 1.3, "peak_rss_mb": 370.0},
                "keras": {"error": "ImportError: No module named 'keras'"},
            }
        },
    }


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from peers import report

    return report


def test_report_ratios_are_to_the_best_peer_round_by_round(report) -> None:
    rows = {row[1]: row for row in markdown_rows(report.table(a_run())) if row[0] == "char_gpt"}
    ours, peer, failed = rows["jaxmodels"], rows["PyTorch eager"], rows["Keras 3 (JAX)"]
    assert ours[2:5] == ["20.0", "1.25", "1.00-2.00"]  # medians 20/16; rounds 20/16, 18/18, 22/11
    assert ours[8:10] == ["80.0", "80.0"]  # 4 GFLOP x 20 steps/s, against a 100 GFLOP/s peak
    assert peer[2:5] == ["16.0", "1.00", "1.00-1.00"]
    assert peer[8] == "64.0"  # the peer's rate at jaxmodels' FLOPs per step
    assert failed[2].startswith("failed: ImportError")


def test_report_rewrites_only_its_section(report, tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    path.write_text(f"# Benchmarks\n\nprose before\n\n{report.BEGIN}\nlast run\n{report.END}\n\nprose after\n")
    report.write(a_run(), path)
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\nprose before\n\n" + report.BEGIN)
    assert text.endswith(report.END + "\n\nprose after\n")
    assert "last run" not in text and "| char_gpt | 812,928 | 1,500 | 20.0 | 1.50 |" in text
    assert json.loads(path.with_suffix(".json").read_text()) == a_run()
    assert path.with_suffix(".png").read_bytes().startswith(b"\x89PNG")


# ---------------------------------------------------------------------------------------------------------------
# make benchmarks
# ---------------------------------------------------------------------------------------------------------------


def test_frameworks_measures_a_case_and_reports_a_missing_peer(
    without_torch: dict[str, str], data_dir: str, tmp_path: Path
) -> None:
    out = tmp_path / "benchmarks.md"
    args = ("--cases", "mnist1d_mlp", "--frameworks", "jaxmodels,torch", "--rounds", "2", "--seconds", "0.3")
    finished = run_script("frameworks.py", *args, "--out", str(out), env=without_torch)
    assert finished.returncode == 0, finished.stderr[-3000:]
    results = json.loads(out.with_suffix(".json").read_text())["results"]["mnist1d_mlp"]
    ours = results["jaxmodels"]
    assert len(ours["rates"]) == 2 and ours["steps_per_s"] == pytest.approx(statistics.median(ours["rates"]))
    assert min(ours["rates"]) > 0 and 0 < ours["first_step_s"] < 120 and ours["peak_rss_mb"] > 0
    assert ours["parameters"] == 15_210  # 40 -> 100 -> 100 -> 10, with biases
    # Forward and backward matmuls: about 6 FLOPs per parameter and example (batch 100); XLA counts the rest too.
    assert 0.5 < ours["flops"] / (6 * 15_210 * 100) < 2
    assert ours["checkpoint_save_s"] > 0 and ours["feed_batches_per_s"] is None  # resident feed
    assert "ImportError" in results["torch"]["error"]
    text = out.read_text()
    assert "| mnist1d_mlp | jaxmodels |" in text and "| mnist1d_mlp | PyTorch eager | failed: " in text


def test_frameworks_refuses_unknown_names() -> None:
    finished = run_script("frameworks.py", "--cases", "char_gtp", "--frameworks", "jaxmodels,pytorch", "--out", "")
    error = finished.stderr.splitlines()[-1]
    assert finished.returncode == 2 and "unknown pytorch, char_gtp" in error
    assert "--cases takes mnist1d_cnn, " in error
    assert "--frameworks takes jaxmodels, torch, torch_compile, keras" in error


# ---------------------------------------------------------------------------------------------------------------
# The GPU script, on two CPU devices
# ---------------------------------------------------------------------------------------------------------------


def test_gpu_throughput_smoke_runs_data_parallel_and_reports_missing_peers(
    without_torch: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "gpu.json"
    env = {**without_torch, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    finished = run_script("gpu_throughput.py", "--smoke", "--out", str(out), env=env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    frameworks = json.loads(out.read_text())["frameworks"]
    gpt, resnet = frameworks["jaxmodels"]["gpt_tiny"], frameworks["jaxmodels"]["resnet_tiny"]
    for result in (gpt, resnet):
        assert result["devices"] == 2 and result["global_batch"] == 8  # 4 examples per device
        assert result["examples_per_second"] > 0 and result["xla_flops_per_step"] > 0
        assert result["mfu_xla"] is None  # no known peak for a CPU
        assert "per_device_vs_torch" not in result  # no peer result to compare with
    # Four steps from initialisation: the losses are still near chance (vocabulary 32, 10 classes).
    assert abs(gpt["loss"] - math.log(32)) < 0.5 and 0 < resnet["loss"] < math.log(10) + 1
    tokens_per_step = gpt["global_batch"] * 16
    assert gpt["tokens_per_second"] == pytest.approx(gpt["examples_per_second"] * 16, rel=1e-3)
    # The PaLM formula counts the matmuls only; XLA's count of the whole step is at least that.
    assert gpt["xla_flops_per_step"] / tokens_per_step >= gpt["palm_flops_per_token"]
    for peer in ("torch", "torch_compile"):
        assert set(frameworks[peer]) == {"gpt_tiny", "resnet_tiny"}
        assert all("ImportError" in result["error"] for result in frameworks[peer].values())


def test_gpu_throughput_refuses_a_peer_without_jaxmodels_first() -> None:
    finished = run_script("gpu_throughput.py", "--smoke", "--frameworks", "torch")
    assert finished.returncode == 2 and "jaxmodels first" in finished.stderr


def test_gpu_throughput_imports_nothing_the_gpu_image_lacks() -> None:
    """The GPU image has JAX, Flax and Optax but no grain, TFDS, Orbax or ml_collections: the script must not
    import them (nor PyTorch, which only its peer workers import)."""
    absent = ("grain", "tensorflow_datasets", "orbax", "ml_collections", "torch")
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); import gpu_throughput; "
        f"print(sorted(name for name in {absent!r} if name in sys.modules))"
    )
    finished = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------------------------
# The scripts the docs quote
# ---------------------------------------------------------------------------------------------------------------


def test_mnist1d_speed_compares_the_loop_with_a_minimal_one(data_dir: str) -> None:
    finished = run_script("mnist1d_speed.py", "--steps", "50", "--rounds", "1", "--data_dir", data_dir)
    assert finished.returncode == 0, finished.stderr[-3000:]
    rates = dict(re.findall(r"^(minimal JAX|jaxmodels)\s+median\s+(\d+) steps/s", finished.stdout, re.M))
    assert set(rates) == {"minimal JAX", "jaxmodels"} and min(map(int, rates.values())) > 0
    ratio = float(re.search(r"ratio jaxmodels / minimal JAX: ([\d.]+)", finished.stdout).group(1))
    assert ratio == pytest.approx(int(rates["jaxmodels"]) / int(rates["minimal JAX"]), abs=0.01)


def test_cpu_variants_times_each_device_layout(data_dir: str) -> None:
    args = ("--cases", "mnist1d_mlp", "--rounds", "1", "--seconds", "0.3")
    finished = run_script("cpu_variants.py", *args)
    assert finished.returncode == 0, finished.stderr[-3000:]
    rows = {row[1]: row for row in markdown_rows(finished.stdout) if row[0] == "mnist1d_mlp"}
    assert set(rows) == {"as the experiment", "1 device", "2 devices, dp"}
    assert rows["1 device"][3] == "1.00" and all(number(row[2]) > 0 for row in rows.values())


def test_parallel_speed_runs_every_strategy_on_eight_devices(data_dir: str) -> None:
    finished = run_script("parallel_speed.py", "--steps", "5")
    assert finished.returncode == 0, finished.stderr[-3000:]
    rows = {row[0]: row for row in markdown_rows(finished.stdout)}
    assert rows["one device (dp on a 1-device mesh)"][1] == "1"
    assert [rows[name][1] for name in ("pmap", "dp", "fsdp")] == ["8", "8", "8"]
    assert all(number(row[2]) > 0 for row in rows.values())


def test_feed_vs_step_rates_a_streamed_feed() -> None:
    experiment = "experiments/shakespeare_char_gpt.py"
    finished = run_script("feed_vs_step.py", experiment, "--seconds", "0.3")
    assert finished.returncode == 0, finished.stderr[-3000:]
    (row,) = markdown_rows(finished.stdout)
    assert row[:3] == [f"`{experiment}`", "gpt", "12"]
    feed, step, ratio = map(number, row[3:])
    assert feed > 0 and step > 0 and ratio == pytest.approx(feed / step, rel=0.05)


def test_data_pipelines_rates_every_pipeline_and_part() -> None:
    finished = run_script("data_pipelines.py", "--seconds", "0.1", "--rounds", "1")
    assert finished.returncode == 0, finished.stderr[-3000:]
    rows = markdown_rows(finished.stdout)
    assert len(rows) >= 5 and all(number(row[-1]) > 0 for row in rows)


def test_checkpoint_overhead_times_the_loop_with_and_without_saves(data_dir: str) -> None:
    args = ("--experiment", "experiments/mnist1d_cnn.py", "--steps", "40", "--every", "10", "--rounds", "1")
    finished = run_script("checkpoint_overhead.py", *args, f"--config.data.data_dir={data_dir}")
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads(finished.stdout[finished.stdout.index("{") :])
    assert result["saves"] == 4 and result["steps"] == 40
    assert set(result["seconds"]) == {"save every 10 steps (async)", "save only at the end"}
    assert min(result["seconds"].values()) > 0


def test_mnist1d_table_reproduces_the_logistic_regression_row(data_dir: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs.json"
    args = ("--models", "logreg", "--seeds", "0", "--out", str(tmp_path), "--data_dir", data_dir, "--json", str(runs))
    finished = run_script("mnist1d_table.py", *args)
    assert finished.returncode == 0, finished.stderr[-3000:]
    (row,) = markdown_rows(finished.stdout)
    assert row[:2] == ["logreg", "32 ± 1"] and row[4] == "1"
    final, best = (float(cell.split(" ± ")[0]) for cell in row[2:4])
    assert 29 <= final <= 35 and final <= best  # Greydanus (2020), Table 1: 32 ± 1 %
    assert (tmp_path / "logreg_seed0" / "metrics.jsonl").exists()
    (run,) = json.loads(runs.read_text())["logreg"]
    assert (
        run["seed"] == 0 and run["final_accuracy"] == pytest.approx(final, abs=0.05) and run["best_accuracy"] >= final
    )
    # --compare: the same file twice is bitwise equal; a run 1.5 points higher with another loss is not
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"logreg": [{**run, "final_accuracy": final + 1.5, "final_test_loss": 0.1}]}))
    same, shifted = (run_script("mnist1d_table.py", "--compare", str(runs), str(b)) for b in (runs, other))
    assert same.returncode == 0 and shifted.returncode == 0, same.stderr[-3000:] + shifted.stderr[-3000:]
    assert markdown_rows(same.stdout)[0][3:] == ["+0.0", "1 of 1"]
    assert markdown_rows(shifted.stdout)[0][3:] == ["+1.5", "0 of 1"]
