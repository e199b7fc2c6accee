"""Released tokenizers (GPT-2's byte-level BPE, BERT's WordPiece) give the ids `transformers` gives, and jaxmodels'
masking, padding and framing follow their special ids. The reference ids come from
benchmarks/tokenizer_fixtures.py (run by hand with transformers) on the committed fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from jaxmodels import config as config_lib
from jaxmodels.data import text, transforms, views
from jaxmodels.data.pretrained_tokenizers import PretrainedTokenizer, load_pretrained_tokenizer
from jaxmodels.errors import ConfigError, DataError

FIXTURES = Path(__file__).parent / "fixtures" / "pretrained"
REFERENCE = json.loads((FIXTURES / "tokenizer_reference.json").read_text())
BERT_SPECIALS = {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}


def variant(name: str, into: Path) -> Path:
    """The reference variant's tokenizer directory: the fixture's files, tokenizer_config.json changed as recorded."""
    spec = REFERENCE["tokenizers"][name]
    into.mkdir(parents=True, exist_ok=True)
    for file in spec["files"]:
        shutil.copyfile(FIXTURES / spec["fixture"] / file, into / file)
    config = json.loads((into / "tokenizer_config.json").read_text())
    (into / "tokenizer_config.json").write_text(json.dumps({**config, **spec["settings"]}))
    return into


@pytest.mark.parametrize("name", sorted(REFERENCE["tokenizers"]))
def test_token_ids_are_those_of_transformers_on_hostile_strings(name, tmp_path):
    tokenizer = load_pretrained_tokenizer(variant(name, tmp_path / name))
    expected = REFERENCE["tokenizers"][name]
    for string, ids, framed in zip(
        REFERENCE["strings"], expected["ids"], expected["ids_with_special_tokens"], strict=True
    ):
        assert tokenizer.encode(string).tolist() == ids, string
        assert tokenizer.with_special_tokens(tokenizer.encode(string)).tolist() == framed, string


def test_the_variants_differ_where_their_settings_do():
    ids = {name: spec["ids"] for name, spec in REFERENCE["tokenizers"].items()}
    for changed in ("bert_cased", "bert_keep_accents", "bert_no_chinese_split"):
        assert ids[changed] != ids["bert_uncased"], changed  # the reference strings exercise each setting
    assert ids["gpt2_prefix_space"] != ids["gpt2"] and ids["gpt2_vocab_files"] == ids["gpt2"]


def test_bert_special_ids_are_those_of_its_vocabulary(tmp_path):
    tokenizer = load_pretrained_tokenizer(FIXTURES / "bert_mlm")
    assert tokenizer.special_ids == BERT_SPECIALS
    assert (tokenizer.pad_id, tokenizer.mask_id, tokenizer.num_frame_tokens) == (0, 103, 2)
    assert tokenizer.reserved_ids.tolist() == [0, 100, 101, 102, 103]
    config = json.loads((FIXTURES / "bert_mlm" / "config.json").read_text())
    assert tokenizer.vocab_size == config["vocab_size"]
    assert tokenizer.decode([101, *tokenizer.encode("hello, my dog"), 102, 0, 0]) == "[CLS] hello, my dog [SEP]"


def test_gpt2_has_only_end_of_text_and_round_trips_every_string():
    tokenizer = load_pretrained_tokenizer(FIXTURES / "gpt2_lm")
    end = tokenizer.backend.token_to_id("<|endoftext|>")
    assert tokenizer.special_ids == {"unk": end, "bos": end, "eos": end}
    assert tokenizer.mask_id is None and tokenizer.pad_id == end and tokenizer.num_frame_tokens == 0
    config = json.loads((FIXTURES / "gpt2_lm" / "config.json").read_text())
    assert tokenizer.vocab_size == config["vocab_size"]
    for string in REFERENCE["strings"]:  # byte-level BPE loses nothing
        assert tokenizer.decode(tokenizer.encode(string)) == string


@pytest.mark.parametrize("fixture", ["bert_mlm", "gpt2_lm"])
def test_a_saved_tokenizer_reads_back_with_the_same_ids_and_files(fixture, tmp_path):
    tokenizer = load_pretrained_tokenizer(FIXTURES / fixture)
    tokenizer.save(tmp_path / "kept")
    for name in ("tokenizer_config.json", "vocab.txt" if fixture == "bert_mlm" else "merges.txt"):
        assert (tmp_path / "kept" / name).read_bytes() == (FIXTURES / fixture / name).read_bytes()
    assert (tmp_path / "kept" / "tokenizer.json").is_file()  # the whole pipeline, read first when loading back
    again = PretrainedTokenizer.load(tmp_path / "kept")
    assert again.special_ids == tokenizer.special_ids and again.vocab_size == tokenizer.vocab_size
    for string in REFERENCE["strings"]:
        np.testing.assert_array_equal(again.with_special_tokens(again.encode(string)),
                                      tokenizer.with_special_tokens(tokenizer.encode(string)))  # fmt: skip


def test_a_directory_without_tokenizer_files_or_with_a_damaged_one_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"holds no tokenizer files: expected tokenizer\.json, or vocab\.json"):
        load_pretrained_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "BPE", "vocab": 3}}')
    with pytest.raises(DataError, match=r"tokenizer files in .* cannot be read .*; fetch them again"):
        load_pretrained_tokenizer(tmp_path)


def test_masking_never_picks_or_draws_a_released_vocabularys_special_tokens():
    tokenizer = load_pretrained_tokenizer(FIXTURES / "bert_mlm")
    ordinary = np.setdiff1d(np.arange(tokenizer.vocab_size), tokenizer.reserved_ids)
    rng = np.random.default_rng(0)
    tokens = np.concatenate([[101], rng.choice(ordinary, 4000), [102, 0, 0, 100]]).astype(np.int32)
    reserved = tuple(tokenizer.reserved_ids.tolist())
    out = transforms.MaskTokens(tokenizer.vocab_size, special_ids=reserved, mask_id=103).random_map({"tokens": tokens},
                                                                                                    rng)  # fmt: skip
    selected = out["weights"] > 0
    assert not selected[np.isin(tokens, reserved)].any() and 0.12 < selected.mean() < 0.18
    changed = out["inputs"][selected]
    assert 0.75 < (changed == 103).mean() < 0.85
    assert not np.isin(changed[changed != 103], reserved).any()  # random replacements are ordinary tokens


def _config(data_dir: str, *overrides: str):
    config = config_lib.lock(config_lib.base_config())
    return config_lib.apply_overrides(config, [f"--config.data.data_dir={data_dir}", *overrides])


def test_a_directory_of_tokenizer_files_tokenizes_passages_and_windows(data_dir, tmp_path):
    bert = variant("bert_uncased", tmp_path / "download")
    tokenizer = load_pretrained_tokenizer(bert)
    passages = _config(data_dir, "--config.data.name=shakespeare/passages", "--config.data.block_size=32",
                       f"--config.data.tokenizer={bert}")  # fmt: skip
    view = views.build(passages, tmp_path / "run", view="records")
    assert view.model_sizes["vocab_size"] == tokenizer.vocab_size == 304
    record = view.train_records[0]
    example = view.preprocess(record)
    words = tokenizer.encode(text.as_text(record["text"]))
    real = int(example["token_mask"].sum())
    expected = [101, *words[: 32 - 2], 102] if len(words) >= 30 else [101, *words, 102]
    assert example["inputs"][:real].tolist() == expected and (example["inputs"][real:] == 0).all()
    views.keep_tokenizer(view)  # kept as a directory: eval, sample and export read the same files
    shutil.rmtree(bert)  # the run reads its own copy from then on
    assert views.build(passages, tmp_path / "run", view="records").tokenizer.vocab_size == 304
    corpus = ("--config.data.name=shakespeare", "--config.data.block_size=16",
              f"--config.data.tokenizer={tmp_path / 'run' / 'tokenizer'}")  # fmt: skip
    windows = views.build(_config(data_dir, *corpus), None, view="mlm_windows")
    targets, inputs = windows.eval_examples["targets"], windows.eval_examples["inputs"]
    assert (targets[:, 0] == 101).all() and (targets[:, -1] == 102).all() and targets.shape[1] == 16
    weights = windows.eval_examples["target_weights"] > 0
    assert (inputs[weights] == 103).mean() > 0.6 and not weights[:, [0, -1]].any()


def test_data_tokenizer_mistakes_are_config_errors(data_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"'data.tokenizer' is 'nope'; choose one of char, word, subword.*pretrained"):
        views.build(_config(data_dir, "--config.data.name=shakespeare", "--config.data.tokenizer=nope"), None,
                    view="lm_windows")  # fmt: skip
    with pytest.raises(ConfigError, match=r"'pretrained' reads the tokenizer kept with checkpoint\.init_from.*not set"):
        views.build(_config(data_dir, "--config.data.name=shakespeare", "--config.data.tokenizer=pretrained"), None,
                    view="lm_windows")  # fmt: skip
    imported = tmp_path / "import"  # as `jaxmodels import` keeps a release's tokenizer
    variant("gpt2", imported / "tokenizer")
    char_on_import = _config(data_dir, "--config.data.name=shakespeare", f"--config.checkpoint.init_from={imported}")
    with pytest.raises(
        ConfigError, match=r"trained with a 'pretrained' tokenizer.*--config\.data\.tokenizer=pretrained"
    ):
        views.build(char_on_import, None, view="lm_windows")
    other = _config(data_dir, "--config.data.name=shakespeare", f"--config.checkpoint.init_from={imported}",
                    f"--config.data.tokenizer={FIXTURES / 'bert_mlm'}")  # fmt: skip
    with pytest.raises(ConfigError, match=r"is not the tokenizer kept with checkpoint\.init_from.*=pretrained"):
        views.build(other, None, view="lm_windows")
    gpt2 = _config(data_dir, "--config.data.name=shakespeare", f"--config.data.tokenizer={FIXTURES / 'gpt2_lm'}")
    with pytest.raises(ConfigError, match=r"has no mask token, which the mlm task needs"):
        views.build(gpt2, None, view="mlm_windows")
