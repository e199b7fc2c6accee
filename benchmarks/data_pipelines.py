"""Throughput of the input pipelines of jaxmodels.data, with no model attached, on this machine.

Each pipeline reads a prepared offline dataset (digits, shakespeare, synthetic: prepared into the
TFDS data dir on first use), applies its per-record transforms in Grain and batches. We time
`--seconds` of iteration after a warm-up batch, in one process with `--threads` Grain read
threads, `--rounds` times in turn, and report the median (rates on this shared machine vary by up
to 2x). A second table times the parts alone, one record at a time in one thread, to show where a
pipeline's time goes. One-off costs (preparing datasets, training tokenizers on the whole
Shakespeare corpus, tokenizing it) are printed first. docs/data.md quotes the tables.

    python benchmarks/data_pipelines.py [--seconds 2] [--rounds 3] [--threads 2] [--data_dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grain
import jax
import numpy as np

from jaxmodels.data import features, pipeline, sources, text, tokenizers, transforms


@dataclasses.dataclass
class Inputs:
    """The datasets and tokenized corpus every pipeline draws on."""

    digits: Sequence[dict]
    images: Sequence[dict]
    token_records: Sequence[dict]
    passages: Sequence[dict]
    char: tokenizers.Tokenizer
    subword: tokenizers.Tokenizer
    char_ids: np.ndarray
    word_ids: np.ndarray


def timed(what: str, make: Callable[[], Any]) -> Any:
    """Runs `make()` and prints how long it took."""
    start = time.perf_counter()
    result = make()
    print(f"{what}: {time.perf_counter() - start:.1f} s", flush=True)
    return result


def prepare(data_dir: str) -> Inputs:
    """Opens (preparing on first use) the datasets and trains the tokenizers on the whole corpus."""

    def split(name: str) -> Sequence[dict]:
        builder = timed(f"open/prepare {name}", lambda: sources.open_dataset(name, data_dir))
        return sources.open_split(builder, "train")

    digits, images, token_records = split("digits"), split("synthetic/images"), split("synthetic/tokens")
    corpus, passages = text.corpus_text(split("shakespeare")), split("shakespeare/passages")
    print(f"shakespeare corpus: {len(corpus):,} characters")
    char = timed("train char tokenizer", lambda: tokenizers.CharTokenizer.train([corpus]))
    word = timed("train word tokenizer (10k)", lambda: tokenizers.WordTokenizer.train([corpus], max_vocab_size=10_000))
    subword = timed("train subword tokenizer (8k unigram)", lambda: tokenizers.SubwordTokenizer.train([corpus]))
    char_ids = timed("encode corpus, char", lambda: char.encode(corpus))
    word_ids = timed("encode corpus, word", lambda: word.encode(corpus))
    timed("encode corpus, subword", lambda: subword.encode(corpus))
    return Inputs(digits, images, token_records, passages, char, subword, char_ids, word_ids)


def records_pipeline(
    source: Sequence[dict], steps: Sequence[Any], batch_size: int, read: grain.ReadOptions
) -> grain.IterDataset:
    """Shuffled endless records -> each transform (random ones seeded per record) -> batches."""
    dataset = grain.MapDataset.source(source).shuffle(seed=0).repeat(None)
    for step in steps:
        is_random = isinstance(step, grain.transforms.RandomMap)
        dataset = dataset.random_map(step, seed=0) if is_random else dataset.map(step)
    return dataset.batch(batch_size, drop_remainder=True).to_iter_dataset(read)


def pipelines(inputs: Inputs, threads: int) -> dict[str, Iterable[dict]]:
    """Every pipeline, named by what it does and its batch size."""
    read = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=8)
    augment = [transforms.RandomCropFlip(), transforms.Normalize(transforms.CIFAR10_MEAN, transforms.CIFAR10_STD)]
    lm_train, _ = text.split_by_position(inputs.char_ids)

    def subword_tokens(record: dict) -> dict:
        return {"tokens": inputs.subword.encode(text.as_text(record["text"]))}

    passage_tokens = grain.MapDataset.source(inputs.passages).repeat(None).map(subword_tokens).to_iter_dataset(read)
    word2vec = dict(batch_size=1024, seed=0, subsample_threshold=1e-4, num_epochs=None)
    return {
        "digits classify (pipeline.grain_train_dataset), batch 128": pipeline.grain_train_dataset(
            inputs.digits,
            features.ClassificationFeatures("image", "label", 10),
            batch_size=128,
            data_key=jax.random.key(0),
            threads=threads,
        ),
        "synthetic 32x32x3 images, crop+flip+normalize, batch 128": records_pipeline(inputs.images, augment, 128, read),
        "the same, records held in memory": records_pipeline(
            [inputs.images[i] for i in range(len(inputs.images))], augment, 128, read
        ),
        "shakespeare char LM windows of 256, batch 64": transforms.lm_window_dataset(lm_train, 256, seed=0)
        .repeat(None)
        .batch(64)
        .to_iter_dataset(read),
        "synthetic tokens (128) masked LM, batch 64": records_pipeline(
            inputs.token_records, [transforms.MaskTokens(vocab_size=256)], 64, read
        ),
        "shakespeare passages -> char ids padded to 512, batch 64": pipeline.grain_train_dataset(
            inputs.passages,
            text.TextClassificationFeatures(inputs.char, 512),
            batch_size=64,
            data_key=jax.random.key(0),
            threads=threads,
        ),
        "shakespeare passages -> subword ids packed to 128, batch 64": transforms.pack_sequences(
            passage_tokens, 128
        ).batch(64),
        "shakespeare word2vec skip-gram pairs (window 5, 5 negatives), batch 1024": transforms.Word2VecBatches(
            inputs.word_ids, **word2vec
        ),
        "shakespeare word2vec CBOW (window 5, 5 negatives), batch 1024": transforms.Word2VecBatches(
            inputs.word_ids, mode="cbow", **word2vec
        ),
    }


def parts(inputs: Inputs) -> dict[str, Callable[[int], object]]:
    """The parts of the pipelines alone: each callable handles record `i`."""
    rng = np.random.default_rng(0)
    image = inputs.images[0]
    tokens = inputs.token_records[0]
    shuffled = grain.MapDataset.range(512).shuffle(seed=0)
    passage = inputs.passages[0]
    crop_flip, mask = transforms.RandomCropFlip(), transforms.MaskTokens(vocab_size=256)
    classify = text.TextClassificationFeatures(inputs.char, 512)
    return {
        "TFDS read, digits 8x8x1, one record per call": lambda i: inputs.digits[i % 898],
        "TFDS read, synthetic 32x32x3, one record per call": lambda i: inputs.images[i % 512],
        "Grain shuffled index (MapDataset.shuffle over 512)": lambda i: shuffled[i % 512],
        "crop+flip 32x32x3": lambda i: crop_flip.random_map(image, rng),
        "mask_tokens, 128 tokens": lambda i: mask.random_map(tokens, rng),
        "char-encode + pad to 512, one passage": lambda i: classify(passage),
    }


def measure(batches: Iterable[dict], seconds: float) -> tuple[float, float]:
    """(batches/s, records/s) over about `seconds` of iteration, after one warm-up batch."""
    iterator = iter(batches)
    next(iterator)
    count = records = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        batch = next(iterator)
        count += 1
        records += len(next(iter(batch.values())))
    return count / elapsed, records / elapsed


def calls_per_second(function: Callable[[int], object], seconds: float) -> float:
    """How many times a second `function(i)` runs, for i = 0, 1, ..."""
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for i in range(calls, calls + 100):
            function(i)
        calls += 100
    return calls / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data_dir", default="")
    args = parser.parse_args()
    inputs = prepare(sources.resolve_data_dir(args.data_dir))
    named = pipelines(inputs, args.threads)
    rates = {name: [] for name in named}
    for _ in range(args.rounds):
        for name, batches in named.items():
            rates[name].append(measure(batches, args.seconds))
    print(f"\n| pipeline ({args.threads} Grain read threads) | batches/s | records/s |\n|---|---:|---:|")
    for name, measured in rates.items():
        batches_per_second, records_per_second = np.median(measured, axis=0)
        print(f"| {name} | {batches_per_second:,.0f} | {records_per_second:,.0f} |")
    print("\n| part alone (one thread) | records/s |\n|---|---:|")
    for name, function in parts(inputs).items():
        median = np.median([calls_per_second(function, args.seconds / 2) for _ in range(args.rounds)])
        print(f"| {name} | {median:,.0f} |")


if __name__ == "__main__":
    main()
