"""Vision Transformer of Dosovitskiy et al. (2021), "An image is worth 16x16 words: Transformers for image
recognition at scale", Fig. 1 and Eq. 1-4, with the sizes of its Table 1 (and DeiT's Ti/S sizes).

Images (batch, H, W, C) -> non-overlapping patch x patch patches, each linearly embedded (a strided
convolution) -> prepend a learned class token -> add learned position embeddings -> `num_layers` pre-LN
encoder blocks (`transformer.Block`, the block of GPT and BERT) -> final LayerNorm -> linear head on the
class token -> (batch, num_classes) logits.

As in the fine-tuned models whose parameter counts are quoted (86,567,656 for ViT-B/16 at
224x224 and 1000 classes), there is no pre-logits layer (the paper's pre-training head had one
hidden layer). The position embeddings are sized for the image the model is initialised with.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxmodels.models.conv import Conv
from jaxmodels.models.registry import register, register_variant
from jaxmodels.models.transformer import Block, logical_axes


@register("vit", logical_axes=logical_axes)
class ViT(nn.Module):
    """A Vision Transformer of any size; the defaults are a small one for 8x8 to 32x32 images on a CPU.

    `embed_dim` (the paper's hidden size D) must be divisible by `num_heads` and the image sides by `patch_size`.
    `head_zero_init` starts the classifier at zero, as the paper does when fine-tuning and
    big_vision does throughout; initial logits are then all zero. `num_classes=0` leaves the head out: the model
    then returns the encoded sequence (batch, 1 + patches, embed_dim), class token first, as Hugging Face's
    `ViTModel` (for features, or to start a classifier from). `ln_epsilon` is every LayerNorm's: 1e-6 in the
    original JAX code, 1e-12 in Hugging Face's ViT configs.
    """

    patch_size: int = 4
    embed_dim: int = 64
    num_layers: int = 4
    num_heads: int = 4
    mlp_dim: int = 128
    dropout: float = 0.0
    attention_dropout: float = 0.0
    head_zero_init: bool = True
    num_classes: int = 10
    ln_epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        p = self.patch_size
        # Linear patch embedding (Eq. 1), written as a convolution with stride = kernel = patch size.
        x = Conv(self.embed_dim, (p, p), strides=(p, p), padding="VALID", name="embedding")(x)
        batch, rows, cols, hidden = x.shape
        x = x.reshape(batch, rows * cols, hidden)
        cls = self.param("cls", nn.initializers.zeros, (1, 1, hidden))
        x = jnp.concatenate([jnp.broadcast_to(cls, (batch, 1, hidden)), x], axis=1)
        position = self.param("pos_embedding", nn.initializers.normal(stddev=0.02), (1, x.shape[1], hidden))
        x = nn.Dropout(self.dropout, deterministic=not train)(x + position)
        xavier = nn.initializers.xavier_uniform()  # as the original JAX code
        for i in range(self.num_layers):
            # Pre-LN block (Eq. 2-3): x + MSA(LN(x)), then x + MLP(LN(x)), the MLP being
            # Dense(mlp_dim) -> GELU -> Dropout -> Dense(hidden) -> Dropout.
            x = Block(
                self.num_heads,
                self.mlp_dim,
                self.dropout,
                pre_norm=True,
                ln_epsilon=self.ln_epsilon,
                # Exact (erf) GELU, as in the paper and PyTorch ports; the original JAX code used Flax's
                # default tanh approximation, which differs by < 1e-3.
                approximate_gelu=False,
                kernel_init=xavier,
                residual_init=xavier,
                attention_dropout=self.attention_dropout,
                mlp_dropout=self.dropout,
                name=f"encoderblock_{i}",
            )(x, train=train)
        x = nn.LayerNorm(epsilon=self.ln_epsilon, name="encoder_norm")(x)
        if self.num_classes == 0:
            return x
        head_init = nn.initializers.zeros if self.head_zero_init else nn.initializers.lecun_normal()
        return nn.Dense(self.num_classes, kernel_init=head_init, name="head")(x[:, 0])


# Published sizes; parameter counts at 224x224 and 1000 classes, as timm's. ViT-Ti/16 and ViT-S/16 are DeiT's
# (Touvron et al. 2021): 5,717,416 and 22,050,664 parameters; ViT-B/16 is Table 1's "Base": 86,567,656.
register_variant("vit_ti16", "vit", patch_size=16, embed_dim=192, num_layers=12, num_heads=3, mlp_dim=768)
register_variant("vit_s16", "vit", patch_size=16, embed_dim=384, num_layers=12, num_heads=6, mlp_dim=1536)
register_variant("vit_b16", "vit", patch_size=16, embed_dim=768, num_layers=12, num_heads=12, mlp_dim=3072)
