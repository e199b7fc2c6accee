"""Records what `transformers` does with the tokenizer fixtures, for tests/test_pretrained_predict.py.

Run by hand (never in CI, which installs no PyTorch), from the repository root, after
benchmarks/pretrained_fixtures.py has written the fixtures, in a venv with `pip install torch==2.13.0 transformers`:

    python benchmarks/tokenizer_fixtures.py [--fixtures tests/fixtures/pretrained]

It writes `tokenizer_reference.json` next to the fixtures:

- `tokenizers`: for GPT-2's byte-level BPE (read from tokenizer.json, from vocab.json + merges.txt, and with
  add_prefix_space) and BERT's WordPiece (vocab.txt with the fixture's settings, cased, accents kept, Chinese
  characters not split), the ids `AutoTokenizer` gives each of HOSTILE_STRINGS, with and without the special
  tokens; each variant names the fixture's files it keeps and the tokenizer_config.json settings it changes;
- `fill_mask`: the fixture BertForMaskedLM's five most probable tokens (ids and probabilities) at each [MASK] of
  a few texts, with the smallest gap between a first and a second probability (a tie would make top-1 fragile);
- `greedy`: the fixture GPT2LMHeadModel's greedy continuation of a prompt, token by token, with the smallest gap
  between the best and the second-best logit along the way.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch
import transformers

HOSTILE_STRINGS = [
    "",
    "Hello, my dog is cute.",
    "HELLO, My DoG iS CuTe!!!",
    "Café naïve résumé — déjà vu, Ångström, ñandú",
    "e\u0301 (e + combining acute) vs \u00e9",
    "日本語のテキスト、中文字符和한국어",
    "emoji 🙂🐶 family 👩\u200d👩\u200d👧 flag 🇫🇷",
    "   leading and trailing   ",
    "tabs\tand\nnewlines\r\n\n\nand\u00a0non-breaking\u3000ideographic spaces",
    "zero\u200bwidth and control \x00\x07 characters",
    "xylophone quizzically zephyr antidisestablishmentarianism",
    "a" * 120,
    "numbers 3.14159 1,000,000 and 42nd",
    "punctuation!?... ;:--- (brackets) [square] {curly} 'quotes' \"double\"",
    "the [MASK] token and [mask] lower-cased and [CLS] [SEP] [PAD]",
    "<|endoftext|>after the end of text",
    "العربية من اليمين إلى اليسار",
    "हिन्दी देवनागरी",
    "To be, or not to be, that is the question:",
]

# (name, fixture, files kept, tokenizer_config.json settings changed)
VARIANTS = [
    ("gpt2", "gpt2_lm", ["tokenizer.json", "tokenizer_config.json"], {}),
    ("gpt2_vocab_files", "gpt2_lm", ["vocab.json", "merges.txt", "tokenizer_config.json"], {}),
    ("gpt2_prefix_space", "gpt2_lm", ["vocab.json", "merges.txt", "tokenizer_config.json"], {"add_prefix_space": True}),
    ("bert_uncased", "bert_mlm", ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"], {}),
    ("bert_cased", "bert_mlm", ["vocab.txt", "tokenizer_config.json"], {"do_lower_case": False}),
    ("bert_keep_accents", "bert_mlm", ["vocab.txt", "tokenizer_config.json"], {"strip_accents": False}),
    ("bert_no_chinese_split", "bert_mlm", ["vocab.txt", "tokenizer_config.json"], {"tokenize_chinese_chars": False}),
]

FILL_MASK_TEXTS = [
    "Hello, my [MASK] is cute.",
    "To be, or not to [MASK], that is the question.",
    "The quick brown [MASK] jumps over the [MASK] dog.",
]
GREEDY_PROMPT = "To be, or not to be"
GREEDY_TOKENS = 12


def variant_dir(fixtures: Path, fixture: str, files: list[str], settings: dict, into: Path) -> Path:
    """A directory with the variant's files: the fixture's, its tokenizer_config.json changed by `settings`."""
    into.mkdir()
    for name in files:
        shutil.copyfile(fixtures / fixture / name, into / name)
    config = json.loads((into / "tokenizer_config.json").read_text())
    (into / "tokenizer_config.json").write_text(json.dumps({**config, **settings}, indent=2) + "\n")
    return into


def tokenized(directory: Path) -> dict:
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    return {
        "ids": [tokenizer(text, add_special_tokens=False)["input_ids"] for text in HOSTILE_STRINGS],
        "ids_with_special_tokens": [tokenizer(text)["input_ids"] for text in HOSTILE_STRINGS],
    }


def fill_mask(directory: Path) -> list[dict]:
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    model = transformers.BertForMaskedLM.from_pretrained(directory).eval()
    rows = []
    for text in FILL_MASK_TEXTS:
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            probabilities = model(input_ids=ids).logits[0].softmax(-1)
        masks = (ids[0] == tokenizer.mask_token_id).nonzero().ravel()
        best = probabilities[masks].topk(5, dim=-1)
        rows.append(
            {
                "text": text,
                "input_ids": ids[0].tolist(),
                "top_ids": best.indices.tolist(),
                "top_probabilities": best.values.tolist(),
                "min_gap_top1_top2": float((best.values[:, 0] - best.values[:, 1]).min()),
            }
        )
    return rows


def greedy(directory: Path) -> dict:
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    model = transformers.GPT2LMHeadModel.from_pretrained(directory).eval()
    ids = tokenizer(GREEDY_PROMPT, return_tensors="pt")["input_ids"]
    prompt, gaps = ids[0].tolist(), []
    for _ in range(GREEDY_TOKENS):  # the whole sequence every step: no cache, nothing to get wrong
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, -1]
        top = logits.topk(2)
        gaps.append(float(top.values[0] - top.values[1]))
        ids = torch.cat([ids, top.indices[:1].view(1, 1)], dim=1)
    return {"prompt": GREEDY_PROMPT, "prompt_ids": prompt, "new_ids": ids[0, len(prompt) :].tolist(),
            "min_logit_gap": min(gaps)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixtures", default="tests/fixtures/pretrained", type=Path)
    fixtures = parser.parse_args().fixtures
    reference = {"strings": HOSTILE_STRINGS, "tokenizers": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for name, fixture, files, settings in VARIANTS:
            directory = variant_dir(fixtures, fixture, files, settings, Path(scratch) / name)
            reference["tokenizers"][name] = {"fixture": fixture, "files": files, "settings": settings,
                                             **tokenized(directory)}  # fmt: skip
    reference["fill_mask"] = {"fixture": "bert_mlm", "texts": fill_mask(fixtures / "bert_mlm")}
    reference["greedy"] = {"fixture": "gpt2_lm", **greedy(fixtures / "gpt2_lm")}
    out = fixtures / "tokenizer_reference.json"
    out.write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n")
    fill_gap = min(row["min_gap_top1_top2"] for row in reference["fill_mask"]["texts"])
    greedy_gap = reference["greedy"]["min_logit_gap"]
    print(f"wrote {out}: fill-mask top-1 probability gaps >= {fill_gap:.4f}, greedy logit gaps >= {greedy_gap:.4f}")


if __name__ == "__main__":
    main()
