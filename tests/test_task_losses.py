"""Every task's loss and metric sums against a hand computation in numpy (float64), from the same logits and labels."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmodels import config as config_lib
from jaxmodels.models import get_model
from jaxmodels.tasks import (
    TASKS,
    Classify,
    LanguageModel,
    MaskedLanguageModel,
    SequenceToSequence,
    Word2Vec,
    make_task,
    summarize,
)

RNG = np.random.default_rng(0)


def _logits(*shape: int) -> np.ndarray:
    return RNG.normal(scale=2.0, size=shape).astype(np.float32)


def _score(task, outputs, batch):
    """`task.loss_and_metrics`, compiled as in the train step."""
    return jax.jit(task.loss_and_metrics)(outputs, batch)


def _nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[target] per position, in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return -np.logaddexp(0.0, -x)


def test_classify_loss_is_the_numpy_cross_entropy_averaged_over_real_examples():
    logits, labels = _logits(6, 5), RNG.integers(0, 5, 6)
    valid = np.array([True, True, False, True, True, False])
    loss, sums = _score(Classify(), logits, {"label": labels, "valid": valid})
    nll = _nll(logits, labels)[valid]
    np.testing.assert_allclose(loss, nll.mean(), rtol=1e-6)
    np.testing.assert_allclose(sums["loss"], nll.sum(), rtol=1e-6)
    assert float(sums["count"]) == 4.0
    assert float(sums["accuracy"]) == np.sum(logits.argmax(-1)[valid] == labels[valid])


def test_lm_loss_is_the_next_token_cross_entropy_averaged_over_every_position():
    logits, targets = _logits(3, 7, 11), RNG.integers(0, 11, (3, 7))
    task = LanguageModel()
    loss, sums = _score(task, logits, {"inputs": targets, "targets": targets})
    nll = _nll(logits, targets)
    np.testing.assert_allclose(loss, nll.mean(), rtol=1e-6)  # the mean over 3 x 7 positions
    np.testing.assert_allclose(sums["loss"], nll.sum(), rtol=1e-6)
    assert float(sums["count"]) == 21.0
    assert float(sums["accuracy"]) == np.sum(logits.argmax(-1) == targets)
    derived = summarize(sums, task)
    np.testing.assert_allclose(derived["perplexity"], np.exp(nll.mean()), rtol=1e-6)
    np.testing.assert_allclose(derived["bits_per_token"], nll.mean() / np.log(2), rtol=1e-6)


def test_lm_loss_leaves_out_padding_rows_of_an_eval_batch():
    logits, targets = _logits(3, 4, 6), RNG.integers(0, 6, (3, 4))
    valid = np.array([True, False, True])
    loss, sums = _score(LanguageModel(), logits, {"targets": targets, "valid": valid})
    np.testing.assert_allclose(loss, _nll(logits, targets)[valid].mean(), rtol=1e-6)
    assert float(sums["count"]) == 8.0


def test_mlm_loss_is_the_cross_entropy_of_the_masked_positions_only():
    logits, targets = _logits(2, 9, 8), RNG.integers(0, 8, (2, 9))
    weights = np.zeros((2, 9), np.int32)
    weights[0, [1, 4]] = weights[1, [0, 5, 8]] = 1
    batch = {"inputs": targets, "targets": targets, "target_weights": weights}
    loss, sums = _score(MaskedLanguageModel(), logits, batch)
    nll = _nll(logits, targets)[weights == 1]
    np.testing.assert_allclose(loss, nll.mean(), rtol=1e-6)
    np.testing.assert_allclose(sums["loss"], nll.sum(), rtol=1e-6)
    assert float(sums["count"]) == 5.0
    # Whatever the model predicts at unmasked positions, the loss and the metrics stay the same.
    changed = np.where(weights[..., None] == 1, logits, _logits(2, 9, 8) * 10)
    loss_changed, sums_changed = _score(MaskedLanguageModel(), changed, batch)
    assert float(loss_changed) == float(loss)
    assert {k: float(v) for k, v in sums_changed.items()} == {k: float(v) for k, v in sums.items()}


def test_seq2seq_loss_is_the_decoders_cross_entropy_over_real_target_tokens():
    logits, targets = _logits(3, 6, 10), RNG.integers(0, 10, (3, 6))
    weights = (np.arange(6) < np.array([[6], [4], [2]])).astype(np.float32)  # padded targets
    batch = {"source": targets, "target_inputs": targets, "targets": targets, "target_weights": weights}
    loss, sums = _score(SequenceToSequence(), logits, batch)
    real = weights == 1
    nll = _nll(logits, targets)[real]
    np.testing.assert_allclose(loss, nll.mean(), rtol=1e-6)
    np.testing.assert_allclose(sums["loss"], nll.sum(), rtol=1e-6)
    assert float(sums["count"]) == 12.0
    assert float(sums["accuracy"]) == np.sum((logits.argmax(-1) == targets)[real])


def _word2vec_expected(positive: np.ndarray, negative: np.ndarray, valid: np.ndarray) -> tuple[float, float, float]:
    """Negative sampling per pair: -log sigma(pos) - sum_k log sigma(-neg_k); accuracy: pos beats every neg."""
    losses = -_log_sigmoid(positive) - _log_sigmoid(-negative).sum(-1)
    best = positive > negative.max(-1)
    return losses[valid].mean(), losses[valid].sum(), float(best[valid].sum())


def test_word2vec_loss_is_negative_sampling_over_real_pairs():
    positive, negative = _logits(5), _logits(5, 4)
    valid = np.array([True, True, True, False, True])
    batch = {"inputs": np.zeros(5, np.int32), "valid": valid}
    loss, sums = _score(Word2Vec(), (positive, negative), batch)
    mean, total, correct = _word2vec_expected(positive, negative, valid)
    np.testing.assert_allclose(loss, mean, rtol=1e-6)
    np.testing.assert_allclose(sums["loss"], total, rtol=1e-6)
    assert float(sums["count"]) == 4.0 and float(sums["accuracy"]) == correct


@pytest.mark.parametrize("name", ["skipgram", "cbow"])
def test_word2vec_models_scored_by_the_task_give_the_numpy_loss_of_their_tables(name):
    """Skip-gram scores with the centre word's input vector, CBOW with the masked mean of its context's."""
    vocab, dim, batch_size = 13, 4, 6
    model = get_model(name, vocab_size=vocab, embed_dim=dim)
    inputs = RNG.integers(0, vocab, (batch_size,) if name == "skipgram" else (batch_size, 4))
    positives, negatives = RNG.integers(0, vocab, batch_size), RNG.integers(0, vocab, (batch_size, 3))
    mask = RNG.random((batch_size, 4)) < 0.6  # CBOW's real context words
    mask[:, 0] = True
    tables = {"input": _logits(vocab, dim), "output": _logits(vocab, dim)}  # the output table starts at zero
    params = {"embeddings": {key: {"embedding": jnp.asarray(table)} for key, table in tables.items()}}
    batch = {"inputs": inputs, "positives": positives, "negatives": negatives}
    if name == "cbow":
        batch["context_mask"] = mask
    task = make_task_named("word2vec")
    args, kwargs = task.model_inputs(batch)
    loss, sums = _score(task, model.apply({"params": params}, *args, **kwargs), batch)

    v_in, v_out = tables["input"].astype(np.float64), tables["output"].astype(np.float64)
    context, weights = (inputs[:, None], np.ones((batch_size, 1))) if name == "skipgram" else (inputs, mask)
    h = (v_in[context] * weights[..., None]).sum(1) / weights.sum(1, keepdims=True)  # skip-gram: the centre's
    positive = np.einsum("bd,bd->b", h, v_out[positives])
    negative = np.einsum("bd,bkd->bk", h, v_out[negatives])
    mean, total, correct = _word2vec_expected(positive, negative, np.ones(batch_size, bool))
    np.testing.assert_allclose(loss, mean, rtol=1e-6)
    np.testing.assert_allclose(sums["loss"], total, rtol=1e-6)
    assert float(sums["accuracy"]) == correct


def make_task_named(name: str):
    """The task as a run's config builds it."""
    config = config_lib.lock(config_lib.base_config())
    config_lib.set_value(config, "task.name", name)
    return make_task(config)


def test_every_registered_task_is_checked_here():
    assert set(TASKS) == {"classify", "lm", "mlm", "seq2seq", "word2vec"}  # a new task needs its test above
