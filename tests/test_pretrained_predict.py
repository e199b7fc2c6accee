"""Predicting with imported releases: `jaxmodels fill-mask` and `jaxmodels sample --model` on the tiny BERT and
GPT-2 fixtures give what `transformers` gives (recorded by benchmarks/tokenizer_fixtures.py), and each misuse is
one error line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import jaxmodels as jm
from tests.conftest import PRETRAINED_FIXTURES, assert_one_error_line, run_cli

REFERENCE = json.loads((PRETRAINED_FIXTURES / "tokenizer_reference.json").read_text())


def test_fill_mask_gives_transformers_top_tokens_and_probabilities(pretrained_exports, compilation_cache_dir):
    bert = jm.load_export(pretrained_exports["bert_mlm"])
    for row in REFERENCE["fill_mask"]["texts"]:
        predictions = jm.fill_mask(bert, row["text"], top_k=5)
        assert len(predictions) == len(row["top_ids"])  # one list per mask, in order
        for candidates, ids, probabilities in zip(predictions, row["top_ids"], row["top_probabilities"], strict=True):
            assert [p.token_id for p in candidates] == ids, row["text"]
            np.testing.assert_allclose([p.probability for p in candidates], probabilities, atol=1e-6)
            assert [p.token for p in candidates] == [bert.tokenizer.id_to_piece(i) for i in ids]
    released = jm.from_pretrained(PRETRAINED_FIXTURES / "bert_mlm")  # the download itself, nothing written
    first = REFERENCE["fill_mask"]["texts"][0]
    assert [p.token_id for p in jm.fill_mask(released, first["text"])[0]] == first["top_ids"][0]


def test_the_fill_mask_command_prints_each_masks_top_tokens(pretrained_exports, capsys, compilation_cache_dir):
    row = REFERENCE["fill_mask"]["texts"][2]  # two masks
    status, out, err = run_cli("fill-mask", "--model", str(pretrained_exports["bert_mlm"]), row["text"],
                               "--top_k", "3")  # fmt: skip
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == row["text"] and lines[1] == "mask 1 of 2:" and lines[5] == "mask 2 of 2:"
    tokenizer = jm.load_export(pretrained_exports["bert_mlm"]).tokenizer
    for first, ids, probabilities in zip((2, 6), row["top_ids"], row["top_probabilities"], strict=True):
        for rank in range(3):
            number, probability, token = lines[first + rank].split()
            assert number == f"{rank + 1}." and token == tokenizer.id_to_piece(ids[rank])
            assert float(probability) == pytest.approx(probabilities[rank], abs=1e-4)


def test_sample_continues_a_prompt_as_transformers_greedy_search(pretrained_exports, capsys, compilation_cache_dir):
    greedy = REFERENCE["greedy"]
    gpt2 = jm.load_export(pretrained_exports["gpt2_lm"])
    expected = gpt2.tokenizer.decode(greedy["prompt_ids"] + greedy["new_ids"])
    assert jm.sample(gpt2, greedy["prompt"], len(greedy["new_ids"]), temperature=0.0) == expected
    arguments = ["--prompt", greedy["prompt"], "--num_tokens", str(len(greedy["new_ids"])), "--temperature", "0"]
    status, out, err = run_cli("sample", "--model", str(pretrained_exports["gpt2_lm"]), *arguments)
    assert status == 0 and out == expected + "\n", err
    sampled = [jm.sample(gpt2, greedy["prompt"], 8, temperature=1.0, top_k=20, seed=seed) for seed in (1, 1, 2)]
    assert sampled[0] == sampled[1] != sampled[2] and sampled[0].startswith(greedy["prompt"])


def test_misuses_are_one_error_line(pretrained_exports, tmp_path, capsys, compilation_cache_dir):
    bert, gpt2 = str(pretrained_exports["bert_mlm"]), str(pretrained_exports["gpt2_lm"])
    status, _, err = run_cli("fill-mask", "--model", bert, "Hello, my dog is cute.")
    assert_one_error_line(status, err, "the text has no mask token; write '[MASK]'")
    status, _, err = run_cli("fill-mask", "--model", gpt2, "Hello, my [MASK] is cute.")
    assert_one_error_line(status, err, "fill-mask needs a masked language model", "'gpt'", "no masked-LM head")
    status, _, err = run_cli("sample", "--model", bert, "--prompt", "hello")
    assert_one_error_line(status, err, "holds a 'mlm' run; sampling needs task lm")
    mismatched = tmp_path / "mismatched"
    shutil.copytree(pretrained_exports["bert_mlm"], mismatched)
    shutil.rmtree(mismatched / "tokenizer")
    shutil.copytree(pretrained_exports["gpt2_lm"] / "tokenizer", mismatched / "tokenizer")
    status, _, err = run_cli("fill-mask", "--model", str(mismatched), "Hello, my [MASK] is cute.")
    assert_one_error_line(status, err, "the tokenizer has 320 tokens but the model's vocabulary has 304")
    status, _, err = run_cli("fill-mask", "--model", str(tmp_path), "a [MASK]")
    assert_one_error_line(status, err, "holds no jaxmodels_export.json: it is not a parameter export")
