"""GPT-2 in Hugging Face's layout (`GPT2LMHeadModel`, `GPT2Model`) <-> jaxmodels' `gpt`.

GPT-2 writes its linear layers as `Conv1D`, whose weight is (in, out) as Flax's kernel is, and fuses the
query, key and value projections into one `c_attn` of 3 x embed outputs, split here into three. The LM head
is tied to the token embeddings, so `GPT2Model`'s weights are the whole language model too (its hidden states
times `wte` are `GPT2LMHeadModel`'s logits); an `lm_head.weight` copy in a file must equal `wte`. The
causal-mask buffers old files hold (`h.N.attn.bias`, `masked_bias`) are not weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxmodels.errors import ConfigError
from jaxmodels.pretrained.architecture import Architecture, Arguments, HFConfig, Shapes, token_input
from jaxmodels.pretrained.table import Row, expand, layer_norm, one, split_first


def arguments(config: HFConfig) -> Arguments:
    config.require("activation_function", ("gelu_new", "gelu_pytorch_tanh"), "gelu_new")
    config.require("scale_attn_weights", (True,), True)
    config.require("scale_attn_by_inverse_layer_idx", (False,), False)
    config.require("add_cross_attention", (False,), False)
    embed_dim = config.integer("n_embd", 768)
    inner = config.values.get("n_inner")
    return {
        "vocab_size": config.integer("vocab_size", 50257),
        "block_size": config.integer("n_positions", 1024),
        "num_layers": config.integer("n_layer", 12),
        "num_heads": config.integer("n_head", 12),
        "embed_dim": embed_dim,
        "mlp_dim": None if inner is None else config.integer("n_inner"),
        "ln_epsilon": config.number("layer_norm_epsilon", 1e-5),
        "dropout": config.number("resid_pdrop", 0.1),
    }


def fused_qkv(theirs: str, kind: str, num_heads: int) -> Row:
    """`c_attn`'s fused (.., 3 * embed) weight or bias <-> the query, key and value kernels or biases."""
    ours = tuple(f"params/block_{{layer}}/attention/{name}/{kind}" for name in ("query", "key", "value"))

    def to_ours(fused: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(part.reshape(*part.shape[:-1], num_heads, -1) for part in np.split(fused, 3, axis=-1))

    def to_theirs(*parts: np.ndarray) -> tuple[np.ndarray, ...]:
        return (np.concatenate([part.reshape(*part.shape[:-2], -1) for part in parts], axis=-1),)

    return Row((theirs,), ours, to_ours, to_theirs)


def rows(arguments: Arguments) -> list[Row]:
    heads = arguments["num_heads"]
    block = [
        *layer_norm("h.{layer}.ln_1", "params/block_{layer}/ln_attention"),
        fused_qkv("h.{layer}.attn.c_attn.weight", "kernel", heads),
        fused_qkv("h.{layer}.attn.c_attn.bias", "bias", heads),
        one("h.{layer}.attn.c_proj.weight", "params/block_{layer}/attention/out/kernel", split_first(heads)),
        one("h.{layer}.attn.c_proj.bias", "params/block_{layer}/attention/out/bias"),
        *layer_norm("h.{layer}.ln_2", "params/block_{layer}/ln_mlp"),
        one("h.{layer}.mlp.c_fc.weight", "params/block_{layer}/mlp/fc/kernel"),
        one("h.{layer}.mlp.c_fc.bias", "params/block_{layer}/mlp/fc/bias"),
        one("h.{layer}.mlp.c_proj.weight", "params/block_{layer}/mlp/proj/kernel"),
        one("h.{layer}.mlp.c_proj.bias", "params/block_{layer}/mlp/proj/bias"),
    ]
    return [
        one("wte.weight", "params/embeddings/token/embedding"),
        one("wpe.weight", "params/embeddings/position/embedding"),
        *(row for layer in range(arguments["num_layers"]) for row in expand(block, layer=layer)),
        *layer_norm("ln_f", "params/ln_f"),
    ]


def to_config(arguments: Arguments, shapes: Shapes) -> dict[str, Any]:
    if not arguments["use_bias"]:
        raise ConfigError("a gpt without biases (model.use_bias=False) has no GPT-2 counterpart in transformers")
    mlp_dim = arguments["mlp_dim"]
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": arguments["vocab_size"],
        "n_positions": arguments["block_size"],
        "n_embd": arguments["embed_dim"],
        "n_layer": arguments["num_layers"],
        "n_head": arguments["num_heads"],
        "n_inner": None if mlp_dim is None or mlp_dim == 4 * arguments["embed_dim"] else mlp_dim,
        "layer_norm_epsilon": arguments["ln_epsilon"],
        "activation_function": "gelu_new",
        "resid_pdrop": arguments["dropout"],
        "embd_pdrop": arguments["dropout"],
        "attn_pdrop": arguments["dropout"],
        "tie_word_embeddings": True,
    }


BUFFERS = (r"h\.\d+\.attn\.bias", r"h\.\d+\.attn\.masked_bias")

LM_HEAD = Architecture(
    name="GPT2LMHeadModel",
    model_name="gpt",
    arguments=arguments,
    rows=rows,
    example_input=token_input,
    prefix="transformer.",
    heads=("lm_head.",),
    ignorable=(*BUFFERS, r"lm_head\.weight"),
    tied=(("lm_head.weight", "wte.weight"),),
    to_config=to_config,
)
BASE = Architecture(
    name="GPT2Model", model_name="gpt", arguments=arguments, rows=rows, example_input=token_input, ignorable=BUFFERS
)
ARCHITECTURES = (LM_HEAD, BASE)
