"""Transformers: GPT (decoder-only), BERT (encoder) and the original encoder-decoder.

- Vaswani et al. (2017), "Attention Is All You Need": multi-head attention (Figure 2), the encoder-decoder
  (Figure 1) with sinusoidal positions (§3.5) and post-LN residual sub-layers (§3.1).
- Radford et al. (2019), "Language Models are Unsupervised Multitask Learners" (GPT-2): decoder-only, learned
  positions, LayerNorm moved to the input of each sub-block plus a final LayerNorm (§2.3), sizes in Table 2.
- Devlin et al. (2019), "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding":
  token + segment + position embeddings (Figure 2), masked-LM pre-training and fine-tuning (Figure 1).

Every model is built from the same four pieces, written once: `Embeddings`, `MultiHeadAttention`, `FeedForward`
and `Block` (also ViT's encoder block, vit.py). Every family that uses `Block` declares `logical_axes` to the
registry, so tensor parallelism can split its attention and feed-forward layers. Text generation is
`sampling.generate`. Masks are boolean and broadcast to (batch, heads, queries, keys); True means "may attend".
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmodels.errors import ConfigError
from jaxmodels.models.registry import register, register_variant, suggest
from jaxmodels.partial_loading import LoadReport, load_partial

Params = Any  # a nested dict of arrays: one model's 'params' collection

Initializer = nn.initializers.Initializer

_POSITION_ENCODINGS = ("learned", "sinusoidal")


def _normal(std: float) -> Initializer:
    return nn.initializers.normal(stddev=std)


def gelu(x: jax.Array, approximate: bool) -> jax.Array:
    """GELU, x * Phi(x) (Hendrycks & Gimpel 2016): the tanh approximation (GPT-2), or the exact form written with
    erf, 0.5 x (1 + erf(x / sqrt(2))), as BERT's code and PyTorch write it. `jax.nn.gelu` writes the exact form
    with erfc, whose CPU code is 3x slower (1.0 vs 0.36 ms forwards on 2,048 x 512): BERT-MLM's step 1.04x."""
    if approximate:
        return nn.gelu(x, approximate=True)
    return 0.5 * x * (1.0 + jax.lax.erf(x * jnp.sqrt(0.5).astype(x.dtype)))


# ---------------------------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------------------------


def sinusoidal_positions(positions: jax.Array, dim: int) -> jax.Array:
    """PE(pos, 2i) = sin(pos / 10000^(2i/dim)), PE(pos, 2i+1) = cos(...) (Vaswani et al. 2017, §3.5)."""
    rates = 1.0 / 10000.0 ** (jnp.arange(0, dim, 2, dtype=jnp.float32) / dim)
    angles = positions[..., None].astype(jnp.float32) * rates  # (..., dim / 2)
    return jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1).reshape(*positions.shape, -1)[..., :dim]


class Embeddings(nn.Module):
    """Token + position (+ segment) embeddings, then optional LayerNorm and dropout.

    GPT-2: learned positions. BERT (Devlin et al. 2019, Figure 2): learned positions, segment embeddings and a
    LayerNorm. Vaswani et al. (2017): sinusoidal positions and token embeddings scaled by sqrt(dim) (§3.4).
    `attend` reuses the token table as the output layer (weight tying, Press & Wolf 2017).
    """

    vocab_size: int
    embed_dim: int
    max_length: int = 0  # size of the learned position table; unused for sinusoidal positions
    position_encoding: str = "learned"  # 'learned' | 'sinusoidal'
    num_segments: int = 0  # BERT's token-type embeddings; 0 = none
    layer_norm: bool = False
    ln_epsilon: float = 1e-12
    scale_tokens: bool = False
    dropout: float = 0.0

    def setup(self) -> None:
        if self.position_encoding not in _POSITION_ENCODINGS:
            hint = suggest(self.position_encoding, list(_POSITION_ENCODINGS))
            raise ConfigError(f"unknown position encoding {self.position_encoding!r}.{hint}")
        self.token = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=_normal(0.02))
        if self.position_encoding == "learned":
            self.position = nn.Embed(self.max_length, self.embed_dim, embedding_init=_normal(0.02))
        if self.num_segments:
            self.segment = nn.Embed(self.num_segments, self.embed_dim, embedding_init=_normal(0.02))
        if self.layer_norm:
            self.norm = nn.LayerNorm(epsilon=self.ln_epsilon)
        self.drop = nn.Dropout(self.dropout)

    def __call__(
        self,
        tokens: jax.Array,
        *,
        positions: jax.Array | None = None,
        segments: jax.Array | None = None,
        train: bool = False,
    ) -> jax.Array:
        """(batch, time) int tokens -> (batch, time, embed_dim); positions default to 0..time-1."""
        if positions is None:
            positions = jnp.arange(tokens.shape[-1])
        h = self.token(tokens)
        if self.scale_tokens:
            h = h * jnp.sqrt(self.embed_dim).astype(h.dtype)
        if self.position_encoding == "learned":
            h = h + self.position(positions)
        else:
            h = h + sinusoidal_positions(positions, self.embed_dim).astype(h.dtype)
        if self.num_segments:
            h = h + self.segment(jnp.zeros_like(tokens) if segments is None else segments)
        if self.layer_norm:
            h = self.norm(h)
        return self.drop(h, deterministic=not train)

    def attend(self, h: jax.Array) -> jax.Array:
        """Tied output layer: logits = h @ token_embeddings.T."""
        return self.token.attend(h)


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017, §3.2, Figure 2).

    Self-attention when `context` is None, cross-attention over `context` otherwise. `mask` is boolean,
    broadcastable to (batch, heads, queries, keys). With `decode=True` (self-attention only) this call's keys and
    values are appended to a `cache_size`-long KV cache in the 'cache' collection, and queries attend causally
    to everything cached so far; a whole prompt can be written at once, then one token per call.
    The attention weights (batch, heads, queries, keys) are sown as 'intermediates' 'attention_weights': apply
    with `mutable=['intermediates']` to read a model's attention maps.
    """

    num_heads: int
    dropout: float = 0.0  # on the attention weights
    use_bias: bool = True
    kernel_init: Initializer = _normal(0.02)  # the query, key and value projections
    out_init: Initializer = _normal(0.02)  # the output projection
    cache_size: int = 0

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        context: jax.Array | None = None,
        *,
        mask: jax.Array | None = None,
        train: bool = False,
        decode: bool = False,
    ) -> jax.Array:
        embed_dim = x.shape[-1]
        if embed_dim % self.num_heads:
            raise ConfigError(f"embed_dim {embed_dim} is not divisible by num_heads {self.num_heads}")
        head_dim = embed_dim // self.num_heads
        project = functools.partial(
            nn.DenseGeneral, (self.num_heads, head_dim), use_bias=self.use_bias, kernel_init=self.kernel_init
        )
        source = x if context is None else context
        q, k, v = project(name="query")(x), project(name="key")(source), project(name="value")(source)
        if decode:
            if context is not None or mask is not None:
                raise ValueError("decode=True is causal self-attention over the cache: pass no context or mask")
            k, v, mask = self._extend_cache(k, v)

        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(head_dim).astype(q.dtype)
        if mask is not None:
            # A finite "minus infinity": a query with no visible key (padding) gets uniform weights, not NaN.
            scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
        weights = jax.nn.softmax(scores, axis=-1)
        # (batch, heads, queries, keys), kept only when the caller makes 'intermediates' mutable: attention maps.
        self.sow("intermediates", "attention_weights", weights)
        weights = nn.Dropout(self.dropout)(weights, deterministic=not train)
        y = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
        out = nn.DenseGeneral(embed_dim, axis=(-2, -1), use_bias=self.use_bias, kernel_init=self.out_init, name="out")
        return out(y)

    def _extend_cache(self, k: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Writes k, v at the cache index; returns the full cache and the causal mask over it."""
        if self.cache_size <= 0:
            raise ConfigError("decode=True needs a KV cache: construct the attention with cache_size > 0")
        batch, length, heads, head_dim = k.shape
        shape = (batch, self.cache_size, heads, head_dim)
        cached_k = self.variable("cache", "cached_key", jnp.zeros, shape, k.dtype)
        cached_v = self.variable("cache", "cached_value", jnp.zeros, shape, v.dtype)
        index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
        start = index.value
        cached_k.value = jax.lax.dynamic_update_slice(cached_k.value, k, (0, start, 0, 0))
        cached_v.value = jax.lax.dynamic_update_slice(cached_v.value, v, (0, start, 0, 0))
        index.value = start + length
        # Query i sits at absolute position start + i and sees keys 0..start + i; this also hides unwritten slots.
        mask = jnp.arange(self.cache_size)[None, :] <= (start + jnp.arange(length))[:, None]
        return cached_k.value, cached_v.value, mask[None, None]


class FeedForward(nn.Module):
    """Position-wise feed-forward network: Dense(hidden) -> GELU -> Dense(embed) (Vaswani et al. 2017, §3.3,
    "Position-wise Feed-Forward Networks"; ReLU there, GELU in GPT, BERT and ViT). A `Block` names it "mlp".

    `dropout` acts on the hidden activations, as in ViT (Dosovitskiy et al. 2021); GPT-2 and BERT have none there.
    """

    hidden_dim: int
    use_bias: bool = True
    approximate_gelu: bool = True  # GPT-2 uses the tanh approximation, BERT and ViT the exact erf form
    kernel_init: Initializer = _normal(0.02)  # the hidden layer
    out_init: Initializer = _normal(0.02)  # the output projection
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        h = nn.Dense(self.hidden_dim, use_bias=self.use_bias, kernel_init=self.kernel_init, name="fc")(x)
        h = nn.Dropout(self.dropout)(gelu(h, self.approximate_gelu), deterministic=not train)
        return nn.Dense(x.shape[-1], use_bias=self.use_bias, kernel_init=self.out_init, name="proj")(h)


# Logical axis names of the attention and feed-forward parameters, keyed by (layer, parameter): tensor
# parallelism (jaxmodels.parallel, which finds `logical_axes` through `registry.logical_axes_of`) splits 'heads'
# and 'mlp' across devices, Megatron-style (Shoeybi et al. 2019): the query/key/value and first feed-forward
# layers by output units, the output projections by input units, so each block needs one all-reduce after
# attention and one after the feed-forward network.
LOGICAL_AXES: dict[tuple[str, str], tuple[str, ...]] = {
    **{(name, "kernel"): ("embed", "heads", "head_dim") for name in ("query", "key", "value")},
    **{(name, "bias"): ("heads", "head_dim") for name in ("query", "key", "value")},
    ("out", "kernel"): ("heads", "head_dim", "embed"),
    ("out", "bias"): ("embed",),
    ("fc", "kernel"): ("embed", "mlp"),
    ("fc", "bias"): ("mlp",),
    ("proj", "kernel"): ("mlp", "embed"),
    ("proj", "bias"): ("embed",),
}


def logical_axes(path: tuple[str, ...]) -> tuple[str, ...] | None:
    """Logical axis names of the parameter at `path` (e.g. ('block_0', 'attention', 'query', 'kernel')) if it
    belongs to a `MultiHeadAttention` or `FeedForward` of a `Block`; None otherwise (optimizer-state paths,
    which end in a parameter's path, work too). Declared by every family built from `Block`."""
    if len(path) < 3 or path[-3] not in ("attention", "cross_attention", "mlp"):
        return None
    return LOGICAL_AXES.get((path[-2], path[-1]))


class Block(nn.Module):
    """One transformer layer: self-attention, optional cross-attention, feed-forward, each a residual sub-layer.

    pre_norm=True: x + Dropout(f(LayerNorm(x))) (GPT-2, Radford et al. 2019, §2.3).
    pre_norm=False: LayerNorm(x + Dropout(f(x))) (Vaswani et al. 2017, §3.1 and §5.4; BERT).
    `dropout` also acts on the attention weights unless `attention_dropout` is given; `mlp_dropout` on the
    feed-forward network's hidden activations (ViT).
    """

    num_heads: int
    mlp_dim: int
    dropout: float = 0.0
    use_bias: bool = True
    pre_norm: bool = True
    cross_attention: bool = False
    ln_epsilon: float = 1e-5
    approximate_gelu: bool = True
    kernel_init: Initializer = _normal(0.02)  # the projections that read the residual stream
    residual_init: Initializer = _normal(0.02)  # the projections that write into it
    cache_size: int = 0
    attention_dropout: float | None = None  # None: `dropout`
    mlp_dropout: float = 0.0

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        *,
        mask: jax.Array | None = None,
        memory: jax.Array | None = None,
        memory_mask: jax.Array | None = None,
        train: bool = False,
        decode: bool = False,
    ) -> jax.Array:
        def residual(x: jax.Array, sublayer: Callable[[jax.Array], jax.Array], name: str) -> jax.Array:
            norm = nn.LayerNorm(epsilon=self.ln_epsilon, use_bias=self.use_bias, name=f"ln_{name}")
            drop = nn.Dropout(self.dropout)
            if self.pre_norm:
                return x + drop(sublayer(norm(x)), deterministic=not train)
            return norm(x + drop(sublayer(x), deterministic=not train))

        attention = functools.partial(
            MultiHeadAttention,
            self.num_heads,
            self.dropout if self.attention_dropout is None else self.attention_dropout,
            self.use_bias,
            self.kernel_init,
            self.residual_init,
        )
        self_attention = attention(cache_size=self.cache_size, name="attention")
        x = residual(x, lambda h: self_attention(h, mask=mask, train=train, decode=decode), "attention")
        if self.cross_attention:
            if memory is None:
                raise ValueError("a cross-attention block needs the encoder output: pass memory=")
            cross_attention = attention(name="cross_attention")
            x = residual(x, lambda h: cross_attention(h, memory, mask=memory_mask, train=train), "cross_attention")
        mlp = FeedForward(
            self.mlp_dim,
            self.use_bias,
            self.approximate_gelu,
            self.kernel_init,
            self.residual_init,
            self.mlp_dropout,
            name="mlp",
        )
        return residual(x, lambda h: mlp(h, train=train), "mlp")


def padding_mask(mask: jax.Array) -> jax.Array:
    """(batch, keys) bool, True at real tokens -> (batch, 1, 1, keys): no query attends to padding."""
    return mask.astype(bool)[:, None, None, :]


# ---------------------------------------------------------------------------------------------------------------
# GPT
# ---------------------------------------------------------------------------------------------------------------


@register("gpt", logical_axes=logical_axes)
class GPT(nn.Module):
    """Decoder-only transformer LM: GPT-2 (Radford et al. 2019, §2.3), which modifies the GPT decoder of Radford
    et al. (2018), "Improving Language Understanding by Generative Pre-Training", Figure 1 (left).

    (batch, time) int tokens -> (batch, time, vocab_size) next-token logits. Pre-LN blocks with a final
    LayerNorm, learned positions, output layer tied to the token embeddings. Defaults are GPT-2 small.
    `decode=True` reads tokens after those already in the KV cache (collection 'cache', pass mutable=['cache']),
    the protocol of `sampling.generate`; `context_length` is `block_size`.
    """

    vocab_size: int = 50257
    block_size: int = 1024
    num_layers: int = 12
    num_heads: int = 12
    embed_dim: int = 768
    mlp_dim: int | None = None  # None: 4 * embed_dim, as GPT-2 (Hugging Face's n_inner)
    dropout: float = 0.1
    use_bias: bool = True
    ln_epsilon: float = 1e-5  # every LayerNorm's (Hugging Face's layer_norm_epsilon)

    @property
    def context_length(self) -> int:
        """The most tokens one forward pass (and the KV cache) holds: `sampling.generate` crops to it."""
        return self.block_size

    @nn.compact
    def __call__(self, tokens: jax.Array, *, train: bool = False, decode: bool = False) -> jax.Array:
        length = tokens.shape[-1]
        if decode:
            # The absolute position of this call's first token is the number of tokens already cached.
            offset = self.variable("cache", "position", lambda: jnp.array(0, jnp.int32))
            positions = offset.value + jnp.arange(length)
            offset.value = offset.value + length
            mask = None  # each attention layer masks causally against its own cache
        else:
            positions = jnp.arange(length)
            mask = nn.make_causal_mask(tokens, dtype=bool)
        embeddings = Embeddings(
            self.vocab_size, self.embed_dim, self.block_size, dropout=self.dropout, name="embeddings"
        )
        h = embeddings(tokens, positions=positions, train=train)
        for i in range(self.num_layers):
            h = Block(
                self.num_heads,
                4 * self.embed_dim if self.mlp_dim is None else self.mlp_dim,
                self.dropout,
                self.use_bias,
                ln_epsilon=self.ln_epsilon,
                # GPT-2 scales the init of the residual projections by 1/sqrt(N) for N residual layers (§2.3).
                residual_init=_normal(0.02 / math.sqrt(2 * self.num_layers)),
                cache_size=self.block_size,
                name=f"block_{i}",
            )(h, mask=mask, train=train, decode=decode)
        h = nn.LayerNorm(epsilon=self.ln_epsilon, use_bias=self.use_bias, name="ln_f")(h)
        return embeddings.attend(h)


# GPT-2 small (Radford et al. 2019, Table 2, first row; context 1024): with the default vocabulary of 50,257 and
# tied embeddings, 124,439,808 parameters.
register_variant("gpt2_small", "gpt", num_layers=12, num_heads=12, embed_dim=768, block_size=1024)


# ---------------------------------------------------------------------------------------------------------------
# BERT
# ---------------------------------------------------------------------------------------------------------------


class BertHyperparameters(nn.Module):
    """BERT's fields, shared by the encoder and its heads; defaults are BERT-base (Devlin et al. 2019, §3)."""

    vocab_size: int = 30522
    max_length: int = 512
    num_segments: int = 2
    num_layers: int = 12
    num_heads: int = 12
    embed_dim: int = 768
    mlp_dim: int = 3072
    dropout: float = 0.1
    pre_norm: bool = False  # BERT is post-LN, as Vaswani et al. (2017)
    ln_epsilon: float = 1e-12  # every LayerNorm's (Hugging Face's layer_norm_eps)


def _encoder_of(model: BertHyperparameters) -> BertEncoder:
    """`model`'s encoder as its child named 'encoder': the subtree `load_pretrained_encoder` copies."""
    names = [f.name for f in dataclasses.fields(BertHyperparameters) if f.name not in ("parent", "name")]
    return BertEncoder(**{name: getattr(model, name) for name in names}, name="encoder")


@register("bert", logical_axes=logical_axes)
class BertEncoder(BertHyperparameters):
    """The BERT encoder (Devlin et al. 2019, Figure 1 left, inputs as in Figure 2).

    (batch, time) int tokens -> (batch, time, embed_dim) hidden states. Keywords: `segments` (batch, time)
    token-type ids (default 0); `mask` (batch, time) bool, True at real tokens (default all), so padding is never
    attended to.
    """

    def setup(self) -> None:
        self.embeddings = Embeddings(
            self.vocab_size,
            self.embed_dim,
            self.max_length,
            num_segments=self.num_segments,
            layer_norm=True,
            ln_epsilon=self.ln_epsilon,
            dropout=self.dropout,
        )
        self.blocks = [
            Block(
                self.num_heads,
                self.mlp_dim,
                self.dropout,
                pre_norm=self.pre_norm,
                ln_epsilon=self.ln_epsilon,
                approximate_gelu=False,
            )
            for _ in range(self.num_layers)
        ]
        if self.pre_norm:  # pre-LN leaves the residual stream unnormalised: close it with a LayerNorm
            self.final_norm = nn.LayerNorm(epsilon=self.ln_epsilon)

    def __call__(
        self,
        tokens: jax.Array,
        *,
        segments: jax.Array | None = None,
        mask: jax.Array | None = None,
        train: bool = False,
    ) -> jax.Array:
        h = self.embeddings(tokens, segments=segments, train=train)
        attention_mask = None if mask is None else padding_mask(mask)
        for block in self.blocks:
            h = block(h, mask=attention_mask, train=train)
        return self.final_norm(h) if self.pre_norm else h

    def attend(self, h: jax.Array) -> jax.Array:
        """Scores hidden states against the token embeddings (the tied MLM decoder)."""
        return self.embeddings.attend(h)


@register("bert_mlm", logical_axes=logical_axes)
class BertMLM(BertHyperparameters):
    """BERT with its masked-LM head (Devlin et al. 2019, §3.1 Task #1; Figure 1 left).

    (batch, time) tokens -> (batch, time, vocab_size) logits. Head: Dense + GELU + LayerNorm, then a decoder tied
    to the token embeddings plus a per-token bias. Same keywords as `bert`.
    """

    @nn.compact
    def __call__(
        self,
        tokens: jax.Array,
        *,
        segments: jax.Array | None = None,
        mask: jax.Array | None = None,
        train: bool = False,
    ) -> jax.Array:
        encoder = _encoder_of(self)
        h = encoder(tokens, segments=segments, mask=mask, train=train)
        h = gelu(nn.Dense(self.embed_dim, kernel_init=_normal(0.02), name="transform")(h), approximate=False)
        h = nn.LayerNorm(epsilon=self.ln_epsilon, name="transform_norm")(h)
        return encoder.attend(h) + self.param("output_bias", nn.initializers.zeros, (self.vocab_size,))


@register("bert_classifier", logical_axes=logical_axes)
class BertClassifier(BertHyperparameters):
    """BERT fine-tuned for sequence classification (Devlin et al. 2019, §4.1; Figure 1 right).

    (batch, time) tokens -> (batch, num_classes) logits: a pooled state -> tanh(Dense) pooler -> dropout ->
    Dense(num_classes). Same keywords as `bert`.

    `pooling='cls'` reads the [CLS] (first) position, as the paper; its state is trained by the next-sentence
    task, which a masked-LM-only pretraining lacks. `pooling='mean'` averages the real tokens' states (`mask`),
    as Sentence-BERT (Reimers & Gurevych 2019) and ULMFiT's concat pooling do: every pooled input then carries
    what the masked LM learnt, from the first fine-tuning step.
    """

    num_classes: int = 2
    pooling: str = "cls"

    @nn.compact
    def __call__(
        self,
        tokens: jax.Array,
        *,
        segments: jax.Array | None = None,
        mask: jax.Array | None = None,
        train: bool = False,
    ) -> jax.Array:
        h = _encoder_of(self)(tokens, segments=segments, mask=mask, train=train)
        if self.pooling == "cls":
            summary = h[:, 0]
        elif self.pooling == "mean":
            weights = jnp.ones(tokens.shape, h.dtype) if mask is None else mask.astype(h.dtype)
            summary = jnp.einsum("bt,btd->bd", weights, h) / jnp.maximum(weights.sum(-1, keepdims=True), 1.0)
        else:
            hint = suggest(self.pooling, ["cls", "mean"])
            raise ConfigError(f"unknown pooling {self.pooling!r} (config key model.pooling).{hint}")
        pooled = nn.tanh(nn.Dense(self.embed_dim, kernel_init=_normal(0.02), name="pooler")(summary))
        pooled = nn.Dropout(self.dropout)(pooled, deterministic=not train)
        return nn.Dense(self.num_classes, kernel_init=_normal(0.02), name="classifier")(pooled)


# BERT-base (Devlin et al. 2019, §3: L=12, H=768, A=12, feed-forward 3072, 512 positions, 2 segments; with the
# default WordPiece vocabulary of 30,522). Encoder + pooler: 109,482,240 parameters (as HF `BertModel`), with
# the num_classes=2 head 109,483,778; with the masked-LM head 109,514,298 (as HF `BertForMaskedLM`), whose
# encoder loads into `bert_base` with `load_pretrained_encoder`.
BERT_BASE_SIZES = dict(num_layers=12, num_heads=12, embed_dim=768, mlp_dim=3072, max_length=512, num_segments=2)
register_variant("bert_base", "bert_classifier", **BERT_BASE_SIZES)
register_variant("bert_base_mlm", "bert_mlm", **BERT_BASE_SIZES)


def load_pretrained_encoder(
    classifier_params: Params, mlm_params: Params, *, subtree: str = "encoder"
) -> tuple[Params, LoadReport]:
    """Copies the pre-trained encoder of a `bert_mlm` into a `bert_classifier` (the fine-tuning of Figure 1).

    Both arguments are 'params' collections. Every leaf under `subtree` is replaced by the checkpoint's; the
    rest (pooler, classifier) keeps its initialisation. Raises CheckpointError if the encoders differ in shape.
    A thin use of the generic `jaxmodels.partial_loading.load_partial`, which `checkpoint.init_from` also uses.
    """
    return load_partial(classifier_params, mlm_params, subtree=subtree, strict=True)


# ---------------------------------------------------------------------------------------------------------------
# Encoder-decoder
# ---------------------------------------------------------------------------------------------------------------


@register("transformer_seq2seq", logical_axes=logical_axes)
class TransformerSeq2Seq(nn.Module):
    """The Transformer encoder-decoder (Vaswani et al. 2017, Figure 1); defaults are the base model (Table 3).

    `apply(variables, source_tokens, target_tokens, train=...)` -> (batch, target_time, vocab_size) logits for
    the token after each target position. One shared vocabulary: source, target and output embeddings are tied
    (§3.4). Keyword `source_mask` (batch, source_time) bool, True at real tokens (default all): padding is
    invisible to the encoder and to cross-attention. The decoder is causal. See `greedy_decode`.
    """

    vocab_size: int = 37000
    num_layers: int = 6
    num_heads: int = 8
    embed_dim: int = 512
    mlp_dim: int = 2048
    dropout: float = 0.1
    pre_norm: bool = False  # the paper's post-LN; True adds a final LayerNorm to encoder and decoder

    def setup(self) -> None:
        self.embeddings = Embeddings(
            self.vocab_size,
            self.embed_dim,
            position_encoding="sinusoidal",
            scale_tokens=True,
            dropout=self.dropout,
        )
        block = functools.partial(Block, self.num_heads, self.mlp_dim, self.dropout, pre_norm=self.pre_norm)
        self.encoder_blocks = [block() for _ in range(self.num_layers)]
        self.decoder_blocks = [block(cross_attention=True) for _ in range(self.num_layers)]
        if self.pre_norm:
            self.encoder_norm = nn.LayerNorm()
            self.decoder_norm = nn.LayerNorm()

    def encode(
        self, source_tokens: jax.Array, *, source_mask: jax.Array | None = None, train: bool = False
    ) -> jax.Array:
        """(batch, source_time) tokens -> (batch, source_time, embed_dim) memory."""
        mask = None if source_mask is None else padding_mask(source_mask)
        h = self.embeddings(source_tokens, train=train)
        for block in self.encoder_blocks:
            h = block(h, mask=mask, train=train)
        return self.encoder_norm(h) if self.pre_norm else h

    def decode(
        self,
        memory: jax.Array,
        target_tokens: jax.Array,
        *,
        source_mask: jax.Array | None = None,
        train: bool = False,
    ) -> jax.Array:
        """Memory and (batch, target_time) tokens -> (batch, target_time, vocab_size) logits."""
        memory_mask = None if source_mask is None else padding_mask(source_mask)
        causal = nn.make_causal_mask(target_tokens, dtype=bool)
        h = self.embeddings(target_tokens, train=train)
        for block in self.decoder_blocks:
            h = block(h, mask=causal, memory=memory, memory_mask=memory_mask, train=train)
        if self.pre_norm:
            h = self.decoder_norm(h)
        return self.embeddings.attend(h)

    def __call__(
        self,
        source_tokens: jax.Array,
        target_tokens: jax.Array,
        *,
        source_mask: jax.Array | None = None,
        train: bool = False,
    ) -> jax.Array:
        memory = self.encode(source_tokens, source_mask=source_mask, train=train)
        return self.decode(memory, target_tokens, source_mask=source_mask, train=train)


@functools.partial(jax.jit, static_argnames=("model", "max_len", "bos_id", "eos_id"))
def greedy_decode(
    model: TransformerSeq2Seq,
    params: Params,
    source: jax.Array,
    max_len: int,
    bos_id: int,
    eos_id: int,
    *,
    source_mask: jax.Array | None = None,
) -> jax.Array:
    """Greedy translation of (batch, source_time) tokens -> (batch, max_len) tokens, without the BOS.

    The source is encoded once; each step re-runs the (causal) decoder on the fixed-size buffer of tokens so
    far and takes the argmax at the newest position. After a row emits `eos_id` it stays `eos_id`.
    """
    batch = source.shape[0]
    memory = model.apply(
        {"params": params}, source, source_mask=source_mask, train=False, method=TransformerSeq2Seq.encode
    )
    buffer = jnp.full((batch, max_len + 1), bos_id, dtype=jnp.int32)
    done = jnp.zeros((batch,), dtype=bool)

    def step(i: jax.Array, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        buffer, done = carry
        logits = model.apply(
            {"params": params},
            memory,
            buffer[:, :max_len],
            source_mask=source_mask,
            train=False,
            method=TransformerSeq2Seq.decode,
        )
        token = jnp.argmax(jax.lax.dynamic_index_in_dim(logits, i, axis=1, keepdims=False), axis=-1)
        token = jnp.where(done, eos_id, token)
        return jax.lax.dynamic_update_index_in_dim(buffer, token, i + 1, axis=1), done | (token == eos_id)

    buffer, _ = jax.lax.fori_loop(0, max_len, step, (buffer, done))
    return buffer[:, 1:]
