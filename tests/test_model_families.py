"""Every model family trains end to end through `jaxmodels train`, on data generated offline.

One experiment file per family, shrunk by command-line overrides to a tiny model and 40 steps (the
LSTM, which sits on a plateau for its first ~60 steps on MNIST-1D, 120): the train loss falls. The
trained workdirs then serve `jaxmodels sample` (language models) and `jaxmodels eval` (masked LM).
Each family is trained once per module and shared by its tests.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from jaxmodels.cli import main
from tests.conftest import EXPERIMENTS

NUM_STEPS = 40
PROMPT = "ROMEO:"

# family -> (experiment file, `--config.` overrides: a tiny model, learning rates that show progress in 40 steps)
FAMILIES: dict[str, tuple[str, str]] = {
    "mlp": ("digits_mlp.py", "model.hidden_sizes=(32,) optimizer.learning_rate=1e-2"),
    "lenet5": ("digits_lenet5.py", "data.batch_size=32"),
    "batchnorm_resnet": ("digits_cifar_resnet20.py", "model.depth=8 data.batch_size=32 optimizer.learning_rate=0.05"),
    "vit": (
        "digits_vit.py",
        "model.patch_size=4 model.embed_dim=16 model.num_layers=1 model.num_heads=2 model.mlp_dim=32 "
        "data.batch_size=32 optimizer.learning_rate=1e-2 optimizer.warmup_steps=5",
    ),
    "lstm_classifier": (
        "mnist1d_lstm.py",
        "model.hidden_size=32 optimizer.learning_rate=1e-2 train.num_steps=120 train.eval_every=120",
    ),
    "char_rnn": (
        "shakespeare_char_lstm.py",
        "model.embed_dim=16 model.hidden_size=32 model.num_layers=1 data.block_size=16 data.batch_size=16 "
        "optimizer.learning_rate=1e-2",
    ),
    "gpt": (
        "shakespeare_char_gpt.py",
        "model.num_layers=1 model.num_heads=2 model.embed_dim=32 model.block_size=16 data.block_size=16 "
        "data.batch_size=16 optimizer.learning_rate=1e-2 optimizer.warmup_steps=5",
    ),
    "bert_mlm": (
        "shakespeare_bert_mlm.py",
        "model.num_layers=1 model.num_heads=2 model.embed_dim=32 model.mlp_dim=64 model.max_length=16 "
        "data.block_size=16 data.batch_size=16 optimizer.learning_rate=1e-2 optimizer.warmup_steps=5",
    ),
    "seq2seq": (
        "reverse_seq2seq.py",
        "model.num_layers=1 model.num_heads=2 model.embed_dim=32 model.mlp_dim=64 data.block_size=8 "
        "data.batch_size=32 optimizer.learning_rate=1e-2 optimizer.warmup_steps=5",
    ),
    "skipgram": (
        "shakespeare_word2vec.py",
        "model.embed_dim=16 data.vocab_size=500 data.batch_size=256 optimizer.learning_rate=1e-2",
    ),
}

# Short, logged often, evaluated once at the end on a small split (text views: 8 windows).
COMMON = [
    f"--config.train.num_steps={NUM_STEPS}",
    f"--config.train.eval_every={NUM_STEPS}",
    "--config.train.log_every=10",
    "--config.train.progress_bar=False",
    "--config.data.eval_windows=8",
    "--config.data.eval_batch_size=128",
]


def records(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(data_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """family -> the workdir of its short CLI run, trained on first request and then reused."""
    workdirs: dict[str, Path] = {}

    def train(family: str) -> Path:
        if family not in workdirs:
            experiment, overrides = FAMILIES[family]
            workdir = tmp_path_factory.mktemp("families") / family
            argv = ["train", "--config", str(EXPERIMENTS / experiment), "--workdir", str(workdir)]
            tiny = [f"--config.{override}" for override in overrides.split()]
            assert main([*argv, f"--config.data.data_dir={data_dir}", *COMMON, *tiny]) == 0
            workdirs[family] = workdir
        return workdirs[family]

    return train


@pytest.mark.parametrize("family", FAMILIES)
def test_a_short_cli_run_lowers_the_train_loss(family, trained):
    workdir = trained(family)
    logged = records(workdir)
    num_steps = json.loads((workdir / "config.json").read_text())["train"]["num_steps"]
    assert [r["step"] for r in logged] == list(range(10, num_steps + 1, 10))
    losses = [r["train/loss"] for r in logged]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.9 * losses[0], losses  # first and last: means over steps 1-10 and the last 10


@pytest.mark.parametrize("family", ["gpt", "char_rnn"])
def test_sample_continues_the_prompt(family, trained, capsys):
    workdir = trained(family)
    capsys.readouterr()
    assert main(["sample", "--workdir", str(workdir), "--prompt", PROMPT, "--num_tokens", "8", "--seed", "1"]) == 0
    text = capsys.readouterr().out.removesuffix("\n")
    assert text.startswith(PROMPT)
    assert len(text) > len(PROMPT)


def test_eval_reproduces_the_final_validation_metrics_of_the_masked_lm(trained, capsys):
    workdir = trained("bert_mlm")
    final = records(workdir)[-1]
    capsys.readouterr()
    assert main(["eval", "--workdir", str(workdir)]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["step"] == NUM_STEPS
    assert evaluated["val/loss"] == pytest.approx(final["val/loss"], rel=1e-6)
    assert evaluated["val/accuracy"] == pytest.approx(final["val/accuracy"], rel=1e-6)
    assert evaluated["val/perplexity"] == pytest.approx(math.exp(evaluated["val/loss"]))
