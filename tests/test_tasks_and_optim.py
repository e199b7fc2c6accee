"""Classification loss and metrics; the Optax factory's schedules, decay mask and clipping."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmodels import config as config_lib
from jaxmodels.optim import decay_mask, make_optimizer, make_schedule
from jaxmodels.tasks import Classify, summarize


def test_classify_loss_is_the_mean_cross_entropy_of_real_examples():
    logits = jnp.array([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])
    batch = {"label": jnp.array([0, 0, 1]), "valid": jnp.array([True, True, False])}
    loss, metrics = Classify().loss_and_metrics(logits, batch)
    expected = optax.softmax_cross_entropy_with_integer_labels(logits[:2], batch["label"][:2])
    np.testing.assert_allclose(loss, expected.mean(), rtol=1e-6)
    assert float(metrics["count"]) == 2.0
    assert float(metrics["accuracy"]) == 1.0  # the padded row's wrong prediction is not counted
    np.testing.assert_allclose(metrics["loss"], expected.sum(), rtol=1e-6)


def test_metrics_average_by_example_count_not_by_batch():
    # Two batches of 3 and 1 examples: the per-example mean weights the big batch 3x.
    sums = {"loss": np.float32(3.0 + 5.0), "accuracy": np.float32(2 + 0), "count": np.float32(4)}
    assert summarize(sums) == {"loss": 2.0, "accuracy": 0.5}


def test_label_smoothing_raises_the_loss_of_confident_correct_predictions():
    logits = jnp.array([[10.0, -10.0]])
    batch = {"label": jnp.array([0])}
    plain, _ = Classify().loss_and_metrics(logits, batch)
    smoothed, _ = Classify(label_smoothing=0.2).loss_and_metrics(logits, batch)
    assert smoothed > plain + 1.0


def test_label_smoothing_is_cross_entropy_on_smoothed_targets():
    logits = jnp.array([[2.0, -1.0, 0.5, 0.0], [0.0, 3.0, -2.0, 1.0], [1.0, 1.0, 4.0, -3.0]])
    batch = {"label": jnp.array([0, 2, 1]), "valid": jnp.array([True, True, False])}
    loss, metrics = Classify(label_smoothing=0.2).loss_and_metrics(logits, batch)
    # Szegedy et al. (2016): (1 - 0.2) on the label plus 0.2 spread evenly over the 4 classes.
    targets = jnp.array([[0.85, 0.05, 0.05, 0.05], [0.05, 0.05, 0.85, 0.05]])
    expected = optax.softmax_cross_entropy(logits[:2], targets)  # the padded third row does not count
    np.testing.assert_allclose(loss, expected.mean(), rtol=1e-6)
    np.testing.assert_allclose(metrics["loss"], expected.sum(), rtol=1e-6)


def _optimizer_config(**values):
    config = config_lib.lock(config_lib.base_config())
    for key, value in values.items():
        config_lib.set_value(config, f"optimizer.{key}", value)
    return config.optimizer


def test_schedules():
    constant = make_schedule(_optimizer_config(learning_rate=0.1), 100)
    assert float(constant(0)) == float(constant(99)) == pytest.approx(0.1)
    cosine = make_schedule(_optimizer_config(learning_rate=0.1, schedule="cosine"), 100)
    assert float(cosine(0)) == pytest.approx(0.1) and float(cosine(50)) == pytest.approx(0.05)
    assert float(cosine(100)) == pytest.approx(0.0)
    warmup = make_schedule(_optimizer_config(learning_rate=0.1, schedule="warmup_cosine", warmup_steps=10), 100)
    assert (
        float(warmup(0)) == 0.0 and float(warmup(5)) == pytest.approx(0.05) and float(warmup(10)) == pytest.approx(0.1)
    )
    step = make_schedule(_optimizer_config(learning_rate=1.0, schedule="step", step_boundaries=(0.5, 0.75)), 100)
    assert [float(step(s)) for s in (49, 50, 74, 75)] == pytest.approx([1.0, 0.1, 0.1, 0.01])


def test_weight_decay_mask_spares_biases_and_norm_scales():
    params = {"Dense_0": {"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)}, "LayerNorm_0": {"scale": jnp.ones(2)}}
    assert decay_mask(params) == {"Dense_0": {"kernel": True, "bias": False}, "LayerNorm_0": {"scale": False}}


KERNEL = np.array([[1.0, -2.0], [4.0, 0.5]], np.float32)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # L2: the gradient 0.5 x kernel through Adam's first step, g / (|g| + eps); eps = 1 keeps the decay's
        # size visible (with a tiny eps the first step is the rate times the sign, whatever the decay).
        ("adam", -0.1 * (0.5 * KERNEL) / (0.5 * np.abs(KERNEL) + 1.0)),
        # Decoupled: Adam's step on a zero gradient is 0, then rate x decay x kernel.
        ("adamw", -0.1 * 0.5 * KERNEL),
        # L2: rate x 0.5 x kernel (momentum's first trace is the gradient itself).
        ("sgd", -0.1 * 0.5 * KERNEL),
    ],
)
def test_weight_decay_moves_only_kernels_when_gradients_are_zero(name, expected):
    params = {"kernel": jnp.asarray(KERNEL), "bias": jnp.ones(2)}
    tx = make_optimizer(_optimizer_config(name=name, learning_rate=0.1, weight_decay=0.5, eps=1.0), 10)
    zero_grads = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero_grads, tx.init(params), params)
    np.testing.assert_allclose(updates["kernel"], expected, rtol=1e-5)  # Adam's bias correction rounds in float32
    np.testing.assert_array_equal(updates["bias"], np.zeros(2))


def test_sgd_momentum_and_nesterov_follow_optax():
    params = {"w": jnp.array([1.0, -2.0])}
    grads = {"w": jnp.array([0.5, 0.25])}
    ours = make_optimizer(_optimizer_config(name="sgd", learning_rate=0.1, momentum=0.9, nesterov=True), 10)
    reference = optax.sgd(0.1, momentum=0.9, nesterov=True)
    state_ours, state_ref = ours.init(params), reference.init(params)
    for _ in range(3):
        update_ours, state_ours = ours.update(grads, state_ours, params)
        update_ref, state_ref = reference.update(grads, state_ref, params)
    np.testing.assert_allclose(update_ours["w"], update_ref["w"], rtol=1e-6)


def test_gradient_clipping_bounds_the_global_norm():
    params = {"w": jnp.zeros(4)}
    tx = make_optimizer(_optimizer_config(name="sgd", momentum=0.0, learning_rate=1.0, grad_clip_norm=1.0), 10)
    updates, _ = tx.update({"w": jnp.full(4, 10.0)}, tx.init(params), params)
    assert float(optax.tree.norm(updates)) == pytest.approx(1.0, rel=1e-5)


PARTS = {
    "encoder": {"embed": {"embedding": jnp.ones((4, 2))}, "layer": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}},
    "head": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)},
}
PART_GRADS = jax.tree.map(lambda leaf: jnp.full_like(leaf, 0.3), PARTS)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_a_learning_rate_multiplier_scales_that_part_of_every_update(name):
    """'encoder:0.1' is the update of one rate for all, times 0.1 under `encoder` (PyTorch parameter groups)."""
    settings = dict(name=name, learning_rate=0.1, weight_decay=0.01, grad_clip_norm=1.0)
    plain = make_optimizer(_optimizer_config(**settings), 10)
    grouped = make_optimizer(_optimizer_config(**settings, lr_multipliers="encoder:0.1"), 10)
    plain_state, grouped_state = plain.init(PARTS), grouped.init(PARTS)
    for _ in range(3):
        plain_updates, plain_state = plain.update(PART_GRADS, plain_state, PARTS)
        grouped_updates, grouped_state = grouped.update(PART_GRADS, grouped_state, PARTS)
    expected = {"encoder": jax.tree.map(lambda u: 0.1 * u, plain_updates["encoder"]), "head": plain_updates["head"]}
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), grouped_updates, expected)
    assert float(jnp.abs(grouped_updates["encoder"]["layer"]["kernel"]).min()) > 0


def test_a_frozen_part_never_moves_and_the_rest_trains_as_if_alone():
    """'encoder:0': zero updates there (weight decay included), no optimizer state for it, and clipping measures
    the trained parameters only, so the head's updates equal those of the optimizer given the head alone."""
    settings = dict(name="adamw", learning_rate=0.1, weight_decay=0.5, grad_clip_norm=0.1)
    frozen = make_optimizer(_optimizer_config(**settings, lr_multipliers="encoder:0"), 10)
    alone = make_optimizer(_optimizer_config(**settings), 10)
    grads = {**PART_GRADS, "encoder": jax.tree.map(lambda g: 100.0 * g, PART_GRADS["encoder"])}  # would dominate
    frozen_state, alone_state = frozen.init(PARTS), alone.init(PARTS["head"])
    assert len(jax.tree.leaves(frozen_state)) == len(jax.tree.leaves(alone_state))  # no moments for the encoder
    for _ in range(3):
        updates, frozen_state = frozen.update(grads, frozen_state, PARTS)
        head_updates, alone_state = alone.update(grads["head"], alone_state, PARTS["head"])
        for leaf in jax.tree.leaves(updates["encoder"]):
            np.testing.assert_array_equal(leaf, np.zeros_like(leaf))
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), updates["head"], head_updates)


def test_the_longest_matching_prefix_gives_the_factor():
    tx = make_optimizer(
        _optimizer_config(name="sgd", momentum=0.0, learning_rate=1.0, lr_multipliers="encoder:0, encoder/layer:0.5"),
        10,
    )
    updates, _ = tx.update(PART_GRADS, tx.init(PARTS), PARTS)
    np.testing.assert_allclose(updates["encoder"]["layer"]["kernel"], np.full((2, 2), -0.15))
    np.testing.assert_array_equal(updates["encoder"]["embed"]["embedding"], np.zeros((4, 2)))
    np.testing.assert_allclose(updates["head"]["bias"], np.full(3, -0.3))


@pytest.mark.parametrize("factor", [0.0, 0.5])
def test_a_prefix_covers_its_own_subtree_only_not_a_longer_name(factor):
    """'encoder' is the path `encoder` and what lies below it (`encoder/...`), never `encoders` or `encoder_2`."""
    params = {"encoder": {"kernel": jnp.ones(2)}, "encoders": {"kernel": jnp.ones(2)}, "encoder_2": jnp.ones(3)}
    grads = jax.tree.map(lambda leaf: jnp.full_like(leaf, 0.3), params)
    config = _optimizer_config(name="sgd", momentum=0.0, learning_rate=1.0, lr_multipliers=f"encoder:{factor}")
    tx = make_optimizer(config, 10)
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["encoder"]["kernel"], np.full(2, -0.3 * factor))
    np.testing.assert_allclose(updates["encoders"]["kernel"], np.full(2, -0.3))
    np.testing.assert_allclose(updates["encoder_2"], np.full(3, -0.3))
    with pytest.raises(config_lib.ConfigError, match=r"'encode', which is no parameter path"):
        make_optimizer(_optimizer_config(lr_multipliers="encode:0"), 10).init(params)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("encoder=0.1", r"'encoder=0.1' is not 'path:factor'"),
        ("encoder:fast", r"'encoder:fast' is not 'path:factor'"),
        ("encoder:-1", r"factor >= 0"),
        (":0.5", r"is not 'path:factor'"),
    ],
)
def test_a_malformed_learning_rate_multiplier_is_refused(text, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        make_optimizer(_optimizer_config(lr_multipliers=text), 10)


def test_a_multiplier_for_no_parameter_names_the_model_parts():
    tx = make_optimizer(_optimizer_config(lr_multipliers="encodr:0"), 10)
    with pytest.raises(config_lib.ConfigError, match=r"'encodr', which is no parameter path.*encoder, head"):
        tx.init(PARTS)
