"""Shared fixtures: one MNIST-1D TFDS data dir per test session (generated once, ~6 s)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

from jaxmodels import cli
from jaxmodels import config as config_lib
from jaxmodels.data import sources

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
PRETRAINED_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pretrained"
# The experiments that fine-tune an import read it from these variables; tests point them at the tiny fixtures.
EXPORT_VARIABLES = {"JAXMODELS_BERT_EXPORT": "bert_mlm", "JAXMODELS_GPT2_EXPORT": "gpt2_lm"}


class Result(NamedTuple):
    """What one command did: its exit status and what it printed."""

    status: int
    stdout: str
    stderr: str


def run_cli(*argv: str) -> Result:
    """`jaxmodels ARGV` in this process, as the console script runs it (argparse's usage errors included)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = cli.main(list(argv))
        except SystemExit as exit_:
            status = exit_.code
    return Result(status, stdout.getvalue(), stderr.getvalue())


def assert_one_error_line(status: int, stderr: str, *fragments: str) -> str:
    """A mistake as the CLI must report it: status 2, exactly one `jaxmodels: error:` line on stderr holding every
    fragment, and no traceback. Returns that line."""
    assert status == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("jaxmodels: error:")]
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def compilation_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A persistent JAX compilation cache for one test module, restored afterwards: a module that builds the same
    tiny experiment many times compiles it once. Commands it starts share it via $JAX_COMPILATION_CACHE_DIR."""
    path = tmp_path_factory.mktemp("jax_cache")
    settings = {
        "jax_compilation_cache_dir": str(path),
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }
    previous = {name: getattr(jax.config, name) for name in settings}
    for name, value in settings.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()
    yield path
    for name, value in previous.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


@pytest.fixture(scope="session")
def pretrained_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny released BERT (masked LM) and GPT-2 fixtures imported once per session with `jaxmodels import`:
    {'bert_mlm': export dir, 'gpt2_lm': export dir}."""
    from jaxmodels import cli

    out = tmp_path_factory.mktemp("pretrained_exports")
    for name in EXPORT_VARIABLES.values():
        assert cli.main(["import", "--from", str(PRETRAINED_FIXTURES / name), "--out", str(out / name)]) == 0
    return {name: out / name for name in EXPORT_VARIABLES.values()}


@pytest.fixture
def experiment_exports(pretrained_exports: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The experiments that fine-tune an import read the fixture imports (see EXPORT_VARIABLES)."""
    for variable, name in EXPORT_VARIABLES.items():
        monkeypatch.setenv(variable, str(pretrained_exports[name]))
    return pretrained_exports


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A TFDS data dir holding the prepared mnist1d dataset; also exported as $TFDS_DATA_DIR."""
    path = str(tmp_path_factory.mktemp("tensorflow_datasets"))
    sources.open_dataset("mnist1d", path)
    os.environ["TFDS_DATA_DIR"] = path
    return path


def small_config_factory(data_dir: str):
    """make(*overrides): the default CNN experiment, shortened for tests; callers change what they test."""

    def make(*overrides: str):
        config = config_lib.load_config_file(EXPERIMENTS / "mnist1d_cnn.py")
        base = [
            f"--config.data.data_dir={data_dir}",
            "--config.train.num_steps=60",
            "--config.train.eval_every=30",
            "--config.train.log_every=10",
            "--config.train.checkpoint_every=20",
            "--config.train.progress_bar=False",
        ]
        return config_lib.apply_overrides(config, [*base, *overrides])

    return make


@pytest.fixture
def small_config(data_dir: str):
    """The default CNN experiment, shortened for tests; callers change what they test."""
    return small_config_factory(data_dir)


def committed_steps(workdir: Path) -> list[int]:
    """The steps of `workdir`'s finished checkpoints. Orbax writes commit_success.txt in a save's temporary dir
    and then renames it to the step: a marker in a dir not yet renamed is a save in progress, which a kill
    at that moment leaves unfinished (the next run removes it and starts from the checkpoint before)."""
    markers = (workdir / "checkpoints").glob("*/commit_success.txt")
    return sorted(int(p.parent.name) for p in markers if p.parent.name.isdigit())
