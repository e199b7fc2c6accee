"""Bad input ends in one line and exit status 2, and leaves the workdir as it was.

The contract of `jaxmodels.cli`: a mistake in a config, a dataset name, a checkpoint, a workdir file or a flag
prints exactly one `jaxmodels: error: ...` line on stderr, no traceback, exits with status 2, and every file of
the workdir it was pointed at is byte-identical afterwards. Each case runs the real command line in-process on
a copy of one tiny trained workdir; hypothesis writes random bytes and random JSON into config.json and
metrics.jsonl. A persistent compilation cache lets the many builds of the same tiny experiment compile once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmodels
from jaxmodels.errors import ConfigError
from jaxmodels.metric_writers import MetricWriter, read_history
from tests.conftest import EXPERIMENTS, Result, assert_one_error_line, run_cli

MLP, CNN, GPT = (str(EXPERIMENTS / name) for name in ("mnist1d_mlp.py", "mnist1d_cnn.py", "shakespeare_char_gpt.py"))
QUIET = ["--config.train.progress_bar=False"]
MLP_RUN = [*QUIET, "--config.train.num_steps=20", "--config.train.checkpoint_every=10", "--config.train.eval_every=10"]
GPT_RUN = [
    *QUIET,
    *(f"--config.train.{key}=2" for key in ("num_steps", "eval_every", "log_every", "checkpoint_every")),
    "--config.optimizer.warmup_steps=1",
    "--config.model.num_layers=1",
    "--config.model.num_heads=1",
    "--config.model.embed_dim=16",
    "--config.data.eval_windows=2",
]
pytestmark = pytest.mark.usefixtures("compilation_cache_dir")  # every case builds the same tiny experiment


def snapshot(root: Path) -> dict[str, str]:
    """Every file (its SHA-256) and directory under `root`: what a refused command must leave as it was."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        for path in sorted(root.rglob("*"))
    }


def assert_refused(result: Result, *fragments: str) -> None:
    """Status 2, exactly one `jaxmodels: error:` line on stderr holding every fragment, and no traceback."""
    assert_one_error_line(result.status, result.stderr, *fragments)


@pytest.fixture(scope="module")
def mlp_workdir(data_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MNIST-1D MLP trained 20 steps, checkpoints at 10 and 20: the workdir most cases damage a copy of."""
    workdir = tmp_path_factory.mktemp("trained") / "mlp"
    result = run_cli("train", "--config", MLP, "--workdir", str(workdir), *MLP_RUN)
    assert result.status == 0, result.stderr
    return workdir


@pytest.fixture(scope="module")
def gpt_workdir(data_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer character GPT trained 2 steps: a language model with a tokenizer in its workdir."""
    workdir = tmp_path_factory.mktemp("trained") / "gpt"
    result = run_cli("train", "--config", GPT, "--workdir", str(workdir), *GPT_RUN)
    assert result.status == 0, result.stderr
    return workdir


# ------------------------------------------------------------------------------------------ the cases


def experiment(scratch: Path, text: str) -> str:
    """Writes an experiment file into `scratch` (outside the workdir) and returns its path."""
    path = scratch / "experiment.py"
    path.write_text(text)
    return str(path)


def mlp_experiment(scratch: Path, *lines: str) -> str:
    """The MLP experiment with `lines` added to its get_config()."""
    body = "".join(f"    {line}\n" for line in lines)
    return experiment(
        scratch,
        "from jaxmodels.config import base_config\n\n\ndef get_config():\n    config = base_config()\n"
        f"    config.model.name = 'mnist1d_mlp'\n{body}    return config\n",
    )


def write(relative: str, content: bytes) -> Callable[[Path], None]:
    """Damage: replace the workdir's file `relative` with `content`."""
    return lambda workdir: (workdir / relative).write_bytes(content)


def garble_checkpoint(step: int) -> Callable[[Path], None]:
    """Damage: every file of checkpoint `step`'s train state cut to its first 7 bytes."""

    def damage(workdir: Path) -> None:
        for path in (workdir / "checkpoints" / str(step) / "state").rglob("*"):
            if path.is_file():
                path.write_bytes(path.read_bytes()[:7])

    return damage


def no_damage(workdir: Path) -> None:
    """Leaves the workdir as trained: the bad input is on the command line."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input: how the workdir copy is damaged, the command line, and what its error line must say."""

    argv: Callable[[Path, Path], list[str]]  # (workdir copy, scratch dir outside it) -> the command line
    fragments: tuple[str, ...]
    damage: Callable[[Path], None] = no_damage
    trained: str = "mlp_workdir"  # the fixture whose workdir is copied


def train(config: str, workdir: Path, *overrides: str) -> list[str]:
    """`jaxmodels train` of experiment `config` (shortened like the trained MLP) into `workdir`."""
    return ["train", "--config", config, "--workdir", str(workdir), *MLP_RUN, *overrides]


CASES = {
    # Experiment files: Python, run as code; their keys are checked as overrides are.
    "experiment-unknown-key": Case(
        lambda w, s: train(mlp_experiment(s, "config.optimizer.learnin_rate = 1"), w),
        ("experiment.py", "unknown config key 'optimizer.learnin_rate'", "Did you mean 'optimizer.learning_rate'"),
    ),
    "experiment-unknown-model-argument": Case(
        lambda w, s: train(mlp_experiment(s, "config.model.hiden = 3"), w),
        ("experiment.py", "has no argument 'hiden'", "'hidden'"),
    ),
    "experiment-wrong-type": Case(
        lambda w, s: train(mlp_experiment(s, "config.train.num_steps = 'many'"), w),
        ("experiment.py', line 7: TypeError",),
    ),
    "experiment-syntax-error": Case(
        lambda w, s: train(experiment(s, "def get_config(:\n    pass\n"), w), ("experiment.py', line 1", "syntax")
    ),
    "experiment-raises": Case(
        lambda w, s: train(mlp_experiment(s, "x = 1", "raise ValueError('bad\\nvalue')"), w),
        ("experiment.py', line 8: ValueError: bad",),
    ),
    "experiment-without-get-config": Case(
        lambda w, s: train(experiment(s, "x = 1\n"), w), ("experiment.py", "defines no get_config()")
    ),
    "experiment-returns-a-dict": Case(
        lambda w, s: train(experiment(s, "def get_config():\n    return {}\n"), w),
        ("experiment.py', line 1", "returned a dict, not an ml_collections.ConfigDict"),
    ),
    # config.json: read as data, checked against the schema, on every command that reads a workdir.
    "config-json-not-json-eval": Case(
        lambda w, s: ["eval", "--workdir", str(w)], ("config.json is not valid JSON",), write("config.json", b"{no")
    ),
    "config-json-not-json-export": Case(
        lambda w, s: ["export", "--workdir", str(w), "--out", str(s / "out")],
        ("config.json is not valid JSON",),
        write("config.json", b"\xff\xfe\x00"),
    ),
    "config-json-a-list-sample": Case(
        lambda w, s: ["sample", "--workdir", str(w)], ("config.json holds a JSON list",), write("config.json", b"[1]")
    ),
    "config-json-unknown-key": Case(
        lambda w, s: ["eval", "--workdir", str(w)],
        ("config.json: unknown config key 'train.num_stepz'",),
        write("config.json", b'{"train": {"num_stepz": 3}}'),
    ),
    "config-json-wrong-type": Case(
        lambda w, s: ["eval", "--workdir", str(w)],
        ("config.json: config key 'train.num_steps' expects a value of type int",),
        write("config.json", b'{"train": {"num_steps": "x"}}'),
    ),
    "no-config-json": Case(lambda w, s: ["eval", "--workdir", str(w / "checkpoints")], ("holds no config.json",)),
    # Checkpoints and export.
    "export-damaged-checkpoint": Case(
        lambda w, s: ["export", "--workdir", str(w), "--out", str(s / "out")],
        ("checkpoint at step 20", "cannot be read", "--step"),
        garble_checkpoint(20),
    ),
    "export-out-is-a-file": Case(
        lambda w, s: ["export", "--workdir", str(w), "--out", str(w / "metrics.jsonl")], ("is a file", "--out")
    ),
    "export-out-not-creatable": Case(
        lambda w, s: ["export", "--workdir", str(w), "--out", str(w / "metrics.jsonl" / "out")],
        ("cannot write to export directory", "--out"),
    ),
    "export-out-not-empty": Case(
        lambda w, s: ["export", "--workdir", str(w), "--out", str(w / "checkpoints")], ("is not empty",)
    ),
    "export-missing-step": Case(
        lambda w, s: ["export", "--workdir", str(w), "--out", str(s / "out"), "--step", "7"],
        ("no checkpoint at step 7", "[10, 20]"),
    ),
    # Models and data that do not fit, malformed dataset names.
    "model-does-not-fit-data": Case(
        lambda w, s: train(CNN, w / "new", "--config.data.name=digits"),
        ("model 'mnist1d_cnn'", "does not fit the data 'digits'", "inputs float32[100, 8, 8, 1]"),
    ),
    **{
        f"dataset-name-{name}": Case(
            lambda w, s, name=name: train(MLP, w / "new", f"--config.data.name={name}"),
            (f"unknown dataset {name!r}", "shakespeare/passages", "synthetic/tokens"),
        )
        for name in ("shakespeare/passagez", "../mnist1d", "mnist1d/a/b", "mnist1d/..")
    },
    # Config values checked before anything is written.
    "best-metric-typo": Case(
        lambda w, s: train(
            MLP, w / "new", "--config.checkpoint.keep_best=1", "--config.checkpoint.best_metric=tst/acc"
        ),
        ("'checkpoint.best_metric' is 'tst/acc'", "test/accuracy"),
    ),
    "adam-b1-one": Case(lambda w, s: train(MLP, w / "new", "--config.optimizer.b1=1.0"), ("'optimizer.b1'", "[0, 1)")),
    "adam-b2-negative": Case(lambda w, s: train(MLP, w, "--config.optimizer.b2=-0.5"), ("'optimizer.b2'",)),
    "override-without-value": Case(lambda w, s: train(MLP, w, "--config.train.num_steps"), ("--config.section.key",)),
    "unknown-flag": Case(lambda w, s: ["eval", "--workdir", str(w), "--bogus"], ("unrecognized arguments: --bogus",)),
    "export-with-override": Case(
        lambda w, s: ["export", "--workdir", str(w), "--out", str(s / "o"), "--config.seed=1"], ("no --config",)
    ),
    # Language models: sampling settings and the tokenizer kept in the workdir.
    "sample-not-a-language-model": Case(lambda w, s: ["sample", "--workdir", str(w)], ("sampling needs task lm",)),
    "sample-top-k-above-vocabulary": Case(
        lambda w, s: ["sample", "--workdir", str(w), "--top_k", "1000", "--num_tokens", "3"],
        ("--top_k between 1 and the vocabulary size",),
        trained="gpt_workdir",
    ),
    "sample-top-k-zero": Case(
        lambda w, s: ["sample", "--workdir", str(w), "--top_k", "0"], ("--top_k between 1",), trained="gpt_workdir"
    ),
    "damaged-tokenizer": Case(
        lambda w, s: ["sample", "--workdir", str(w), "--num_tokens", "3"],
        ("tokenizer file", "tokenizer_char is damaged"),
        write("tokenizer_char", b'{"kind": "char", "pieces": 5}'),
        trained="gpt_workdir",
    ),
    "refused-run-trains-no-tokenizer": Case(
        lambda w, s: ["train", "--config", GPT, "--workdir", str(w / "new"), *GPT_RUN, "--config.model.vocab_size=7"],
        ("model.vocab_size=7 does not match the data",),
        trained="gpt_workdir",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_and_changes_nothing(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    case = CASES[name]
    workdir, scratch = tmp_path / "workdir", tmp_path / "scratch"
    shutil.copytree(request.getfixturevalue(case.trained), workdir)
    scratch.mkdir()
    case.damage(workdir)
    before = snapshot(workdir)
    assert_refused(run_cli(*case.argv(workdir, scratch)), *case.fragments)
    assert snapshot(workdir) == before


def test_python_api_load_refuses_a_damaged_config_json(mlp_workdir: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "workdir"
    shutil.copytree(mlp_workdir, workdir)
    (workdir / "config.json").write_text('"a string"')
    with pytest.raises(ConfigError, match=r"config\.json holds a JSON str, not an object"):
        jaxmodels.load(workdir)


def test_stdout_is_strict_json_when_a_metric_is_not_finite(data_dir: str, tmp_path: Path) -> None:
    """A run whose steps all diverge (skipped) evaluates to a NaN loss: printed as null, not as bare NaN."""
    result = run_cli(
        "train", "--config", MLP, "--workdir", str(tmp_path / "w"), *MLP_RUN, "--config.train.num_steps=2",
        "--config.optimizer.learning_rate=1e30", "--config.train.on_nonfinite=skip",
    )  # fmt: skip
    assert result.status == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1], parse_constant=pytest.fail)  # NaN would call parse_constant
    assert summary["test/loss"] is None


# ------------------------------------------------------------------------------------------ metrics.jsonl

UNREADABLE_LINES = [b'{"step": "abc"}', b'{"step": null, "x": 1}', b"\xff\xfe{'step': 3}", b"[1]", b"5", b'{"step": 2']


def test_resuming_keeps_the_readable_metrics_and_drops_the_rest(mlp_workdir: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "workdir"
    shutil.copytree(mlp_workdir, workdir)
    readable = (workdir / "metrics.jsonl").read_bytes()
    (workdir / "metrics.jsonl").write_bytes(readable + b"\n".join(UNREADABLE_LINES) + b"\n")
    assert [row["step"] for row in read_history(workdir)] == [10, 20]  # Run.history
    result = run_cli("train", "--config", MLP, "--workdir", str(workdir), *MLP_RUN)  # finished: evaluates
    assert result.status == 0, result.stderr
    assert (workdir / "metrics.jsonl").read_bytes() == readable


_LINE_BREAKS = (b"\n", b"\r")
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
_ROWS = st.fixed_dictionaries({"step": st.integers(0, 40), "train/loss": st.floats(0, 5)})
_UNREADABLE = st.one_of(
    st.binary(max_size=24).map(lambda data: b"\xff" + data),  # never UTF-8
    _JSON.filter(lambda value: not isinstance(value, dict)).map(lambda value: json.dumps(value).encode()),
    st.sampled_from([None, "7", True, [1], {"a": 1}]).map(lambda step: json.dumps({"step": step}).encode()),
).filter(lambda line: not any(brk in line for brk in _LINE_BREAKS))


@settings(max_examples=20, deadline=None)
@given(lines=st.lists(st.one_of(_ROWS, _UNREADABLE), max_size=8), resume_step=st.integers(0, 40))
def test_metric_rows_are_read_and_truncated_line_by_line(lines: list, resume_step: int) -> None:
    """Readers keep exactly the readable rows; a resume keeps those up to its step, byte for byte, the last of
    each step in step order, and moves every other line to metrics.dropped.jsonl."""
    encoded = [json.dumps(line).encode() if isinstance(line, dict) else line for line in lines]
    rows = [line for line in lines if isinstance(line, dict)]
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        (workdir / "metrics.jsonl").write_bytes(b"".join(line + b"\n" for line in encoded))
        assert read_history(workdir) == rows
        MetricWriter(workdir, resume_step=resume_step, log=lambda message: None).close()
        last = {row["step"]: row for row in rows if row["step"] <= resume_step}
        kept = [json.dumps(last[step]).encode() + b"\n" for step in sorted(last)]
        assert (workdir / "metrics.jsonl").read_bytes() == b"".join(kept)
        dropped = workdir / "metrics.dropped.jsonl"
        moved = dropped.read_bytes().splitlines() if dropped.exists() else []
        assert sorted(moved + [line.rstrip(b"\n") for line in kept]) == sorted(line for line in encoded if line.strip())


# ------------------------------------------------------------------------------------------ fuzzed workdir files


@pytest.fixture(scope="module")
def fuzzed_workdir(mlp_workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the trained workdir for the hypothesis tests, whose examples each rewrite one file of it."""
    workdir = tmp_path_factory.mktemp("fuzzed") / "workdir"
    shutil.copytree(mlp_workdir, workdir)
    return workdir


def eval_with(workdir: Path, name: str, content: bytes) -> Result:
    """`jaxmodels eval` with the workdir's file `name` replaced by `content` (restored afterwards); checks that
    the command leaves every file as it found it."""
    original = (workdir / name).read_bytes()
    (workdir / name).write_bytes(content)
    try:
        before = snapshot(workdir)
        result = run_cli("eval", "--workdir", str(workdir))
        assert snapshot(workdir) == before
        return result
    finally:
        (workdir / name).write_bytes(original)


@settings(max_examples=20, deadline=None)
@given(
    content=st.one_of(
        st.binary(max_size=64),
        _JSON.map(lambda value: json.dumps(value).encode()),
        st.dictionaries(st.sampled_from(["seed", "train", "model", "data", "optimizer", "x"]), _JSON, max_size=2).map(
            lambda value: json.dumps(value).encode()
        ),
    )
)
def test_any_config_json_is_evaluated_or_refused_in_one_line(fuzzed_workdir: Path, content: bytes) -> None:
    result = eval_with(fuzzed_workdir, "config.json", content)
    if result.status == 0:  # a config the checkpoint fits: a clean evaluation
        assert json.loads(result.stdout.splitlines()[-1])["step"] == 20
    else:
        assert_refused(result)


@settings(max_examples=6, deadline=None)
@given(
    lines=st.lists(st.one_of(st.binary(max_size=32), _JSON.map(lambda value: json.dumps(value).encode())), max_size=5)
)
def test_any_metrics_jsonl_is_evaluated(fuzzed_workdir: Path, lines: list[bytes]) -> None:
    """metrics.jsonl is a log, not an input: whatever it holds, eval reads the checkpoint and succeeds."""
    result = eval_with(fuzzed_workdir, "metrics.jsonl", b"\n".join(lines))
    assert result.status == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["step"] == 20
