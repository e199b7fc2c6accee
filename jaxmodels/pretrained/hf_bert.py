"""BERT in Hugging Face's layout <-> jaxmodels' `bert_mlm` (BertForMaskedLM), `bert` (BertModel) and
`bert_classifier` (BertForSequenceClassification).

Linear weights are (out, in), transposed into Flax kernels; the query, key and value outputs and the attention
output's inputs are split into heads. The masked-LM decoder is tied to the word embeddings (a
`cls.predictions.decoder.weight` copy must equal them) and its bias is `cls.predictions.bias`. What
jaxmodels' models lack is dropped, by name: `BertModel`'s pooler (jaxmodels' `bert` returns the hidden
states), and the next-sentence head and pooler that pre-training releases (bert-base-uncased) carry.
Old releases name LayerNorm parameters `gamma`/`beta`; registry.py reads them as `weight`/`bias`.
"""

from __future__ import annotations

from typing import Any

from jaxmodels.errors import ConfigError
from jaxmodels.pretrained.architecture import Architecture, Arguments, HFConfig, Shapes, token_input
from jaxmodels.pretrained.table import Row, dense, expand, layer_norm, one, torch_attention


def encoder_arguments(config: HFConfig) -> Arguments:
    config.require("hidden_act", ("gelu",), "gelu")
    config.require("position_embedding_type", ("absolute",), "absolute")
    config.require("is_decoder", (False,), False)
    return {
        "vocab_size": config.integer("vocab_size", 30522),
        "max_length": config.integer("max_position_embeddings", 512),
        "num_segments": config.integer("type_vocab_size", 2),
        "num_layers": config.integer("num_hidden_layers", 12),
        "num_heads": config.integer("num_attention_heads", 12),
        "embed_dim": config.integer("hidden_size", 768),
        "mlp_dim": config.integer("intermediate_size", 3072),
        "dropout": config.number("hidden_dropout_prob", 0.1),
        "ln_epsilon": config.number("layer_norm_eps", 1e-12),
    }


def classifier_arguments(config: HFConfig) -> Arguments:
    return {**encoder_arguments(config), "num_classes": config.num_labels(), "pooling": "cls"}


def encoder_rows(arguments: Arguments, ours: str) -> list[Row]:
    """The encoder's rows, its parameters under `ours` ('params/encoder/' in the models with a head)."""
    heads = arguments["num_heads"]
    attention = f"{ours}blocks_{{layer}}/attention"
    block = [
        *torch_attention(
            "encoder.layer.{layer}.attention.self", "encoder.layer.{layer}.attention.output.dense", attention, heads
        ),
        *layer_norm("encoder.layer.{layer}.attention.output.LayerNorm", f"{ours}blocks_{{layer}}/ln_attention"),
        *dense("encoder.layer.{layer}.intermediate.dense", f"{ours}blocks_{{layer}}/mlp/fc"),
        *dense("encoder.layer.{layer}.output.dense", f"{ours}blocks_{{layer}}/mlp/proj"),
        *layer_norm("encoder.layer.{layer}.output.LayerNorm", f"{ours}blocks_{{layer}}/ln_mlp"),
    ]
    return [
        one("embeddings.word_embeddings.weight", f"{ours}embeddings/token/embedding"),
        one("embeddings.position_embeddings.weight", f"{ours}embeddings/position/embedding"),
        one("embeddings.token_type_embeddings.weight", f"{ours}embeddings/segment/embedding"),
        *layer_norm("embeddings.LayerNorm", f"{ours}embeddings/norm"),
        *(row for layer in range(arguments["num_layers"]) for row in expand(block, layer=layer)),
    ]


def mlm_rows(arguments: Arguments) -> list[Row]:
    return [
        *encoder_rows(arguments, "params/encoder/"),
        *dense("cls.predictions.transform.dense", "params/transform"),
        *layer_norm("cls.predictions.transform.LayerNorm", "params/transform_norm"),
        one("cls.predictions.bias", "params/output_bias"),
    ]


def classifier_rows(arguments: Arguments) -> list[Row]:
    return [
        *encoder_rows(arguments, "params/encoder/"),
        *dense("pooler.dense", "params/pooler"),
        *dense("classifier", "params/classifier"),
    ]


def to_config(arguments: Arguments, shapes: Shapes) -> dict[str, Any]:
    if arguments["pre_norm"]:
        raise ConfigError(
            "a pre-LN BERT (model.pre_norm=True) has no counterpart in transformers' BERT, which is post-LN"
        )
    return {
        "model_type": "bert",
        "vocab_size": arguments["vocab_size"],
        "max_position_embeddings": arguments["max_length"],
        "type_vocab_size": arguments["num_segments"],
        "num_hidden_layers": arguments["num_layers"],
        "num_attention_heads": arguments["num_heads"],
        "hidden_size": arguments["embed_dim"],
        "intermediate_size": arguments["mlp_dim"],
        "hidden_dropout_prob": arguments["dropout"],
        "attention_probs_dropout_prob": arguments["dropout"],
        "layer_norm_eps": arguments["ln_epsilon"],
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
    }


def mlm_config(arguments: Arguments, shapes: Shapes) -> dict[str, Any]:
    return {**to_config(arguments, shapes), "architectures": ["BertForMaskedLM"]}


def model_config(arguments: Arguments, shapes: Shapes) -> dict[str, Any]:
    return {**to_config(arguments, shapes), "architectures": ["BertModel"]}


def classifier_config(arguments: Arguments, shapes: Shapes) -> dict[str, Any]:
    if arguments["pooling"] != "cls":
        raise ConfigError(
            f"a bert_classifier with pooling={arguments['pooling']!r} has no counterpart in transformers, whose "
            "BertForSequenceClassification pools the [CLS] position (pooling='cls')"
        )
    labels = {str(i): f"LABEL_{i}" for i in range(arguments["num_classes"])}
    return {**to_config(arguments, shapes), "architectures": ["BertForSequenceClassification"], "id2label": labels,
            "label2id": {name: int(i) for i, name in labels.items()}}  # fmt: skip


POSITION_IDS = r"embeddings\.position_ids"
PRETRAINING_HEADS = (r"cls\.seq_relationship\.(weight|bias)", r"pooler\.dense\.(weight|bias)")
DECODER_COPIES = (r"cls\.predictions\.decoder\.(weight|bias)",)
TIED_DECODER = (
    ("cls.predictions.decoder.weight", "embeddings.word_embeddings.weight"),
    ("cls.predictions.decoder.bias", "cls.predictions.bias"),
)

MASKED_LM = Architecture(
    name="BertForMaskedLM",
    model_name="bert_mlm",
    arguments=encoder_arguments,
    rows=mlm_rows,
    example_input=token_input,
    prefix="bert.",
    heads=("cls.",),
    ignorable=(POSITION_IDS, *PRETRAINING_HEADS, *DECODER_COPIES),
    tied=TIED_DECODER,
    to_config=mlm_config,
)
BASE = Architecture(
    name="BertModel",
    model_name="bert",
    arguments=encoder_arguments,
    rows=lambda arguments: encoder_rows(arguments, "params/"),
    example_input=token_input,
    ignorable=(POSITION_IDS, *PRETRAINING_HEADS),
    to_config=model_config,
)
SEQUENCE_CLASSIFICATION = Architecture(
    name="BertForSequenceClassification",
    model_name="bert_classifier",
    arguments=classifier_arguments,
    rows=classifier_rows,
    example_input=token_input,
    prefix="bert.",
    heads=("classifier.",),
    ignorable=(POSITION_IDS,),
    to_config=classifier_config,
)
ARCHITECTURES = (MASKED_LM, BASE, SEQUENCE_CLASSIFICATION)
