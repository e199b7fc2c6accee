"""Tokenizers and the per-record transforms: augmentation, LM windows, masked LM, padding/packing, word2vec."""

from __future__ import annotations

import grain
import numpy as np
import pytest
from scipy import stats

from jaxmodels.data import text, tokenizers, transforms
from jaxmodels.data.builders.shakespeare import read_works
from jaxmodels.data.tokenizers import CLS_ID, MASK_ID, NUM_SPECIAL, PAD_ID, SEP_ID, SPECIAL_TOKENS, UNK_ID
from jaxmodels.errors import DataError

# -------------------------------------------------------------------------------------------- tokenizers


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """Three works of Shakespeare (about 400 KB): enough to train every tokenizer in about a second."""
    works = {work.title: work.text for work in read_works()}
    return [works["Hamlet"], works["Sonnets"], works["The Tempest"]]


@pytest.fixture(scope="module")
def trained(corpus) -> dict[str, tokenizers.Tokenizer]:
    return {
        "char": tokenizers.CharTokenizer.train(corpus),
        "word": tokenizers.WordTokenizer.train(corpus, max_vocab_size=2000),
        "subword": tokenizers.SubwordTokenizer.train(corpus, vocab_size=800),
    }


def test_special_tokens_have_fixed_ids_in_every_tokenizer(trained):
    assert (PAD_ID, UNK_ID, MASK_ID, CLS_ID, SEP_ID) == (0, 1, 2, 3, 4)
    for tokenizer in trained.values():
        assert [tokenizer.id_to_piece(i) for i in range(NUM_SPECIAL)] == list(SPECIAL_TOKENS)
        assert tokenizer.decode([CLS_ID, PAD_ID, MASK_ID, SEP_ID, PAD_ID]) == "<cls><mask><sep>"
        encoded = tokenizer.encode("<mask> and <pad> <cls>")  # text never turns into special tokens but <unk>
        assert not np.isin(encoded, [PAD_ID, MASK_ID, CLS_ID, SEP_ID]).any()


@pytest.mark.parametrize("kind", ["char", "subword"])
def test_char_and_subword_round_trip_text_exactly(trained, corpus, kind):
    tokenizer = trained[kind]
    passage = corpus[0][5000:15000]
    ids = tokenizer.encode(passage)
    assert ids.dtype == np.int32 and ids.min() >= NUM_SPECIAL and ids.max() < tokenizer.vocab_size
    assert tokenizer.decode(ids) == passage


def test_subword_round_trips_even_unseen_characters_and_spacing(trained):
    odd = "  Zoë's naïve café\n\n\tunseen: 漢字  \n"
    assert trained["subword"].decode(trained["subword"].encode(odd)) == odd


def test_subword_pieces_are_shorter_than_characters(trained, corpus):
    passage = corpus[0][:20000]
    assert len(trained["subword"].encode(passage)) < 0.6 * len(passage)


def test_char_tokenizer_maps_unseen_characters_to_unk(trained):
    ids = trained["char"].encode("a\u00e9b")
    assert ids[1] == UNK_ID
    assert trained["char"].decode(ids) == "a<unk>b"


def test_word_tokenizer_round_trips_up_to_unknown_words(trained):
    tokenizer = trained["word"]
    assert tokenizer.vocab_size == 2000  # capped by frequency
    line = "To be, or not to be: that is the Xylophonist's question.\n"
    pieces = tokenizers.WordTokenizer.split(line)
    assert "".join(pieces) == line
    expected = "".join("<unk>" if piece == "Xylophonist's" else piece for piece in pieces)
    assert tokenizer.decode(tokenizer.encode(line)) == expected


def test_word_vocabulary_keeps_the_most_frequent_pieces():
    tokenizer = tokenizers.WordTokenizer.train(["b a a c c c d"], max_vocab_size=NUM_SPECIAL + 3)
    assert tokenizer.pieces == (" ", "c", "a")  # by count, ties alphabetical: 'b' and 'd' are cut


@pytest.mark.parametrize("kind", ["char", "word", "subword"])
def test_saved_tokenizers_load_back_identical(trained, corpus, tmp_path, kind):
    path = tmp_path / f"{kind}.tokenizer"
    trained[kind].save(path)
    loaded = tokenizers.load_tokenizer(path)
    assert type(loaded) is type(trained[kind]) and loaded.vocab_size == trained[kind].vocab_size
    np.testing.assert_array_equal(loaded.encode(corpus[1][:3000]), trained[kind].encode(corpus[1][:3000]))


@pytest.mark.parametrize(
    "content",
    [b"{garbage", b'{"kind": "bogus"}', b'{"kind": "char", "pieces": 5}', b'{"kind": "char", "pieces": ["ab"]}',
     b"\x00\x01 not a SentencePiece model", b'{"kind": "word", "pieces": [1]}'],
)  # fmt: skip
def test_a_damaged_tokenizer_file_is_a_data_error_naming_it(tmp_path, content):
    path = tmp_path / "tokenizer_char"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"tokenizer file {path} is damaged"):
        tokenizers.load_tokenizer(path)


def test_text_classification_features_tokenize_pad_and_label(trained):
    view = text.TextClassificationFeatures(trained["char"], length=16)
    example = view({"text": b"Hi there", "genre": 2})
    assert example["inputs"][0] == CLS_ID and trained["char"].decode(example["inputs"]) == "<cls>Hi there"
    np.testing.assert_array_equal(example["token_mask"], np.arange(16) < 9)
    assert example["label"] == 2 and example["label"].dtype == np.int32


# ------------------------------------------------------------------------------------------------ images


def _images(n: int = 8) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "label": i} for i in range(n)]


def _augmented(seed: int) -> np.ndarray:
    dataset = grain.MapDataset.source(_images()).random_map(transforms.RandomCropFlip(), seed=seed)
    return np.stack([record["image"] for record in dataset])


def test_augmentation_is_the_same_for_the_same_seed_and_differs_across_seeds():
    np.testing.assert_array_equal(_augmented(3), _augmented(3))
    assert not np.array_equal(_augmented(3), _augmented(4))


def test_random_crop_is_a_window_of_the_zero_padded_image():
    image = np.arange(1, 5 * 6 + 1, dtype=np.uint8).reshape(5, 6, 1)
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    windows = {(t, left): padded[t : t + 5, left : left + 6] for t in range(9) for left in range(9)}
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        crop = transforms.random_crop(image, rng, padding=4)
        matches = [offset for offset, window in windows.items() if np.array_equal(window, crop)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 60  # offsets 0..8 in each direction all occur


def test_flip_mirrors_the_width_about_half_the_time():
    image = np.arange(12).reshape(2, 3, 2)  # (height, width, channels)
    mirrored = np.array([[[4, 5], [2, 3], [0, 1]], [[10, 11], [8, 9], [6, 7]]])  # columns in reverse order
    rng = np.random.default_rng(0)
    kinds = [
        "mirror" if np.array_equal(out, mirrored) else "same" if np.array_equal(out, image) else "other"
        for out in (transforms.random_flip_left_right(image, rng) for _ in range(2000))
    ]
    assert kinds.count("other") == 0  # exactly the image or its mirror: never upside down, shifted or mixed
    assert 900 < kinds.count("mirror") < 1100


def test_normalize_scales_uint8_then_standardises_per_channel():
    image = np.array([[[0, 255]]], np.uint8)
    out = transforms.Normalize(mean=(0.5, 0.5), std=(0.25, 0.5)).map({"image": image})["image"]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [-2.0, 1.0])


# ----------------------------------------------------------------------------------- language modelling


def test_lm_windows_are_contiguous_and_targets_are_inputs_shifted_by_one():
    tokens = np.arange(1000, 1500, dtype=np.int32)
    dataset = transforms.lm_window_dataset(tokens, block_size=32, seed=0)
    assert len(dataset) == 500 // 32
    starts = []
    for window in dataset:
        assert window["inputs"].shape == window["targets"].shape == (32,)
        np.testing.assert_array_equal(np.diff(window["inputs"]), 1)  # contiguous in the stream
        np.testing.assert_array_equal(window["targets"], window["inputs"] + 1)
        starts.append(int(window["inputs"][0]) - 1000)
    assert min(starts) >= 0 and max(starts) <= 500 - 33


def test_lm_windows_depend_only_on_the_seed():
    tokens = np.arange(10_000, dtype=np.int32)

    def starts(seed):
        return [int(w["inputs"][0]) for w in transforms.lm_window_dataset(tokens, 16, seed=seed, num_windows=20)]

    assert starts(1) == starts(1) and starts(1) != starts(2)
    two_epochs = transforms.lm_window_dataset(tokens, 16, seed=1, num_windows=20).repeat(2)
    assert [int(w["inputs"][0]) for w in two_epochs][20:] != starts(1)  # each epoch draws new windows


# --------------------------------------------------------------------------------------------- masked LM


def test_masking_picks_15_percent_of_ordinary_tokens_and_splits_them_80_10_10():
    rng = np.random.default_rng(0)
    vocab_size = 1000
    totals = dict.fromkeys(("ordinary", "selected", "mask", "random", "same"), 0)
    for _ in range(400):
        tokens = rng.integers(NUM_SPECIAL, vocab_size, 256).astype(np.int32)
        tokens[-40:] = PAD_ID  # padding and other special tokens are never selected
        tokens[0] = CLS_ID
        out = transforms.mask_tokens(tokens, rng, vocab_size)
        np.testing.assert_array_equal(out["targets"], tokens)
        selected = out["weights"] > 0
        assert not selected[tokens < NUM_SPECIAL].any()
        np.testing.assert_array_equal(out["inputs"][~selected], tokens[~selected])
        inputs, originals = out["inputs"][selected], tokens[selected]
        totals["ordinary"] += int((tokens >= NUM_SPECIAL).sum())
        totals["selected"] += int(selected.sum())
        totals["mask"] += int((inputs == MASK_ID).sum())
        totals["random"] += int(((inputs != MASK_ID) & (inputs != originals)).sum())
        totals["same"] += int((inputs == originals).sum())
    assert abs(totals["selected"] / totals["ordinary"] - 0.15) < 0.01
    assert abs(totals["mask"] / totals["selected"] - 0.8) < 0.03
    assert abs(totals["random"] / totals["selected"] - 0.1) < 0.03
    assert abs(totals["same"] / totals["selected"] - 0.1) < 0.03


def test_mask_tokens_transform_is_deterministic_per_seed():
    records = [{"tokens": np.arange(NUM_SPECIAL, NUM_SPECIAL + 64, dtype=np.int32)} for _ in range(10)]

    def run(seed):
        dataset = grain.MapDataset.source(records).random_map(transforms.MaskTokens(vocab_size=100), seed=seed)
        return np.stack([r["inputs"] for r in dataset])

    np.testing.assert_array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))


# ----------------------------------------------------------------------------------- padding and packing


def test_padding_cuts_or_fills_to_length_with_a_mask():
    short = transforms.pad_to_length(np.array([7, 8, 9]), 5)
    np.testing.assert_array_equal(short["tokens"], [7, 8, 9, PAD_ID, PAD_ID])
    np.testing.assert_array_equal(short["segment_ids"], [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(short["positions"], [0, 1, 2, 0, 0])
    np.testing.assert_array_equal(transforms.pad_to_length(np.arange(10), 4)["tokens"], [0, 1, 2, 3])


def test_packing_keeps_every_example_whole_with_segment_ids_and_positions():
    lengths = [3, 5, 2, 7, 4, 1, 11, 6, 2]  # 11 > 8: cut to 8
    examples = [{"tokens": np.arange(10 * i + 1, 10 * i + 1 + n, dtype=np.int32)} for i, n in enumerate(lengths)]
    rows = list(transforms.pack_sequences(grain.MapDataset.source(examples).to_iter_dataset(), 8, num_packing_bins=2))
    unpacked = []
    for row in rows:
        assert row["tokens"].shape == (8,)
        segments = row["tokens_segment_ids"]
        for segment in range(1, segments.max() + 1):
            unpacked.append(row["tokens"][segments == segment].tolist())
            np.testing.assert_array_equal(
                row["tokens_positions"][segments == segment], np.arange((segments == segment).sum())
            )
        assert (row["tokens"][segments == 0] == PAD_ID).all()
    assert sorted(unpacked) == sorted(e["tokens"][:8].tolist() for e in examples)
    assert len(rows) < len(examples)


# ---------------------------------------------------------------------------------------------- word2vec


def test_skipgram_pairs_lie_within_each_centers_shrunk_window():
    tokens = np.arange(NUM_SPECIAL, NUM_SPECIAL + 200, dtype=np.int32)  # token = position + NUM_SPECIAL
    pairs = transforms.skipgram_pairs(tokens, window=4, rng=np.random.default_rng(0))
    distance = np.abs(pairs["center"] - pairs["context"])
    assert distance.min() >= 1 and distance.max() <= 4
    reaches = []
    for center in np.unique(pairs["center"]):
        contexts = np.sort(pairs["context"][pairs["center"] == center])
        reach = int(np.abs(contexts - center).max())
        expected = [
            t for t in range(center - reach, center + reach + 1) if t != center and tokens[0] <= t <= tokens[-1]
        ]
        np.testing.assert_array_equal(contexts, expected)  # every word within the drawn window, none beyond
        if 4 <= center - tokens[0] <= 195:
            reaches.append(reach)
    assert set(reaches) == {1, 2, 3, 4}  # window sizes are drawn from 1..4


def test_cbow_examples_gather_the_masked_context_of_each_center():
    tokens = np.arange(NUM_SPECIAL, NUM_SPECIAL + 50, dtype=np.int32)
    out = transforms.cbow_examples(tokens, window=3, rng=np.random.default_rng(1))
    assert out["context"].shape == out["context_mask"].shape == (50, 6)
    offsets = np.array([-3, -2, -1, 1, 2, 3])
    expected = out["center"][:, None] + offsets
    np.testing.assert_array_equal(out["context"][out["context_mask"]], expected[out["context_mask"]])
    assert (out["context"][~out["context_mask"]] == PAD_ID).all()


def test_subsampling_keeps_words_with_probability_sqrt_t_over_f():
    counts = np.array([0, 0, 0, 0, 0, 9000, 900, 90, 10])
    keep = transforms.keep_probabilities(counts, threshold=1e-2)
    frequency = counts[NUM_SPECIAL:] / counts.sum()
    np.testing.assert_allclose(keep[NUM_SPECIAL:], np.minimum(1, np.sqrt(1e-2 / frequency)))
    assert (keep[:NUM_SPECIAL] == 1).all() and keep[-1] == 1.0
    tokens = np.repeat(np.arange(len(counts)), counts)
    kept = np.bincount(transforms.subsample(tokens, keep, np.random.default_rng(0)), minlength=len(counts))
    np.testing.assert_allclose(kept[NUM_SPECIAL:] / counts[NUM_SPECIAL:], keep[NUM_SPECIAL:], rtol=0.1)


def test_negative_samples_follow_counts_to_the_power_three_quarters():
    counts = np.array([0, 0, 0, 0, 0, 5000, 2000, 800, 300, 100, 40, 10])
    sampler = transforms.NegativeSampler(counts)
    draws = np.bincount(sampler.sample(np.random.default_rng(0), 200_000), minlength=len(counts))
    assert draws[:NUM_SPECIAL].sum() == 0
    expected = counts[NUM_SPECIAL:] ** 0.75 / (counts[NUM_SPECIAL:] ** 0.75).sum() * draws.sum()
    assert stats.chisquare(draws[NUM_SPECIAL:], expected).pvalue > 0.01
    unigram = counts[NUM_SPECIAL:] / counts.sum() * draws.sum()
    assert stats.chisquare(draws[NUM_SPECIAL:], unigram).pvalue < 1e-6  # the 3/4 power matters


def _zipf_tokens(length: int) -> np.ndarray:
    return (np.random.default_rng(0).zipf(1.5, length) % 500 + NUM_SPECIAL).astype(np.int32)


@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_word2vec_batches_have_a_fixed_size_and_are_determined_by_the_seed(mode):
    tokens = _zipf_tokens(20_000)

    def batches(seed):
        return list(transforms.Word2VecBatches(tokens, batch_size=256, seed=seed, mode=mode, subsample_threshold=1e-3))

    first = batches(0)
    assert len(first) > 10
    assert all(batch["center"].shape == (256,) and batch["negatives"].shape == (256, 5) for batch in first)
    np.testing.assert_array_equal(first[3]["center"], batches(0)[3]["center"])
    assert not np.array_equal(first[3]["center"], batches(1)[3]["center"])


def test_word2vec_epochs_differ_and_the_iterator_resumes_exactly_across_an_epoch_boundary():
    dataset = transforms.Word2VecBatches(_zipf_tokens(5_000), batch_size=128, seed=3, num_epochs=3)
    run = list(dataset)
    per_epoch = len(list(transforms.Word2VecBatches(_zipf_tokens(5_000), batch_size=128, seed=3, num_epochs=1)))
    assert per_epoch < len(run) <= 3 * per_epoch + 3
    assert not np.array_equal(run[0]["center"], run[per_epoch]["center"])  # epoch 1 is a fresh draw
    for stop in (per_epoch - 1, per_epoch + 2):
        iterator = iter(dataset)
        for _ in range(stop):
            next(iterator)
        resumed = iter(dataset)
        resumed.set_state(iterator.get_state())
        rest = list(resumed)
        assert len(rest) == len(run) - stop
        for key in run[0]:
            np.testing.assert_array_equal(np.stack([b[key] for b in rest]), np.stack([b[key] for b in run[stop:]]))


def test_word2vec_process_shards_are_disjoint_rows_of_the_single_process_batch():
    tokens = _zipf_tokens(10_000)
    whole = list(transforms.Word2VecBatches(tokens, batch_size=192, seed=0))
    parts = [
        list(transforms.Word2VecBatches(tokens, batch_size=64, seed=0, process_index=p, process_count=3))
        for p in range(3)
    ]
    assert all(len(part) == len(whole) for part in parts)
    for key in whole[0]:
        for step, batch in enumerate(whole):
            np.testing.assert_array_equal(np.concatenate([part[step][key] for part in parts]), batch[key])


def test_word2vec_text_shorter_than_a_batch_is_a_data_error():
    with pytest.raises(DataError, match="fewer than one batch of 4096"):
        next(iter(transforms.Word2VecBatches(_zipf_tokens(300), batch_size=4096, seed=0)))
