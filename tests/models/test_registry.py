"""Specification of the model registry: families, their published sizes (variants) and what families declare.

Every variant's parameter count is checked against its published one (torchvision's for the ImageNet CNNs, the
paper's for the CIFAR ResNets, timm's for ViT, Hugging Face's for GPT-2 and BERT) with `jax.eval_shape`, so no
weights are allocated and nothing is compiled.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import pytest
from flax import traverse_util

from jaxmodels.errors import ConfigError
from jaxmodels.models import get_model
from jaxmodels.models.registry import (
    available_models,
    family_of,
    logical_axes_of,
    model_fields,
    register_variant,
    resolve_arguments,
    variant_sizes,
    view_options_of,
)
from jaxmodels.models.transformer import logical_axes

VARIANTS = sorted(name for name in available_models() if family_of(name) != name)

IMAGENET = (jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32),)
CIFAR = (jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32),)
TEXT = (jax.ShapeDtypeStruct((1, 8), jnp.int32),)

# name: (inputs, the data-determined sizes of the published model, its parameter count)
PUBLISHED_COUNTS: dict[str, tuple[tuple[jax.ShapeDtypeStruct, ...], dict[str, int], int]] = {
    "vgg11": (IMAGENET, {"num_classes": 1000}, 132_863_336),
    "vgg13": (IMAGENET, {"num_classes": 1000}, 133_047_848),
    "vgg16": (IMAGENET, {"num_classes": 1000}, 138_357_544),
    "vgg19": (IMAGENET, {"num_classes": 1000}, 143_667_240),
    "resnet18": (IMAGENET, {"num_classes": 1000}, 11_689_512),
    "resnet34": (IMAGENET, {"num_classes": 1000}, 21_797_672),
    "resnet50": (IMAGENET, {"num_classes": 1000}, 25_557_032),
    "resnet101": (IMAGENET, {"num_classes": 1000}, 44_549_160),
    "resnet152": (IMAGENET, {"num_classes": 1000}, 60_192_808),
    "cifar_resnet20": (CIFAR, {"num_classes": 10}, 269_722),  # option A shortcuts
    "cifar_resnet32": (CIFAR, {"num_classes": 10}, 464_154),
    "cifar_resnet44": (CIFAR, {"num_classes": 10}, 658_586),
    "cifar_resnet56": (CIFAR, {"num_classes": 10}, 853_018),
    "cifar_resnet110": (CIFAR, {"num_classes": 10}, 1_727_962),
    "vit_ti16": (IMAGENET, {"num_classes": 1000}, 5_717_416),
    "vit_s16": (IMAGENET, {"num_classes": 1000}, 22_050_664),
    "vit_b16": (IMAGENET, {"num_classes": 1000}, 86_567_656),
    "gpt2_small": (TEXT, {"vocab_size": 50257}, 124_439_808),
    "bert_base": (TEXT, {"vocab_size": 30522, "num_classes": 2}, 109_483_778),
    "bert_base_mlm": (TEXT, {"vocab_size": 30522}, 109_514_298),  # as HF BertForMaskedLM
}


def count_params(model, inputs: tuple[jax.ShapeDtypeStruct, ...]) -> int:
    variables = jax.eval_shape(lambda *x: model.init(jax.random.key(0), *x, train=False), *inputs)
    return sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))


def test_the_zoo_has_its_published_sizes():
    assert {"vgg16", "resnet50", "cifar_resnet20", "vit_b16", "gpt2_small", "bert_base", "bert_base_mlm"} <= set(
        VARIANTS
    )


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_has_its_published_parameter_count(name):
    assert name in PUBLISHED_COUNTS, f"add the published parameter count of variant {name!r} to PUBLISHED_COUNTS"
    inputs, data_sizes, expected = PUBLISHED_COUNTS[name]
    assert count_params(get_model(name, **data_sizes), inputs) == expected


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_builds_its_family_with_its_sizes(name):
    model = get_model(name)
    family = get_model(family_of(name), **variant_sizes(name))
    assert type(model) is type(family)
    sizes = variant_sizes(name)
    assert sizes and not {"num_classes", "vocab_size"} & set(sizes)  # the data decides those
    for key, value in sizes.items():
        assert getattr(model, key) == value


def test_gpt2_small_leaves_the_vocabulary_to_the_data():
    assert get_model("gpt2_small").num_layers == 12
    assert get_model("gpt2_small").vocab_size == get_model("gpt").vocab_size == 50257
    assert get_model("gpt2_small", vocab_size=65).vocab_size == 65


# ----------------------------------------------------------------------------------------- resolve_arguments


def test_a_variant_replaces_the_config_sizes_that_conflict_and_says_so():
    config = {"num_layers": 4, "embed_dim": 128, "num_heads": 12, "dropout": 0.0, "vocab_size": 65}
    arguments, notes = resolve_arguments("gpt2_small", config)
    gpt2_small = {"num_layers": 12, "num_heads": 12, "embed_dim": 768, "block_size": 1024}
    assert arguments == {**gpt2_small, "dropout": 0.0, "vocab_size": 65}
    replaced = "num_layers=12 (the config had 4), embed_dim=768 (had 128)"
    assert notes == [f"model gpt2_small sets its published sizes: {replaced}"]
    assert get_model("gpt2_small", **arguments).embed_dim == 768


def test_a_variant_without_conflicts_gives_no_note():
    arguments, notes = resolve_arguments("resnet50", {"stage_sizes": [3, 4, 6, 3], "num_classes": 10})
    assert notes == []  # a config's list equals the variant's tuple
    assert arguments["block"] == "bottleneck" and arguments["num_classes"] == 10


def test_a_family_takes_its_arguments_unchanged():
    config = {"num_layers": 4, "embed_dim": 128}
    assert resolve_arguments("gpt", config) == (config, [])


def test_resolving_an_unknown_model_suggests_a_name():
    with pytest.raises(ConfigError, match="gpt2_small"):
        resolve_arguments("gpt2_smal", {})


# ------------------------------------------------------------------------------------------------- get_model


def test_a_variant_refuses_other_sizes_and_points_to_its_family():
    with pytest.raises(ConfigError, match=r"num_layers=12.*num_layers=4.*'gpt'") as error:
        get_model("gpt2_small", num_layers=4, dropout=0.0)
    assert "\n" not in str(error.value)
    assert get_model("gpt2_small", num_layers=12, dropout=0.0).dropout == 0.0  # the same size is no conflict


def test_unknown_arguments_and_names_suggest_the_closest():
    with pytest.raises(ConfigError, match=r"has no argument 'num_layer'.*'num_layers'"):
        get_model("vit_b16", num_layer=2)
    with pytest.raises(ConfigError, match=r"unknown model 'resnet5'.*Did you mean.*'resnet50'"):
        get_model("resnet5")


def test_a_variant_has_its_family_fields():
    assert model_fields("gpt2_small") == model_fields("gpt") and "block_size" in model_fields("gpt2_small")
    assert model_fields("nonexistent") == set()
    assert family_of("vit_b16") == "vit" and family_of("vit") == "vit"
    assert {"resnet", "resnet50", "bert_mlm", "bert_base_mlm"} <= set(available_models())


def test_register_variant_rejects_what_is_not_an_architecture_size():
    with pytest.raises(ValueError, match="vocab_size"):
        register_variant("gpt_tiny_vocab", "gpt", num_layers=2, vocab_size=100)
    with pytest.raises(ValueError, match="num_layer"):
        register_variant("gpt_misspelt", "gpt", num_layer=2)
    with pytest.raises(ValueError, match="family"):
        register_variant("orphan", "no_such_family", num_layers=2)
    with pytest.raises(ValueError, match="twice"):
        register_variant("gpt2_small", "gpt", num_layers=12)
    assert not {"gpt_tiny_vocab", "gpt_misspelt", "orphan"} & set(available_models())


# -------------------------------------------------------------------------------- what the families declare


TRANSFORMERS = ["gpt", "gpt2_small", "bert", "bert_mlm", "bert_classifier", "bert_base", "bert_base_mlm"]


@pytest.mark.parametrize("name", [*TRANSFORMERS, "transformer_seq2seq", "vit", "vit_b16"])
def test_transformer_families_declare_their_logical_axes(name):
    assert logical_axes_of(name) is logical_axes


@pytest.mark.parametrize("name", ["mlp", "resnet50", "char_rnn", "skipgram"])
def test_other_families_declare_no_logical_axes(name):
    assert logical_axes_of(name) is None


TINY = {"num_layers": 1, "num_heads": 2, "embed_dim": 8}


@pytest.mark.parametrize(
    ("name", "config", "inputs"),
    [
        ("gpt", {**TINY, "vocab_size": 11, "block_size": 8}, TEXT),
        ("bert_classifier", {**TINY, "vocab_size": 11, "max_length": 8, "mlp_dim": 16}, TEXT),
        ("transformer_seq2seq", {**TINY, "vocab_size": 11, "mlp_dim": 16}, TEXT + TEXT),
        ("vit", {**TINY, "patch_size": 4, "mlp_dim": 16}, (jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32),)),
    ],
)
def test_logical_axes_name_every_dimension_of_the_attention_and_feed_forward_weights(name, config, inputs):
    model = get_model(name, **config)
    params = jax.eval_shape(lambda *x: model.init(jax.random.key(0), *x), *inputs)["params"]
    axes_of = logical_axes_of(name)
    named: dict[str, Any] = {}
    for path, leaf in traverse_util.flatten_dict(params).items():
        axes = axes_of(path)
        if axes is not None:
            assert len(axes) == leaf.ndim, path
            named["/".join(path[-3:])] = axes
    assert named["attention/query/kernel"] == ("embed", "heads", "head_dim")
    assert named["mlp/fc/kernel"] == ("embed", "mlp") and named["mlp/proj/kernel"] == ("mlp", "embed")


def test_word2vec_models_declare_the_inputs_their_batches_need():
    assert view_options_of("cbow") == {"word2vec_inputs": "context"}
    assert view_options_of("skipgram") == {"word2vec_inputs": "center"}
    assert view_options_of("gpt") == {}
