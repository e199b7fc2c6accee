"""word2vec: the skip-gram and CBOW models trained with negative sampling.

- Mikolov, Chen, Corrado & Dean (2013a), "Efficient Estimation of Word Representations in Vector Space",
  Figure 1: CBOW predicts a word from the average of its context, skip-gram predicts the context from the word.
- Mikolov, Sutskever, Chen, Corrado & Dean (2013b), "Distributed Representations of Words and Phrases and their
  Compositionality", Eq. 4: negative sampling, log sigma(v'_pos . h) + sum_k log sigma(-v'_neg_k . h).

The models return the logits v'_w . h of the positive and negative words; the loss is the binary cross-entropy
with labels 1 and 0 (`optax.sigmoid_binary_cross_entropy`). The word vectors are the input table,
`word_vectors(params)`, which `nearest_neighbours` and `analogy` query. Each model declares the input its batches
need as the view option `word2vec_inputs` (`registry.view_options_of`): 'center' words or their 'context' windows.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmodels.models.registry import register


class NegativeSamplingEmbeddings(nn.Module):
    """word2vec's two tables: input vectors v_w (the word vectors) and output vectors v'_w (Mikolov et al. 2013b).

    Initialised as in the reference word2vec.c: input uniform in +-0.5/embed_dim, output zero.
    """

    vocab_size: int
    embed_dim: int

    def setup(self) -> None:
        scale = 0.5 / self.embed_dim
        uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -scale, scale)
        self.input = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=uniform)
        self.output = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=nn.initializers.zeros)

    def __call__(self, words: jax.Array) -> jax.Array:
        """Input vectors of `words`: (...) ids -> (..., embed_dim)."""
        return self.input(words)

    def score(self, h: jax.Array, words: jax.Array) -> jax.Array:
        """Logits v'_w . h: (batch, embed_dim) and (batch, ...) ids -> (batch, ...)."""
        return jnp.einsum("bd,b...d->b...", h, self.output(words))


@register("skipgram", view_options={"word2vec_inputs": "center"})
class SkipGram(nn.Module):
    """Skip-gram with negative sampling (Mikolov et al. 2013a, Figure 1 right; 2013b, Eq. 4).

    `apply(variables, center, positives, negatives)`: center (batch,) word ids, positives (batch, ...) context
    words, negatives (batch, ...) noise words -> (positive logits, negative logits) of those shapes.
    """

    vocab_size: int = 10000
    embed_dim: int = 300

    @nn.compact
    def __call__(
        self, center: jax.Array, positives: jax.Array, negatives: jax.Array, *, train: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        del train
        embeddings = NegativeSamplingEmbeddings(self.vocab_size, self.embed_dim, name="embeddings")
        h = embeddings(center)
        return embeddings.score(h, positives), embeddings.score(h, negatives)


@register("cbow", view_options={"word2vec_inputs": "context"})
class CBOW(nn.Module):
    """Continuous bag-of-words with negative sampling (Mikolov et al. 2013a, Figure 1 left; 2013b, Eq. 4).

    `apply(variables, context, positives, negatives, mask=None)`: context (batch, window) word ids whose input
    vectors are averaged over `mask` (batch, window) bool (True at real context words; default all), positives
    (batch, ...) the centre word(s), negatives (batch, ...) noise words -> (positive logits, negative logits).
    """

    vocab_size: int = 10000
    embed_dim: int = 300

    @nn.compact
    def __call__(
        self,
        context: jax.Array,
        positives: jax.Array,
        negatives: jax.Array,
        *,
        mask: jax.Array | None = None,
        train: bool = False,
    ) -> tuple[jax.Array, jax.Array]:
        del train
        embeddings = NegativeSamplingEmbeddings(self.vocab_size, self.embed_dim, name="embeddings")
        weights = jnp.ones(context.shape) if mask is None else mask.astype(jnp.float32)
        vectors = embeddings(context) * weights[..., None]
        h = vectors.sum(axis=1) / jnp.maximum(weights.sum(axis=1, keepdims=True), 1.0)
        return embeddings.score(h, positives), embeddings.score(h, negatives)


def word_vectors(params: dict[str, Any]) -> jax.Array:
    """The (vocab_size, embed_dim) word vectors (input table) of a skipgram or cbow 'params' collection."""
    return params["embeddings"]["input"]["embedding"]


def _unit(vectors: jax.Array) -> jax.Array:
    return vectors / jnp.maximum(jnp.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def _top_k_excluding(similarity: jax.Array, exclude: list[jax.Array], k: int) -> tuple[jax.Array, jax.Array]:
    vocab = jnp.arange(similarity.shape[-1])
    for ids in exclude:
        similarity = jnp.where(vocab == jnp.asarray(ids)[..., None], -jnp.inf, similarity)
    scores, ids = jax.lax.top_k(similarity, k)
    return ids, scores


def nearest_neighbours(embeddings: jax.Array, word_ids: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """The k words most cosine-similar to each of `word_ids` (...), the word itself excluded.

    Returns (ids, similarities), each (..., k), most similar first.
    """
    unit = _unit(embeddings)
    similarity = unit[jnp.asarray(word_ids)] @ unit.T
    return _top_k_excluding(similarity, [word_ids], k)


def analogy(embeddings: jax.Array, a: jax.Array, b: jax.Array, c: jax.Array, k: int = 1) -> tuple[jax.Array, jax.Array]:
    """ "a is to b as c is to ?": the k words closest (cosine) to b - a + c, excluding a, b and c.

    Mikolov et al. (2013a, §4.1): vector("King") - vector("Man") + vector("Woman") is closest to "Queen", i.e.
    a="man", b="king", c="woman". The three vectors are normalised first. Returns (ids, similarities), (..., k).
    """
    unit = _unit(embeddings)
    query = _unit(unit[jnp.asarray(b)] - unit[jnp.asarray(a)] + unit[jnp.asarray(c)])
    return _top_k_excluding(query @ unit.T, [a, b, c], k)
