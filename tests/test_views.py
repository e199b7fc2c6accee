"""Data views of datasets: the batch keys each view yields, sizes handed to the model, augmentation, options."""

from __future__ import annotations

import grain
import numpy as np
import pytest

from jaxmodels import config as config_lib
from jaxmodels.data import pipeline, tokenizers, views
from jaxmodels.errors import ConfigError, DataError
from jaxmodels.experiment import model_arguments


def _config(data_dir: str, *overrides: str):
    config = config_lib.lock(config_lib.base_config())
    return config_lib.apply_overrides(config, [f"--config.data.data_dir={data_dir}", *overrides])


def test_text_classification_tokenizes_passages_with_a_padding_mask(data_dir, tmp_path):
    config = _config(data_dir, "--config.data.name=shakespeare/passages", "--config.data.block_size=32")
    view = views.build(config, tmp_path, view="records")
    example = view.preprocess(view.train_records[0])
    assert example["inputs"].shape == (32,) and example["inputs"][0] == tokenizers.CLS_ID
    assert example["token_mask"].dtype == bool and example["token_mask"][0]
    assert view.model_sizes == {"num_classes": 4, "vocab_size": view.tokenizer.vocab_size}
    assert not (tmp_path / "tokenizer_char").exists()  # building a view writes nothing
    views.keep_tokenizer(view)  # what `train` does once the run is accepted: kept for eval and sample
    assert tokenizers.load_tokenizer(tmp_path / "tokenizer_char").vocab_size == view.tokenizer.vocab_size
    assert set(view.eval_examples) == {"inputs", "token_mask", "label"}


def test_lm_view_targets_are_the_inputs_shifted_by_one(data_dir):
    config = _config(data_dir, "--config.data.name=shakespeare", "--config.data.block_size=16")
    view = views.build(config, None, view="lm_windows")
    inputs, targets = view.eval_examples["inputs"], view.eval_examples["targets"]
    assert inputs.shape == targets.shape == (200, 16)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    np.testing.assert_array_equal(inputs[1:, 0], targets[:-1, -1])  # consecutive windows
    assert view.eval_name == "val"
    window = view.train_examples[0]
    np.testing.assert_array_equal(window["inputs"][1:], window["targets"][:-1])


def test_mlm_view_masks_about_15_percent_of_cls_prefixed_windows(data_dir):
    config = _config(data_dir, "--config.data.name=shakespeare", "--config.data.block_size=64")
    view = views.build(config, None, view="mlm_windows")
    weights = view.eval_examples["target_weights"]
    assert 0.12 < weights.mean() < 0.18
    assert np.all(view.eval_examples["inputs"][:, 0] == tokenizers.CLS_ID)
    example = view.train_examples[0]
    assert example["inputs"].shape == example["targets"].shape == example["target_weights"].shape == (64,)
    unmasked = example["target_weights"] == 0
    np.testing.assert_array_equal(example["inputs"][unmasked], example["targets"][unmasked])
    assert example["targets"][0] == tokenizers.CLS_ID


_WORD2VEC = (
    "--config.data.name=shakespeare", "--config.data.tokenizer=word", "--config.data.vocab_size=500",
    "--config.data.batch_size=64", "--config.data.window=2", "--config.data.num_negatives=3",
    "--config.data.eval_windows=10",
)  # fmt: skip


@pytest.mark.parametrize(("inputs", "input_shape"), [("center", (64,)), ("context", (64, 4))])
def test_word2vec_view_maps_pairs_to_task_keys_as_the_model_asks(data_dir, inputs, input_shape):
    config = _config(data_dir, *_WORD2VEC)
    view = views.build(config, None, view="word2vec", options={"word2vec_inputs": inputs})
    batch = next(iter(view.train_examples))
    assert batch["inputs"].shape == input_shape
    assert batch["positives"].shape == (64,) and batch["negatives"].shape == (64, 3)
    assert ("context_mask" in batch) == (inputs == "context")


def test_word2vec_inputs_default_to_the_center_word_and_must_be_known(data_dir):
    config = _config(data_dir, *_WORD2VEC)
    assert next(iter(views.build(config, None, view="word2vec").train_examples))["inputs"].shape == (64,)
    with pytest.raises(ValueError, match=r"word2vec_inputs='window'; choose one of center, context"):
        views.build(config, None, view="word2vec", options={"word2vec_inputs": "window"})


def test_word2vec_with_worker_processes_is_a_config_error_naming_the_fix(data_dir):
    config = _config(data_dir, "--config.data.name=shakespeare", "--config.data.workers=2")
    with pytest.raises(ConfigError, match=r"set data\.workers=0"):
        views.build(config, None, view="word2vec")


def test_an_unknown_view_is_a_config_error_listing_the_views(data_dir):
    with pytest.raises(ConfigError, match=r"unknown data view 'classify'; the views are records, lm_windows"):
        views.build(_config(data_dir), None, view="classify")
    assert set(views.VIEWS) == {"records", "lm_windows", "mlm_windows", "word2vec", "reversal"}


def test_reversal_view_reverses_the_source(data_dir):
    config = _config(data_dir, "--config.data.name=synthetic/tokens", "--config.data.block_size=8")
    view = views.build(config, None, view="reversal")
    example = view.preprocess(view.train_records[3])
    np.testing.assert_array_equal(example["targets"], example["source"][::-1])
    np.testing.assert_array_equal(example["target_inputs"][1:], example["targets"][:-1])
    assert example["target_inputs"][0] == tokenizers.CLS_ID


def test_augmented_classification_redraws_every_epoch_and_only_from_the_seed(data_dir):
    def first_batches(seed: int):
        config = _config(
            data_dir, "--config.data.name=digits", "--config.data.augment=crop_flip", f"--config.seed={seed}"
        )
        train = views.build(config, None, view="records").train_examples
        assert isinstance(train, grain.MapDataset)
        epochs = train.repeat(2)
        return epochs[0]["inputs"], epochs[len(train)]["inputs"]

    epoch0, epoch1 = first_batches(0)
    again0, _ = first_batches(0)
    np.testing.assert_array_equal(epoch0, again0)
    assert not np.array_equal(epoch0, epoch1)


def test_unknown_augmentation_is_a_config_error(data_dir):
    with pytest.raises(ConfigError, match=r"'data.augment' is 'rotate'"):
        views.build(
            _config(data_dir, "--config.data.name=digits", "--config.data.augment=rotate"), None, view="records"
        )


def test_a_text_view_of_a_record_dataset_says_which_dataset_to_use(data_dir):
    with pytest.raises(DataError, match=r"'lm_windows' data view needs a text dataset.*try --config.data.name=shake"):
        views.build(_config(data_dir), None, view="lm_windows")


def test_sizes_the_data_fixes_are_filled_in_or_checked(data_dir):
    config = _config(data_dir, "--config.task.name=lm", "--config.data.name=shakespeare", "--config.model.name=gpt")
    view = views.build(config, None, view="lm_windows")
    arguments, _ = model_arguments(config, view)
    assert arguments["vocab_size"] == view.tokenizer.vocab_size
    config_lib.set_value(config, "model.vocab_size", 7)
    with pytest.raises(
        ConfigError, match=rf"model.vocab_size=7 does not match the data.*vocab_size={view.tokenizer.vocab_size}"
    ):
        model_arguments(config, view)


def _train_arrays(view: views.DataView) -> dict[str, np.ndarray]:
    indices = np.arange(len(view.train_records))
    return pipeline.load_arrays(view.train_records, view.preprocess, indices)


def test_permuted_inputs_apply_one_fixed_permutation_to_train_and_eval(data_dir):
    plain = views.build(_config(data_dir), None, view="records")
    permuted = views.build(_config(data_dir, "--config.data.permute_inputs=True"), None, view="records")
    plain_eval, permuted_eval = plain.eval_examples["inputs"], permuted.eval_examples["inputs"]
    # Column j of the permuted inputs is the plain inputs' column permutation[j], in every example.
    permutation = np.array([np.flatnonzero((plain_eval == column[:, None]).all(0))[0] for column in permuted_eval.T])
    assert sorted(permutation) == list(range(40)) and not np.array_equal(permutation, np.arange(40))
    np.testing.assert_array_equal(plain_eval[:, permutation], permuted_eval)
    np.testing.assert_array_equal(_train_arrays(plain)["inputs"][:, permutation], _train_arrays(permuted)["inputs"])
    np.testing.assert_array_equal(plain.eval_examples["label"], permuted.eval_examples["label"])


def test_label_noise_replaces_a_fixed_fraction_of_train_labels_only(data_dir):
    plain = views.build(_config(data_dir), None, view="records")
    noisy = views.build(_config(data_dir, "--config.data.label_noise=0.15"), None, view="records")
    again = views.build(_config(data_dir, "--config.data.label_noise=0.15"), None, view="records")
    clean_labels, noisy_labels = _train_arrays(plain)["label"], _train_arrays(noisy)["label"]
    changed = np.mean(clean_labels != noisy_labels)
    assert 0.15 * 0.9 - 0.02 < changed < 0.15 * 0.9 + 0.02  # a drawn class equals the true one 1 time in 10
    np.testing.assert_array_equal(noisy_labels, _train_arrays(again)["label"])  # the same records every time
    np.testing.assert_array_equal(_train_arrays(plain)["inputs"], _train_arrays(noisy)["inputs"])
    np.testing.assert_array_equal(plain.eval_examples["label"], noisy.eval_examples["label"])  # eval stays clean
    with pytest.raises(ConfigError, match=r"data.label_noise' must be a fraction in \[0, 1\]"):
        _config(data_dir, "--config.data.label_noise=1.5")


def test_train_fraction_trains_on_a_fixed_seeded_subset_of_the_train_split(data_dir):
    full = _train_arrays(views.build(_config(data_dir), None, view="records"))
    subset = views.build(_config(data_dir, "--config.data.train_fraction=0.1"), None, view="records")
    again = _train_arrays(views.build(_config(data_dir, "--config.data.train_fraction=0.1"), None, view="records"))
    other = views.build(_config(data_dir, "--config.data.train_fraction=0.1", "--config.seed=1"), None, view="records")
    arrays = _train_arrays(subset)
    assert len(subset.train_records) == round(0.1 * len(full["label"])) == len(arrays["label"])
    for key in arrays:
        np.testing.assert_array_equal(arrays[key], again[key])  # the same records every time
    assert not np.array_equal(arrays["inputs"], _train_arrays(other)["inputs"])  # another seed, another subset
    rows = {row.tobytes(): label for row, label in zip(full["inputs"], full["label"], strict=True)}
    assert all(rows.get(row.tobytes()) == label for row, label in zip(arrays["inputs"], arrays["label"], strict=True))
    assert len({row.tobytes() for row in arrays["inputs"]}) == len(arrays["inputs"])  # drawn without replacement
    np.testing.assert_array_equal(  # eval stays whole
        subset.eval_examples["label"], views.build(_config(data_dir), None, view="records").eval_examples["label"]
    )
    with pytest.raises(ConfigError, match=r"data.train_fraction' \(0.5\) takes a subset of a dataset's records"):
        views.build(_config(data_dir, "--config.data.name=shakespeare", "--config.data.train_fraction=0.5"), None,
                    view="lm_windows")  # fmt: skip
    for bad in ("0.0", "1.5", "-0.1"):
        with pytest.raises(ConfigError, match=r"data.train_fraction' must be a fraction in \(0, 1\]"):
            config_lib.validate(_config(data_dir, f"--config.data.train_fraction={bad}"))


def _with_tokenizer(directory, tokenizer):
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save(directory / f"tokenizer_{tokenizer.kind}")
    return directory


def test_a_run_from_pretrained_parameters_reads_text_with_the_pretrained_tokenizer(data_dir, tmp_path):
    pretrained = tokenizers.CharTokenizer.train(["zyx wvu ABC\n"])  # another vocabulary than the passages'
    source = _with_tokenizer(tmp_path / "pretrained", pretrained)
    passages = ("--config.data.name=shakespeare/passages", "--config.data.block_size=32")
    fresh = views.build(_config(data_dir, *passages), tmp_path / "fresh", view="records")
    assert fresh.tokenizer.vocab_size != pretrained.vocab_size
    config = _config(data_dir, *passages, f"--config.checkpoint.init_from={source}")
    view = views.build(config, tmp_path / "run", view="records")
    assert view.model_sizes["vocab_size"] == pretrained.vocab_size
    assert view.preprocess(view.train_records[0])["inputs"].tolist() == [
        tokenizers.CLS_ID,
        *pretrained.encode(view.train_records[0]["text"].decode())[:31],
    ]
    views.keep_tokenizer(view)  # the run keeps a copy: eval, sample and resumes read the same vocabulary
    kept = tokenizers.load_tokenizer(tmp_path / "run" / "tokenizer_char")
    assert [kept.id_to_piece(i) for i in range(kept.vocab_size)] == [
        pretrained.id_to_piece(i) for i in range(pretrained.vocab_size)
    ]
    assert views.build(config, tmp_path / "run", view="records").tokenizer.vocab_size == pretrained.vocab_size
    # A workdir that already keeps another vocabulary, or a source trained with another kind of tokenizer: errors.
    _with_tokenizer(tmp_path / "other", tokenizers.CharTokenizer.train(["abc"]))
    with pytest.raises(ConfigError, match=r"not the one of checkpoint\.init_from"):
        views.build(config, tmp_path / "other", view="records")
    words = _with_tokenizer(tmp_path / "words", tokenizers.WordTokenizer.train(["to be or not to be"]))
    with pytest.raises(ConfigError, match=r"trained with a 'word' tokenizer.*--config\.data\.tokenizer=word"):
        views.build(_config(data_dir, *passages, f"--config.checkpoint.init_from={words}"), None, view="records")
