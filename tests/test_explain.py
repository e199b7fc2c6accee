"""Explanations (jaxmodels.explain): saliency and integrated gradients against their definitions, attention maps
as the model sows them, and `jaxmodels explain` writing a picture. One tiny ViT on the digits covers all three."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

import jaxmodels as jm
from jaxmodels import cli, explain

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
TINY_VIT = [
    "model.patch_size=4", "model.embed_dim=16", "model.num_layers=2", "model.num_heads=2", "model.mlp_dim=32",
    "optimizer.warmup_steps=5", "train.num_steps=20", "train.eval_every=20", "train.progress_bar=False",
]  # fmt: skip


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory: pytest.TempPathFactory) -> jm.Run:
    return jm.train(jm.load_config(EXPERIMENTS / "digits_vit.py", TINY_VIT), tmp_path_factory.mktemp("vit") / "run")


def class_logit(run: jm.Run, x: np.ndarray, label: int) -> float:
    return float(run.apply(x[None])[0, label])


def test_saliency_is_the_gradient_of_the_predicted_logit_times_the_input(vit_run: jm.Run):
    x = vit_run.eval_examples["inputs"][3]
    predicted = int(np.argmax(vit_run.apply(x[None])[0]))
    gradient = jax.grad(lambda point: vit_run.apply(point[None])[0, predicted])(x)
    np.testing.assert_allclose(explain.saliency(vit_run, x), gradient * x, rtol=1e-5, atol=1e-7)


def test_integrated_gradients_add_up_to_the_logit_difference_from_the_baseline(vit_run: jm.Run):
    x = vit_run.eval_examples["inputs"][3]
    label = 7
    attributions = explain.integrated_gradients(vit_run, x, label)
    assert attributions.shape == x.shape
    difference = class_logit(vit_run, x, label) - class_logit(vit_run, np.zeros_like(x), label)
    assert float(attributions.sum()) == pytest.approx(difference, rel=2e-2, abs=1e-3)  # completeness


def test_integrated_gradients_from_another_baseline_add_up_to_the_difference_from_it(vit_run: jm.Run):
    x, baseline = vit_run.eval_examples["inputs"][3], vit_run.eval_examples["inputs"][5]
    label = 7
    attributions = explain.integrated_gradients(vit_run, x, label, baseline=baseline)
    difference = class_logit(vit_run, x, label) - class_logit(vit_run, baseline, label)
    from_zeros = class_logit(vit_run, x, label) - class_logit(vit_run, np.zeros_like(x), label)
    tolerance = 2e-2 * abs(difference) + 1e-3  # the Riemann sum's error
    assert abs(difference - from_zeros) > 10 * tolerance  # the baseline matters here: ignoring it would show
    assert abs(float(attributions.sum()) - difference) < tolerance  # completeness
    # Where the input equals the baseline, nothing is attributed: the (x - baseline) factor is zero.
    same = explain.integrated_gradients(
        vit_run, x, label, baseline=np.where(np.arange(x.size).reshape(x.shape) % 2, x, baseline)
    )
    np.testing.assert_array_equal(same.reshape(-1)[1::2], 0.0)


def test_attention_maps_are_one_distribution_per_query_for_every_layer(vit_run: jm.Run):
    maps = explain.attention_maps(vit_run, vit_run.eval_examples["inputs"][0])
    assert len(maps) == 2  # two layers
    tokens = (8 // 4) ** 2 + 1  # 4 patches and the class token
    for weights in maps.values():
        assert weights.shape == (2, tokens, tokens)
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("method", ["saliency", "ig", "attention"])
def test_every_explanation_is_drawn(vit_run: jm.Run, tmp_path: Path, method: str):
    inputs, explanation = explain.explain(vit_run, 2, method)
    out = explain.plot(inputs, explanation, method, tmp_path / "picture.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_explain_command_writes_a_png_and_refuses_a_bad_index(
    vit_run: jm.Run, tmp_path: Path, capsys: pytest.CaptureFixture
):
    command = ["explain", "--workdir", str(vit_run.workdir), "--method", "attention"]
    assert cli.main([*command, "--index", "2", "--out", str(tmp_path / "attention.png")]) == 0
    assert (tmp_path / "attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main([*command, "--index", "100000", "--out", str(tmp_path / "x.png")]) == 2
    assert "outside the eval split, which has" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
