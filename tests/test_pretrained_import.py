"""Released models in and out: the fixtures of tests/fixtures/pretrained/ (made by benchmarks/pretrained_fixtures.py
with transformers and torch) import into jaxmodels' models with transformers' outputs, export back to files that
import to the same outputs, start a training run, and every malformed release is one error line with nothing
written."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import traverse_util
from safetensors import safe_open

from jaxmodels import cli
from jaxmodels import config as config_lib
from jaxmodels.exported import load_export
from jaxmodels.optim import make_optimizer
from jaxmodels.params_io import init_from_pretrained, load_params
from jaxmodels.pretrained.importer import from_pretrained
from jaxmodels.pretrained.release import read_release
from jaxmodels.run import load_config, train
from jaxmodels.steps import create_train_state, train_step
from jaxmodels.tasks import LanguageModel
from tests.conftest import EXPERIMENTS, assert_one_error_line, run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "pretrained"
TOLERANCE = 1e-4  # max |output difference| against transformers / torch, float32

# Fixture -> the jaxmodels model it imports into (every supported class, float16 / bfloat16 / sharded files).
IMPORTS = {
    "gpt2_lm": "gpt",
    "gpt2_lm_fp16": "gpt",
    "gpt2_model": "gpt",
    "bert_mlm": "bert_mlm",
    "bert_mlm_sharded": "bert_mlm",
    "bert_model": "bert",
    "bert_cls": "bert_classifier",
    "vit_cls": "vit",
    "vit_model": "vit",
    "resnet50_tiny": "resnet",
}


def model_inputs(reference: dict[str, np.ndarray]) -> tuple[tuple[np.ndarray, ...], dict[str, np.ndarray]]:
    """The reference inputs as jaxmodels' models take them: images NHWC, BERT's attention mask as `mask`."""
    if "pixel_values" in reference:
        return (reference["pixel_values"].transpose(0, 2, 3, 1),), {}
    keywords = {"mask": reference["attention_mask"].astype(bool)} if "attention_mask" in reference else {}
    return (reference["input_ids"],), keywords


def expected_outputs(name: str, reference: dict[str, np.ndarray], variables: dict) -> np.ndarray:
    """transformers' output; for GPT2Model (hidden states), times the tied token embeddings: the LM's logits."""
    if name == "gpt2_model":
        return reference["last_hidden_state"] @ np.asarray(variables["params"]["embeddings"]["token"]["embedding"]).T
    return reference["logits"] if "logits" in reference else reference["last_hidden_state"]


def max_difference(model, name: str) -> float:
    reference = dict(np.load(FIXTURES / name / "reference.npz"))
    inputs, keywords = model_inputs(reference)
    outputs = np.asarray(model.apply(*inputs, **keywords))
    return float(np.abs(outputs - expected_outputs(name, reference, model.variables)).max())


@pytest.mark.parametrize("name", sorted(IMPORTS))
def test_a_release_imports_with_transformers_outputs(name, compilation_cache_dir):
    model = from_pretrained(FIXTURES / name)
    assert model.config.model.name == IMPORTS[name]
    assert max_difference(model, name) <= TOLERANCE


def test_a_masked_sentence_gets_transformers_top_tokens():
    """[CLS] hello , my [MASK] is cute . [SEP], as transformers' tokenizer gives it: the same top token everywhere."""
    model = from_pretrained(FIXTURES / "bert_mlm")
    reference = np.load(FIXTURES / "bert_mlm" / "reference.npz")
    ids = reference["masked_input_ids"]
    logits = np.asarray(model.apply(ids))
    assert np.abs(logits - reference["masked_logits"]).max() <= TOLERANCE
    assert (logits.argmax(-1) == reference["masked_logits"].argmax(-1)).all()


def test_sizes_come_from_the_config_not_a_variant():
    release = read_release(FIXTURES / "gpt2_model")
    assert release.arguments == {
        "vocab_size": 320, "block_size": 24, "num_layers": 2, "num_heads": 2, "embed_dim": 64, "mlp_dim": 96,
        "ln_epsilon": 1e-6, "dropout": 0.1,
    }  # fmt: skip
    assert read_release(FIXTURES / "bert_cls").arguments["num_classes"] == 3
    resnet = read_release(FIXTURES / "resnet50_tiny")
    assert resnet.arguments == {"stage_sizes": (3, 4, 6, 3), "block": "bottleneck", "num_filters": 4, "num_classes": 10}
    assert resnet.variables["params"]["stage4_block3"]["conv3"]["kernel"].shape == (1, 1, 32, 128)
    assert resnet.variables["batch_stats"]["stage1_block1"]["shortcut_bn"]["var"].shape == (16,)


@pytest.fixture(scope="module")
def gpt2_export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("imports") / "gpt2"
    assert cli.main(["import", "--from", str(FIXTURES / "gpt2_lm"), "--out", str(out)]) == 0
    return out


def test_import_writes_an_ordinary_export_with_the_release(gpt2_export, compilation_cache_dir):
    info = json.loads((gpt2_export / "jaxmodels_export.json").read_text())
    assert info["format"] == "jaxmodels-params-v1" and info["task"] == "lm" and info["num_params"] == 122_624
    assert info["model"] == {
        "name": "gpt", "vocab_size": 320, "block_size": 32, "num_layers": 2, "num_heads": 4, "embed_dim": 64,
        "mlp_dim": None, "ln_epsilon": 1e-5, "dropout": 0.1,
    }  # fmt: skip
    assert info["pretrained"]["architecture"] == "GPT2LMHeadModel"
    assert info["pretrained"]["config"] == json.loads((FIXTURES / "gpt2_lm" / "config.json").read_text())
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        assert (gpt2_export / "tokenizer" / name).read_bytes() == (FIXTURES / "gpt2_lm" / name).read_bytes()
    assert max_difference(load_export(gpt2_export), "gpt2_lm") <= TOLERANCE


def safetensors_keys(directory: Path) -> set[str]:
    keys = set()
    for path in directory.glob("*.safetensors"):
        with safe_open(path, framework="numpy") as file:
            keys |= set(file.keys())
    return keys


@pytest.mark.parametrize("name", ["gpt2_lm", "bert_mlm", "bert_cls", "vit_cls"])
def test_export_to_hugging_face_and_back_gives_the_same_outputs(name, tmp_path, compilation_cache_dir):
    assert run_cli("import", "--from", str(FIXTURES / name), "--out", str(tmp_path / "export"))[0] == 0
    status, out, _ = run_cli(
        "export", "--workdir", str(tmp_path / "export"), "--out", str(tmp_path / "hf"), "--format", "hf"
    )
    assert (
        status == 0
        and json.loads(out)["architecture"]
        == json.loads((FIXTURES / name / "config.json").read_text())["architectures"][0]
    )
    # The same tensor names as transformers' save_pretrained writes, and the tokenizer files with them.
    assert safetensors_keys(tmp_path / "hf") == safetensors_keys(FIXTURES / name)
    for tokenizer_file in ("vocab.json", "merges.txt", "vocab.txt"):
        if (FIXTURES / name / tokenizer_file).is_file():
            assert (tmp_path / "hf" / tokenizer_file).read_bytes() == (FIXTURES / name / tokenizer_file).read_bytes()
    assert max_difference(from_pretrained(tmp_path / "hf"), name) <= TOLERANCE


def test_export_to_hugging_face_refuses_a_model_without_a_counterpart(tmp_path):
    assert cli.main(["import", "--from", str(FIXTURES / "resnet50_tiny"), "--out", str(tmp_path / "resnet")]) == 0
    status, _, err = run_cli(
        "export", "--workdir", str(tmp_path / "resnet"), "--out", str(tmp_path / "hf"), "--format", "hf"
    )
    assert_one_error_line(status, err, "'resnet' model has no Hugging Face counterpart", "--format jaxmodels")
    assert not (tmp_path / "hf").exists()


def test_init_from_an_import_loads_every_parameter_and_trains(gpt2_export, capsys):
    """checkpoint.init_from's loader on an import: every parameter of a same-sized gpt is the release's; three
    steps with `optimizer.lr_multipliers='embeddings:0'` lower the loss and leave the embeddings frozen."""
    model = load_export(gpt2_export).model
    optimizer = config_lib.base_config().optimizer
    optimizer.lr_multipliers = "embeddings:0"
    tx = make_optimizer(optimizer, 3)
    tokens = np.random.default_rng(0).integers(0, 320, (4, 17)).astype(np.int32)
    batch = {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}
    fresh = create_train_state(model, LanguageModel(), tx, batch, jax.random.key(7))
    state = init_from_pretrained(fresh, gpt2_export, log=print)
    report = capsys.readouterr().out
    assert "loaded 36 (" in report and "newly initialised 0" in report
    imported = traverse_util.flatten_dict(load_params(gpt2_export)[0]["params"], sep="/")
    started = traverse_util.flatten_dict(state.params, sep="/")
    assert all(np.array_equal(leaf, imported[path]) for path, leaf in started.items())
    state = jax.device_put(state, jax.devices()[0])  # the loaded params are committed to a device: all alike, so
    step = jax.jit(functools.partial(train_step, model=model, task=LanguageModel(), tx=tx))  # one compilation
    losses = []
    for i in range(3):
        state, metrics = step(state, batch, jax.random.key(i))
        losses.append(float(metrics["loss"] / metrics["count"]))
    assert losses[-1] < losses[0]
    trained = traverse_util.flatten_dict(state.params, sep="/")
    assert np.array_equal(trained["embeddings/token/embedding"], imported["embeddings/token/embedding"])
    assert not np.array_equal(trained["ln_f/scale"], imported["ln_f/scale"])


# ---------------------------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written
# ---------------------------------------------------------------------------------------------------------------


def release_copy(tmp_path: Path, name: str = "gpt2_lm") -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / "release"))


def assert_refused(capsys, source: Path, out: Path, *fragments: str) -> None:
    status, _, err = run_cli("import", "--from", str(source), "--out", str(out))
    assert_one_error_line(status, err, *fragments)
    assert not out.exists()


def test_a_directory_without_config_or_weights_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert_refused(capsys, tmp_path / "empty", tmp_path / "out", "holds no config.json and no weights")
    release = release_copy(tmp_path)
    (release / "model.safetensors").unlink()
    assert_refused(capsys, release, tmp_path / "out", "holds no weights")
    release.joinpath("config.json").unlink()
    shutil.copyfile(FIXTURES / "gpt2_lm" / "model.safetensors", release / "model.safetensors")
    assert_refused(capsys, release, tmp_path / "out", "has no config.json")


def test_an_unsupported_architecture_is_named_with_the_supported_ones(tmp_path, capsys):
    release = release_copy(tmp_path)
    config = json.loads((release / "config.json").read_text())
    (release / "config.json").write_text(json.dumps({**config, "architectures": ["LlamaForCausalLM"]}))
    assert_refused(
        capsys, release, tmp_path / "out", "LlamaForCausalLM", "supported: GPT2LMHeadModel, GPT2Model, BertForMaskedLM"
    )


def test_a_tensor_whose_shape_disagrees_with_the_config_is_named(tmp_path, capsys):
    release = release_copy(tmp_path)
    config = json.loads((release / "config.json").read_text())
    (release / "config.json").write_text(json.dumps({**config, "n_positions": 64}))
    assert_refused(capsys, release, tmp_path / "out", "tensor 'wpe.weight' has shape (32, 64)", "needs (64, 64)")


def test_a_truncated_safetensors_file_is_refused(tmp_path, capsys):
    release = release_copy(tmp_path)
    weights = release / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert_refused(capsys, release, tmp_path / "out", "model.safetensors is not a readable safetensors file")


def test_a_shard_missing_from_a_sharded_release_is_named(tmp_path, capsys):
    release = release_copy(tmp_path, "bert_mlm_sharded")
    shard = sorted(release.glob("model-*.safetensors"))[1]
    shard.unlink()
    assert_refused(capsys, release, tmp_path / "out", "names shards that", shard.name, "download the whole release")


@pytest.mark.parametrize("pickle_name", ["pytorch_model.bin", "resnet50.pth"])
def test_pytorch_pickles_are_refused_with_how_to_convert_them(pickle_name, tmp_path, capsys):
    release = release_copy(tmp_path)
    (release / "model.safetensors").unlink()
    (release / pickle_name).write_bytes(b"\x80\x04 a pickle that must never be loaded")
    assert_refused(capsys, release, tmp_path / "out", pickle_name, "runs the code", "save_file(")


def test_a_tokenizer_whose_vocabulary_is_not_the_models_is_refused(tmp_path, capsys):
    release = release_copy(tmp_path, "bert_mlm")
    with (release / "vocab.txt").open("a") as vocab:
        vocab.write("zebra\n")
    assert_refused(capsys, release, tmp_path / "out", "the tokenizer has 305 tokens", "vocabulary has 304")


def test_import_onto_an_existing_export_is_refused(gpt2_export, capsys):
    before = sorted(path.name for path in gpt2_export.iterdir())
    status, _, err = run_cli("import", "--from", str(FIXTURES / "gpt2_lm"), "--out", str(gpt2_export))
    assert_one_error_line(status, err, "is not empty", "choose a new --out")
    assert sorted(path.name for path in gpt2_export.iterdir()) == before


def test_a_gpt_trained_here_exports_to_hugging_face_with_its_logits(data_dir, tmp_path, capsys, compilation_cache_dir):
    """A workdir's char GPT, whose config leaves the vocabulary to the data: --format hf reads its size from the
    parameters, and the files import back to the run's own logits."""
    overrides = [
        f"data.data_dir={data_dir}", "model.num_layers=1", "model.embed_dim=32", "model.num_heads=2",
        "model.block_size=16", "data.block_size=16", "data.batch_size=4", "data.eval_windows=4",
        "train.num_steps=2", "train.eval_every=2", "train.checkpoint_every=2", "train.progress_bar=False",
        "parallel.cpu_devices=1", "optimizer.warmup_steps=1",
    ]  # fmt: skip
    run = train(load_config(EXPERIMENTS / "shakespeare_char_gpt.py", overrides), tmp_path / "run")
    capsys.readouterr()
    status, out, _ = run_cli("export", "--workdir", str(tmp_path / "run"), "--out", str(tmp_path / "hf"),
                             "--format", "hf")  # fmt: skip
    assert status == 0 and json.loads(out)["files"] == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["vocab_size"] == run.tokenizer.vocab_size
    tokens = run.eval_examples["inputs"][:2]
    np.testing.assert_allclose(from_pretrained(tmp_path / "hf").apply(tokens), run.apply(tokens), atol=1e-6)
