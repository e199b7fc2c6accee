"""Specifications of word2vec: skip-gram and CBOW logits, nearest neighbours and analogies."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmodels.models import get_model
from jaxmodels.models.word2vec import analogy, nearest_neighbours, word_vectors

VOCAB, DIM = 13, 6


def ids(seed: int, shape: tuple[int, ...]) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).integers(0, VOCAB, shape), jnp.int32)


def random_params(model, *inputs: jax.Array) -> dict:
    """Parameters shaped by `model.init`, filled with noise (the output table starts at zero, as in word2vec.c)."""
    shapes = jax.eval_shape(model.init, jax.random.key(0), *inputs)["params"]
    rng = np.random.default_rng(0)
    return jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape), s.dtype), shapes)


def test_skipgram_scores_each_positive_and_negative_word():
    model = get_model("skipgram", vocab_size=VOCAB, embed_dim=DIM)
    center, positives, negatives = ids(0, (4,)), ids(1, (4, 2)), ids(2, (4, 5))
    variables = model.init(jax.random.key(0), center, positives, negatives)
    positive, negative = model.apply(variables, center, positives, negatives)
    assert positive.shape == (4, 2) and negative.shape == (4, 5)
    assert model.apply(variables, center, positives[:, 0], negatives)[0].shape == (4,)


def test_skipgram_logits_are_dot_products_of_input_and_output_vectors():
    model = get_model("skipgram", vocab_size=VOCAB, embed_dim=DIM)
    center, positives, negatives = ids(0, (4,)), ids(1, (4, 2)), ids(2, (4, 5))
    params = random_params(model, center, positives, negatives)
    positive, negative = model.apply({"params": params}, center, positives, negatives)
    vectors, outputs = word_vectors(params), params["embeddings"]["output"]["embedding"]
    np.testing.assert_allclose(positive, np.einsum("bd,bkd->bk", vectors[center], outputs[positives]), rtol=1e-5)
    np.testing.assert_allclose(negative, np.einsum("bd,bkd->bk", vectors[center], outputs[negatives]), rtol=1e-5)


def test_word2vec_starts_like_word2vec_c():
    model = get_model("skipgram", vocab_size=VOCAB, embed_dim=DIM)
    params = model.init(jax.random.key(0), ids(0, (2,)), ids(1, (2, 1)), ids(2, (2, 3)))["params"]
    assert np.abs(word_vectors(params)).max() <= 0.5 / DIM
    assert not np.any(params["embeddings"]["output"]["embedding"])


def test_cbow_averages_the_unmasked_context():
    model = get_model("cbow", vocab_size=VOCAB, embed_dim=DIM)
    context, center, negatives = ids(3, (4, 6)), ids(4, (4,)), ids(5, (4, 5))
    params = random_params(model, context, center, negatives)
    mask = jnp.arange(6)[None, :] < jnp.array([[6], [4], [2], [1]])
    positive, negative = model.apply({"params": params}, context, center, negatives, mask=mask)
    assert positive.shape == (4,) and negative.shape == (4, 5)

    vectors, outputs = word_vectors(params), params["embeddings"]["output"]["embedding"]
    h = np.stack([vectors[row[m]].mean(axis=0) for row, m in zip(context, mask, strict=True)])
    np.testing.assert_allclose(positive, np.einsum("bd,bd->b", h, outputs[center]), rtol=1e-5)
    junk = jnp.where(mask, context, ids(6, (4, 6)))  # masked context words are never read
    np.testing.assert_allclose(model.apply({"params": params}, junk, center, negatives, mask=mask)[0], positive)


#                 royal  male  female  fruit
WORDS = {
    "king": [1.0, 1.0, 0.0, 0.0],
    "queen": [1.0, 0.0, 1.0, 0.0],
    "man": [0.0, 1.0, 0.0, 0.1],
    "woman": [0.0, 0.0, 1.0, 0.1],
    "prince": [0.9, 1.0, 0.0, 0.1],
    "apple": [0.0, 0.0, 0.0, 1.0],
    "pear": [0.0, 0.1, 0.0, 1.0],
}
NAMES = list(WORDS)
TABLE = jnp.array(list(WORDS.values()))
INDEX = {name: i for i, name in enumerate(NAMES)}


def test_nearest_neighbour_is_the_closest_other_word():
    neighbours, similarity = nearest_neighbours(TABLE, jnp.array([INDEX["king"], INDEX["apple"]]), k=2)
    assert [NAMES[i] for i in neighbours[0]] == ["prince", "man"]  # cosines 0.99 and 0.70 (queen: 0.5)
    assert NAMES[int(neighbours[1, 0])] == "pear"
    unit = TABLE / jnp.linalg.norm(TABLE, axis=1, keepdims=True)
    np.testing.assert_allclose(similarity[0, 0], unit[INDEX["king"]] @ unit[INDEX["prince"]], rtol=1e-6)


def test_nearest_neighbours_accept_a_single_word():
    neighbours, _ = nearest_neighbours(TABLE, INDEX["queen"], k=1)
    assert neighbours.shape == (1,) and NAMES[int(neighbours[0])] != "queen"


def test_man_is_to_king_as_woman_is_to_queen():
    answer, _ = analogy(TABLE, INDEX["man"], INDEX["king"], INDEX["woman"], k=1)
    assert NAMES[int(answer[0])] == "queen"


def test_analogy_never_answers_with_a_query_word():
    # apple - pear + pear is apple, then pear: both queries, so the answer must be a third word.
    answer, _ = analogy(TABLE, jnp.array([INDEX["pear"]]), jnp.array([INDEX["apple"]]), jnp.array([INDEX["pear"]]), k=3)
    assert not {NAMES[i] for i in answer[0]} & {"apple", "pear"}
