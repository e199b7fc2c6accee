"""ViT in Hugging Face's layout <-> jaxmodels' `vit` (ViTForImageClassification; ViTModel with num_classes=0).

The patch embedding is a PyTorch convolution (out, in, h, w), transposed to Flax's (h, w, in, out); the
attention layers are split into heads as BERT's. `ViTModel`'s pooler (a tanh layer on the class token that
its classifier does not use) has no jaxmodels counterpart and is dropped. Images go in as (batch, H, W, C),
where transformers takes (batch, C, H, W) `pixel_values`; the position embeddings fix the image size
(config.json's `image_size`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jaxmodels.pretrained.architecture import Architecture, Arguments, HFConfig, Shapes
from jaxmodels.pretrained.table import CONV, Row, dense, expand, layer_norm, one, torch_attention


def arguments(config: HFConfig, num_classes: int) -> Arguments:
    config.require("hidden_act", ("gelu",), "gelu")
    config.require("qkv_bias", (True,), True)
    return {
        "patch_size": config.integer("patch_size", 16),
        "embed_dim": config.integer("hidden_size", 768),
        "num_layers": config.integer("num_hidden_layers", 12),
        "num_heads": config.integer("num_attention_heads", 12),
        "mlp_dim": config.integer("intermediate_size", 3072),
        "dropout": config.number("hidden_dropout_prob", 0.0),
        "attention_dropout": config.number("attention_probs_dropout_prob", 0.0),
        "ln_epsilon": config.number("layer_norm_eps", 1e-12),
        "num_classes": num_classes,
    }


def example_input(config: HFConfig) -> np.ndarray:
    """One image of config.json's size (which fixes the number of position embeddings)."""
    size = config.values.get("image_size", 224)
    height, width = (size, size) if isinstance(size, int) else size
    return np.zeros((1, height, width, config.integer("num_channels", 3)), np.float32)


def rows(arguments: Arguments) -> list[Row]:
    heads = arguments["num_heads"]
    attention = "params/encoderblock_{layer}/attention"
    block = [
        *layer_norm("encoder.layer.{layer}.layernorm_before", "params/encoderblock_{layer}/ln_attention"),
        *torch_attention(
            "encoder.layer.{layer}.attention.attention",
            "encoder.layer.{layer}.attention.output.dense",
            attention,
            heads,
        ),
        *layer_norm("encoder.layer.{layer}.layernorm_after", "params/encoderblock_{layer}/ln_mlp"),
        *dense("encoder.layer.{layer}.intermediate.dense", "params/encoderblock_{layer}/mlp/fc"),
        *dense("encoder.layer.{layer}.output.dense", "params/encoderblock_{layer}/mlp/proj"),
    ]
    table = [
        one("embeddings.cls_token", "params/cls"),
        one("embeddings.position_embeddings", "params/pos_embedding"),
        *dense("embeddings.patch_embeddings.projection", "params/embedding", kernel=CONV),
        *(row for layer in range(arguments["num_layers"]) for row in expand(block, layer=layer)),
        *layer_norm("layernorm", "params/encoder_norm"),
    ]
    if arguments["num_classes"]:
        table += dense("classifier", "params/head")
    return table


def to_config(arguments: Arguments, shapes: Shapes) -> dict[str, Any]:
    patch, _, channels, _ = shapes["params/embedding/kernel"]
    patches_per_side = math.isqrt(shapes["params/pos_embedding"][1] - 1)
    config = {
        "architectures": ["ViTForImageClassification" if arguments["num_classes"] else "ViTModel"],
        "model_type": "vit",
        "image_size": patches_per_side * patch,
        "num_channels": channels,
        "patch_size": arguments["patch_size"],
        "hidden_size": arguments["embed_dim"],
        "num_hidden_layers": arguments["num_layers"],
        "num_attention_heads": arguments["num_heads"],
        "intermediate_size": arguments["mlp_dim"],
        "hidden_dropout_prob": arguments["dropout"],
        "attention_probs_dropout_prob": arguments["attention_dropout"],
        "layer_norm_eps": arguments["ln_epsilon"],
        "hidden_act": "gelu",
        "qkv_bias": True,
    }
    if arguments["num_classes"]:
        labels = {str(i): f"LABEL_{i}" for i in range(arguments["num_classes"])}
        config.update(id2label=labels, label2id={name: int(i) for i, name in labels.items()})
    return config


IMAGE_CLASSIFICATION = Architecture(
    name="ViTForImageClassification",
    model_name="vit",
    arguments=lambda config: arguments(config, config.num_labels()),
    rows=rows,
    example_input=example_input,
    prefix="vit.",
    heads=("classifier.",),
    to_config=to_config,
    exports=lambda arguments: arguments["num_classes"] > 0,
)
BASE = Architecture(
    name="ViTModel",
    model_name="vit",
    arguments=lambda config: arguments(config, 0),
    rows=rows,
    example_input=example_input,
    ignorable=(r"pooler\.dense\.(weight|bias)",),
    to_config=to_config,
    exports=lambda arguments: arguments["num_classes"] == 0,
)
ARCHITECTURES = (IMAGE_CLASSIFICATION, BASE)
