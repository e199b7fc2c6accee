"""Your own data (jaxmodels.data.user): text files, arrays, tables and Hugging Face datasets written by the tests.

Each source trains end to end, resumes exactly (a run stopped at step N and continued ends bitwise equal to an
unbroken one), and where both loaders apply the resident and the Grain feeds serve the same batches. Every bad
input is one `jaxmodels: error:` line, exit status 2, and no file written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import jaxmodels as jm
from jaxmodels import cli
from jaxmodels.data import feeds, tokenizers, views
from jaxmodels.errors import DataError
from jaxmodels.experiment import make_feed
from tests.conftest import EXPERIMENTS, assert_one_error_line

pytestmark = pytest.mark.usefixtures("compilation_cache_dir")  # the same tiny models, built many times

WORDS = np.array(["".join(chars) for chars in np.random.default_rng(1).choice(list("abcdefgh"), (200, 4))])
CLASSES = ("apple", "banana", "cherry")
NUM_ROWS, NUM_FEATURES = 120, 4
SHORT = ["train.num_steps=12", "train.eval_every=6", "train.log_every=6", "train.checkpoint_every=6",
         "train.progress_bar=False"]  # fmt: skip
TEXT_MODEL = {
    "shakespeare_char_gpt.py": ["model.num_layers=1", "model.embed_dim=16", "model.num_heads=2",
                                "optimizer.schedule=constant", "parallel.cpu_devices=1"],
    "shakespeare_bert_mlm.py": ["model.num_layers=1", "model.embed_dim=16", "model.num_heads=2", "model.mlp_dim=32",
                                "model.max_length=16", "optimizer.schedule=constant", "parallel.cpu_devices=1"],
    "shakespeare_word2vec.py": ["model.embed_dim=8", "data.eval_batch_size=64"],
}  # fmt: skip
TEXT_DATA = ["data.name=text", "data.block_size=16", "data.batch_size=16", "data.eval_windows=10"]
TABLE_DATA = ["data.batch_size=20", "data.eval_batch_size=50"]


def sentence(rng: np.random.Generator, length: int = 12) -> str:
    return " ".join(rng.choice(WORDS, length))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every kind of user data, written once: text files, .npz/.npy, CSV, Parquet and a saved HF dataset."""
    root = tmp_path_factory.mktemp("user_data")
    rng = np.random.default_rng(0)
    (root / "corpus").mkdir()
    for name in ("a", "b", "c"):
        (root / "corpus" / f"{name}.txt").write_text("\n".join(sentence(rng) for _ in range(60)) + "\n")
    inputs = rng.normal(size=(NUM_ROWS, NUM_FEATURES)).astype(np.float32)
    labels = (inputs[:, 0] > 0).astype(np.int64) + (inputs[:, 1] > 0.5)
    names = np.array(CLASSES)[labels]
    np.savez(root / "data.npz", x=inputs, y=labels)
    np.save(root / "x.npy", inputs)
    np.save(root / "y.npy", names)
    columns = {f"f{i}": inputs[:, i] for i in range(NUM_FEATURES)}
    header = ",".join([*columns, "fruit"])
    rows = [",".join([*(f"{v:.6f}" for v in row), name]) for row, name in zip(inputs, names, strict=True)]
    (root / "table.csv").write_text("\n".join([header, *rows]) + "\n")
    pq.write_table(pa.table({**columns, "fruit": names}), root / "table.parquet")
    features = datasets.Features({
        "x": datasets.Sequence(datasets.Value("float32"), length=NUM_FEATURES),
        "label": datasets.ClassLabel(names=list(CLASSES)),
        "text": datasets.Value("string"),
    })  # fmt: skip
    datasets.disable_progress_bars()
    saved = datasets.Dataset.from_dict(
        {"x": inputs.tolist(), "label": labels.tolist(), "text": [sentence(rng) for _ in range(NUM_ROWS)]}, features
    )
    datasets.DatasetDict({"train": saved.select(range(100)), "test": saved.select(range(100, NUM_ROWS))}).save_to_disk(
        root / "hf"
    )
    return root


RECORD_SOURCES = {
    "npz": ["data.name=arrays", "data.files={root}/data.npz", "data.input_keys=x", "data.label_key=y"],
    "npy": ["data.name=arrays", "data.files={root}/x.npy,{root}/y.npy", "data.input_keys=x", "data.label_key=y"],
    "csv": ["data.name=table", "data.files={root}/table.csv", "data.label_key=fruit"],
    "parquet": ["data.name=table", "data.files={root}/table.parquet", "data.label_key=fruit"],
    "huggingface": ["data.name=huggingface", "data.files={root}/hf", "data.input_keys=x"],
    "huggingface parquet": ["data.name=huggingface", "data.files={root}/table.parquet", "data.label_key=fruit"],
}


def config_of(experiment: str, *overrides: str):
    return jm.load_config(EXPERIMENTS / experiment, [f"--config.{item}" for item in overrides])


def record_config(files: Path, source: str, *changes: str):
    data = [item.format(root=files) for item in RECORD_SOURCES[source]]
    return config_of("mnist1d_mlp.py", *data, *TABLE_DATA, *SHORT, *changes)


def text_config(files: Path, experiment: str = "shakespeare_char_gpt.py", *changes: str):
    data = [*TEXT_DATA, f"data.files={files}/corpus/*.txt"]
    return config_of(experiment, *data, *TEXT_MODEL[experiment], *SHORT, *changes)


def assert_same_params(a: jm.Run, b: jm.Run) -> None:
    for left, right in zip(jax.tree.leaves(a.state.params), jax.tree.leaves(b.state.params), strict=True):
        np.testing.assert_array_equal(left, right)


def stopped_and_resumed(config_at, tmp_path: Path) -> tuple[jm.Run, jm.Run]:
    """(an unbroken 12-step run, a run stopped at step 6 then continued to 12 in its workdir)."""
    unbroken = jm.train(config_at(12), tmp_path / "unbroken")
    jm.train(config_at(6), tmp_path / "resumed")
    return unbroken, jm.train(config_at(12), tmp_path / "resumed")


# ---------------------------------------------------------------------------------------------------- text


@pytest.mark.parametrize("tokenizer, vocab", [("char", None), ("word", None), ("bpe", 300)])
def test_text_files_feed_every_text_view_with_every_tokenizer(files: Path, tokenizer: str, vocab: int | None):
    changes = [f"data.tokenizer={tokenizer}", *([f"data.vocab_size={vocab}"] if vocab else [])]
    corpus = "\n\n".join((files / "corpus" / f"{n}.txt").read_text() for n in "abc")
    for experiment, view in [("shakespeare_char_gpt.py", "lm_windows"), ("shakespeare_bert_mlm.py", "mlm_windows"),
                             ("shakespeare_word2vec.py", "word2vec")]:  # fmt: skip
        built = views.build(text_config(files, experiment, *changes), None, view=view)
        assert built.tokenizer.kind == tokenizer
        assert built.model_sizes == {"vocab_size": built.tokenizer.vocab_size}
        assert built.tokenizer.decode(built.tokenizer.encode(corpus)) == corpus  # every file's text is in it
        example = views.one_example(built)
        assert example["inputs"].shape == {"lm_windows": (16,), "mlm_windows": (16,), "word2vec": ()}[view]
    if tokenizer == "char":
        assert built.tokenizer.vocab_size == tokenizers.NUM_SPECIAL + len(set(corpus))


def test_byte_level_bpe_round_trips_any_text_and_reloads_from_its_file(files: Path, tmp_path: Path):
    corpus = (files / "corpus" / "a.txt").read_text()
    bpe = tokenizers.BytePairTokenizer.train([corpus], vocab_size=300)
    assert bpe.vocab_size == 300 and [bpe.id_to_piece(i) for i in range(5)] == list(tokenizers.SPECIAL_TOKENS)
    odd = "caf\u00e9 \u4e2d\u6587 <mask>\t\r\n  x"  # characters never seen in training, and a special token's name
    ids = bpe.encode(odd)
    assert bpe.decode(ids) == odd and ids.min() >= tokenizers.NUM_SPECIAL
    assert len(bpe.encode(corpus)) < 0.7 * len(corpus)  # merges learnt from the text
    awkward = "".join(
        np.random.default_rng(0).choice(["ab", " ", "  ", "\n", "\n\n", " \n", "\t", "'s", "!", "\r\n"], 100_000)
    )
    whole = bpe._tokenizer.encode(awkward, add_special_tokens=False).ids  # one string, no cuts
    np.testing.assert_array_equal(bpe.encode(awkward), whole)  # encoded in pieces of 64k characters
    bpe.save(tmp_path / "tokenizer_bpe")
    np.testing.assert_array_equal(tokenizers.load_tokenizer(tmp_path / "tokenizer_bpe").encode(odd), ids)
    (tmp_path / "tokenizer_bpe").write_text('{"kind": "bpe", "tokenizer": {"model": 3}}')
    with pytest.raises(DataError, match="tokenizer_bpe is damaged"):
        tokenizers.load_tokenizer(tmp_path / "tokenizer_bpe")


def test_the_char_gpt_on_text_files_trains_and_resumes_exactly(files: Path, tmp_path: Path):
    unbroken, resumed = stopped_and_resumed(lambda n: text_config(files, "shakespeare_char_gpt.py",
                                                                  f"train.num_steps={n}"), tmp_path)  # fmt: skip
    assert unbroken.step == resumed.step == 12
    assert_same_params(unbroken, resumed)
    assert np.isfinite(unbroken.final["val/loss"])
    assert (tmp_path / "resumed" / "tokenizer_char").is_file()


@pytest.mark.parametrize("experiment", ["shakespeare_bert_mlm.py", "shakespeare_word2vec.py"])
def test_mlm_and_word2vec_train_on_text_files_with_bpe_and_words(files: Path, tmp_path: Path, experiment: str):
    tokenizer = "bpe" if "bert" in experiment else "word"
    run = jm.train(text_config(files, experiment, f"data.tokenizer={tokenizer}", "data.vocab_size=300"), tmp_path)
    assert run.step == 12 and np.isfinite(run.final["val/loss"])
    assert tokenizers.load_tokenizer(tmp_path / f"tokenizer_{tokenizer}").kind == tokenizer


def test_documents_per_line_and_held_out_files(files: Path):
    config = text_config(files, "shakespeare_char_gpt.py", "data.documents=line",
                         f"data.eval_files={files}/corpus/c.txt", "data.eval_windows=0")  # fmt: skip
    built = views.build(config, None, view="lm_windows")
    lines = [line for n in "ab" for line in (files / "corpus" / f"{n}.txt").read_text().splitlines()]
    train_ids = built.tokenizer.encode("\n\n".join(lines))  # one document per line, joined by a blank line
    validation = built.tokenizer.encode("\n\n".join((files / "corpus" / "c.txt").read_text().splitlines()))
    windows = built.eval_examples["inputs"]
    np.testing.assert_array_equal(windows.reshape(-1), validation[: windows.size])
    assert (validation.size - 1) // 16 == len(windows)  # the whole held-out file, not a tail of the train text
    assert set(np.unique(train_ids)) - {tokenizers.UNK_ID}  # the train text is known to the tokenizer
    assert tokenizers.UNK_ID not in train_ids


# ------------------------------------------------------------------------------------------- records


@pytest.mark.parametrize("source", list(RECORD_SOURCES))
def test_arrays_and_tables_classify_with_classes_shapes_and_names_from_the_data(files: Path, source: str):
    built = views.build(record_config(files, source), None, view="records")
    assert built.model_sizes == {"num_classes": 3}
    assert views.one_example(built)["inputs"].shape == (NUM_FEATURES,)
    eval_size = 20 if source == "huggingface" else 12  # the saved test split, or 10 % held out
    assert len(built.eval_examples["label"]) == eval_size
    assert len(built.train_records) == NUM_ROWS - eval_size


@pytest.mark.parametrize("source", list(RECORD_SOURCES))
def test_the_resident_and_grain_loaders_serve_the_same_batches(files: Path, source: str):
    key = jax.random.key(0)
    batches = {}
    for loader in ("resident", "grain"):
        config = record_config(files, source, f"data.loader={loader}", "data.host_cache_max_mb=0")
        feed = make_feed(config, views.build(config, None, view="records"), key, None)
        steps = range(2 * 5 + 1)  # into the third epoch (5 batches of 20 per epoch, at most 108 train rows)
        if isinstance(feed, feeds.ResidentFeed):
            select = jax.jit(feed.select_batch)
            batches[loader] = [jax.device_get(select(step, *feed.args_for_step(step))) for step in steps]
        else:
            batches[loader] = [feed.select_batch(step, *feed.args_for_step(step)) for step in steps]
    for streamed, resident in zip(batches["grain"], batches["resident"], strict=True):
        for name in resident:
            np.testing.assert_array_equal(streamed[name], resident[name])


@pytest.mark.parametrize("source", ["npz", "csv", "huggingface"])
def test_records_train_and_resume_exactly_through_grain(files: Path, tmp_path: Path, source: str):
    def config_at(steps: int):
        return record_config(files, source, f"train.num_steps={steps}", "data.loader=grain", "data.host_cache_max_mb=0")

    unbroken, resumed = stopped_and_resumed(config_at, tmp_path)
    assert_same_params(unbroken, resumed)
    assert unbroken.final["test/accuracy"] > 0.5


# ------------------------------------------------------------------------------------------- bad input


def snapshot(workdir: Path) -> dict[str, bytes]:
    return {str(path.relative_to(workdir)): path.read_bytes() for path in sorted(workdir.rglob("*")) if path.is_file()}


def train_args(workdir: Path, experiment: str, *overrides: str) -> list[str]:
    return ["train", "--config", str(EXPERIMENTS / experiment), "--workdir", str(workdir),
            *(f"--config.{item}" for item in overrides)]  # fmt: skip


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Files with one mistake each."""
    root = tmp_path_factory.mktemp("bad_data")
    (root / "empty.txt").write_bytes(b"")
    (root / "empty_folder").mkdir()
    (root / "latin1.txt").write_bytes("caf\u00e9 au lait\n".encode("utf-8") + "na\u00efve".encode("latin-1"))
    inputs = np.zeros((30, 3), np.float32)
    np.savez(root / "keys.npz", inputs=inputs, targets=np.zeros(30, np.int64))
    np.savez(root / "lengths.npz", x=inputs, y=np.zeros(29, np.int64))
    np.savez(root / "negative.npz", x=inputs, y=np.arange(30) - 1)
    np.savez(root / "train.npz", x=inputs, y=np.arange(30) % 3)
    np.savez(root / "unseen.npz", x=inputs[:5], y=np.array([0, 1, 2, 7, 1]))
    np.savez(root / "small.npz", x=inputs[:10], y=np.arange(10) % 2)
    (root / "nolabel.csv").write_text("a,b,kind\n" + "".join(f"{i},{i},x\n" for i in range(20)))
    (root / "mixed.csv").write_text("a,b,label\n" + "".join(f"{i},{i},{i % 2 or 'cat'}\n" for i in range(20)))
    return root


ARRAYS = ["data.name=arrays", "data.input_keys=x", "data.label_key=y", *TABLE_DATA, *SHORT]
BAD_INPUTS = {
    "glob matching nothing": (["data.name=text", "data.files={root}/nowhere/*.txt"], ["nowhere/*.txt", "matches no"]),
    "empty file": (["data.name=text", "data.files={root}/empty.txt"], ["empty.txt is empty"]),
    "empty folder": (["data.name=text", "data.files={root}/empty_folder"], ["empty_folder", "holds no files"]),
    "not UTF-8": (["data.name=text", "data.files={root}/latin1.txt"], ["latin1.txt is not UTF-8", "byte 16 (0xef)"]),
    "no label column": (["data.name=table", "data.files={root}/nolabel.csv"], ["no column 'label'", "a, b, kind"]),
    "label below 0": ([*ARRAYS, "data.files={root}/negative.npz"], ["a label is -1, out of range"]),
    "label of no train class": ([*ARRAYS, "data.files={root}/train.npz", "data.eval_files={root}/unseen.npz"],
                                ["a test label is 7, out of range", "0..2"]),
    "mixed label types": (["data.name=table", "data.files={root}/mixed.csv"], ["mixed types", "'cat'"]),
    "npz without the keys": ([*ARRAYS, "data.files={root}/keys.npz"], ["no array 'x'", "inputs, targets"]),
    "inputs and labels of different lengths": ([*ARRAYS, "data.files={root}/lengths.npz"], ["one row per example"]),
    "split smaller than a batch": ([*ARRAYS, "data.files={root}/small.npz", "data.batch_size=16"],
                                   ["9 examples", "fewer than data.batch_size=16"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_writes_nothing(bad: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture):
    overrides, fragments = BAD_INPUTS[case]
    workdir = tmp_path / "run"
    status = cli.main(train_args(workdir, "mnist1d_mlp.py", *(item.format(root=bad) for item in overrides)))
    assert_one_error_line(status, capsys.readouterr().err, *fragments)
    assert not workdir.exists()


def test_resuming_on_data_changed_on_disk_is_refused_and_touches_nothing(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    data = tmp_path / "data.csv"
    shutil.copy(files / "table.csv", data)
    workdir = tmp_path / "run"
    overrides = ["data.name=table", f"data.files={data}", "data.label_key=fruit", *TABLE_DATA, *SHORT]
    assert cli.main(train_args(workdir, "mnist1d_mlp.py", *overrides, "train.num_steps=6")) == 0
    kept = json.loads((workdir / "data_fingerprint.json").read_text())
    assert kept["class_names"] == list(CLASSES)  # string labels -> ids in sorted order, the names kept
    assert [entry["path"] for entry in kept["files"]] == ["data.csv"]
    before = snapshot(workdir)
    data.write_text(data.read_text().replace("banana", "cherry", 1))  # one label changed: the same size
    status = cli.main(train_args(workdir, "mnist1d_mlp.py", *overrides))
    line = assert_one_error_line(status, capsys.readouterr().err, "data.csv changed content", "new --workdir")
    assert "the data changed on disk" in line
    assert snapshot(workdir) == before
    data.write_text(data.read_text() + "0,0,0,0,apple\n")
    assert cli.main(train_args(workdir, "mnist1d_mlp.py", *overrides)) == 2
    assert "data.csv changed size" in capsys.readouterr().err


def test_a_text_column_is_classified_by_the_records_view_and_read_by_the_text_views(files: Path):
    data = ["data.name=huggingface", f"data.files={files}/hf", "data.block_size=16", "data.batch_size=20"]
    classify = views.build(config_of("shakespeare_genre_bert.py", *data), None, view="records")
    assert classify.model_sizes == {"num_classes": 3, "vocab_size": classify.tokenizer.vocab_size}
    example = views.one_example(classify)
    assert example["inputs"].shape == example["token_mask"].shape == (16,)
    assert example["inputs"][0] == tokenizers.CLS_ID
    texts = datasets.load_from_disk(str(files / "hf"))
    assert classify.eval_examples["label"].tolist() == texts["test"]["label"]  # the saved test split, in order
    lm = views.build(config_of("shakespeare_char_gpt.py", *data), None, view="lm_windows")
    corpus = "\n\n".join(texts["train"]["text"])
    np.testing.assert_array_equal(
        lm.eval_examples["inputs"][0], lm.tokenizer.encode(corpus[int(len(corpus) * 0.9) :])[:16]
    )
