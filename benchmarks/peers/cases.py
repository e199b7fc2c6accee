"""The benchmark cases: which jaxmodels experiment each is, and the training batches every framework shares.

jaxmodels builds each case from its experiment file (with the overrides below) exactly as `jaxmodels train` does;
its worker then writes `NUM_BATCHES` of the batches its feed produces to a file, and every peer framework trains
on those same batches, cycling through them. The peers read the optimizer settings from the same resolved config,
so batch size, learning rate, clipping and weight decay agree by construction.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
NUM_BATCHES = 40  # one MNIST-1D epoch at batch 100


@dataclasses.dataclass(frozen=True)
class Case:
    """One workload: a jaxmodels experiment file plus config overrides."""

    name: str
    experiment: str
    overrides: tuple[str, ...] = ()
    title: str = ""


CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Case("mnist1d_cnn", "mnist1d_cnn.py", title="MNIST-1D CNN (batch 100, Adam)"),
        Case("mnist1d_mlp", "mnist1d_mlp.py", title="MNIST-1D MLP (batch 100, Adam)"),
        Case("mnist1d_gru", "mnist1d_gru.py", title="MNIST-1D bidirectional GRU (batch 100, Adam)"),
        Case("char_gpt", "shakespeare_char_gpt.py", title="char GPT, nanoGPT CPU recipe (batch 12x64, AdamW)"),
        Case("char_lstm", "shakespeare_char_lstm.py", title="char LSTM LM (batch 32x64, Adam)"),
        Case(
            "cifar_resnet20",
            "digits_cifar_resnet20.py",
            # 32x32 maps: two CPU devices run it 1.02-1.1x one device (docs/benchmarks.md; 8x8 digits: no gain)
            ("data.name=synthetic/images", "parallel.cpu_devices=2"),
            title="ResNet-20 on synthetic 32x32x3 (batch 128, SGD, 2 CPU devices)",
        ),
        Case("bert_mlm", "shakespeare_bert_mlm.py", title="BERT-MLM small (batch 32x64, AdamW)"),
    )
}


def model_sizes(model: Any) -> dict[str, Any]:
    """A jaxmodels model's fields as built (the config's sizes completed by the data or a variant, e.g.
    vocab_size, num_layers): what a peer builds its network from."""
    return {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.name not in ("parent", "name")}


def save_batches(path: Path, batches: list[dict[str, np.ndarray]], config: dict[str, Any]) -> None:
    """Writes the shared batches (stacked per key) and the resolved config (JSON) for the peer workers."""
    stacked = {key: np.stack([batch[key] for batch in batches]) for key in batches[0]}
    np.savez(path, **stacked, config=np.array(json.dumps(config, default=str)))


def load_batches(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The batches written by `save_batches` ({key: (NUM_BATCHES, batch, ...)}) and the resolved config."""
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files if key != "config"}
        return arrays, json.loads(str(data["config"]))
