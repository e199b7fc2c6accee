"""Fine-tuning imported releases end to end: the two experiments that start from an import (BERT genre
classification with its WordPiece, GPT-2 continued on Shakespeare with its BPE) train a few steps on the tiny
fixture imports, reading text with the release's tokenizer, which the run keeps for sample and export."""

from __future__ import annotations

import numpy as np
from flax import traverse_util

import jaxmodels as jm
from jaxmodels import cli
from jaxmodels.params_io import load_params
from tests.conftest import EXPERIMENTS, assert_one_error_line

FEW_STEPS = ["train.num_steps=2", "train.eval_every=2", "train.checkpoint_every=2", "train.progress_bar=False"]


def test_bert_fine_tunes_its_imported_encoder_on_wordpiece_passages(
    experiment_exports, data_dir, tmp_path, compilation_cache_dir
):
    export = experiment_exports["bert_mlm"]
    overrides = [
        *FEW_STEPS,
        f"data.data_dir={data_dir}",
        "data.batch_size=8",
        "data.train_fraction=0.05",  # 736 passages: the test split is read whole
        "optimizer.learning_rate=0.0",
        "optimizer.warmup_steps=1",
    ]
    config = jm.load_config(EXPERIMENTS / "shakespeare_genre_bert_uncased.py", overrides)
    assert config.model.name == "bert_classifier" and config.model.num_layers == 2 and config.data.block_size == 32
    run = jm.train(config, tmp_path / "run")
    assert np.isfinite(run.final["test/loss"]) and run.model.num_classes == 4
    # Learning rate 0: the encoder is exactly the import's, so init_from loaded every encoder parameter.
    pretrained = traverse_util.flatten_dict(load_params(export)[0]["params"]["encoder"], sep="/")
    tuned = traverse_util.flatten_dict(run.state.params["encoder"], sep="/")
    assert set(tuned) == set(pretrained)
    for path, value in pretrained.items():
        np.testing.assert_array_equal(np.asarray(tuned[path]), np.asarray(value), err_msg=path)
    # Passages read as the release reads them, [CLS] passage [SEP], with its vocabulary kept in the workdir.
    inputs = run.eval_examples["inputs"]
    assert (inputs[:, 0] == 101).all() and run.tokenizer.vocab_size == 304
    kept = tmp_path / "run" / "tokenizer" / "vocab.txt"
    assert kept.read_bytes() == (export / "tokenizer" / "vocab.txt").read_bytes()


def test_gpt2_trains_on_shakespeare_with_its_bpe_then_samples_and_exports(
    experiment_exports, data_dir, tmp_path, capsys, compilation_cache_dir
):
    overrides = [*FEW_STEPS, f"data.data_dir={data_dir}", "data.batch_size=4", "data.eval_windows=4"]
    config = jm.load_config(EXPERIMENTS / "shakespeare_gpt2.py", overrides)
    assert config.model.name == "gpt" and config.data.block_size == 32  # the import's context
    run = jm.train(config, tmp_path / "run")
    assert np.isfinite(run.final["val/loss"]) and run.tokenizer.vocab_size == 320
    first_window = run.eval_examples["inputs"][0]
    text = run.tokenizer.decode(first_window)  # byte-level BPE: the ids are the release's tokens of the text
    np.testing.assert_array_equal(run.tokenizer.encode(text)[: len(first_window)], first_window)
    from_workdir = jm.sample(run, "ROMEO:", 6, temperature=0.0)
    assert cli.main(["export", "--workdir", str(tmp_path / "run"), "--out", str(tmp_path / "export")]) == 0
    capsys.readouterr()
    assert (tmp_path / "export" / "tokenizer" / "merges.txt").is_file()  # the export keeps the BPE
    assert jm.sample(jm.load_export(tmp_path / "export"), "ROMEO:", 6, temperature=0.0) == from_workdir


def test_an_experiment_whose_import_is_missing_loads_but_trains_only_after_the_import(tmp_path, capsys, monkeypatch):
    export = tmp_path / "exports" / "gpt2"
    monkeypatch.setenv("JAXMODELS_GPT2_EXPORT", str(export))
    # The config loads (listings, the docs' catalogue, `compile`) with GPT-2 small's sizes standing in...
    config = jm.load_config(EXPERIMENTS / "shakespeare_gpt2.py")
    assert (config.model.name, config.model.num_layers, config.model.embed_dim) == ("gpt", 12, 768)
    # ...and training stops before writing anything, naming the import to run.
    status = cli.main(
        ["train", "--config", str(EXPERIMENTS / "shakespeare_gpt2.py"), "--workdir", str(tmp_path / "run")]
    )
    assert_one_error_line(status, capsys.readouterr().err, f"{export} does not exist", "jaxmodels import --from")
    assert not (tmp_path / "run").exists()
