"""Builds the small released-model fixtures of tests/fixtures/pretrained/ with Hugging Face `transformers` and torch.

Run by hand (never in CI, which installs no PyTorch), from the repository root, in a venv with
`pip install torch==2.13.0 transformers safetensors tokenizers` (the CPU torch wheel; `make interop` builds one):

    python benchmarks/pretrained_fixtures.py [--out tests/fixtures/pretrained]

Each fixture is a directory as `save_pretrained` writes it (`config.json` + `model.safetensors`), 2 layers of
width 64, with random weights and noise added to every norm, bias and BatchNorm statistic, so that a parameter
copied into the wrong place cannot hide behind a default of 0 or 1:

    gpt2_lm        GPT2LMHeadModel (tied output layer), with a byte-level BPE tokenizer as GPT-2 ships it
                   (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json)
    gpt2_model     GPT2Model with n_inner=96 and layer_norm_epsilon=1e-6 (hidden states out)
    gpt2_lm_fp16   gpt2_lm's weights stored as float16 (its logits are those of the rounded weights)
    bert_mlm       BertForMaskedLM with a WordPiece tokenizer (vocab.txt as bert-base-uncased numbers its specials:
                   [PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103; do_lower_case in tokenizer_config.json)
    bert_mlm_sharded  bert_mlm saved in several shards (model.safetensors.index.json)
    bert_model     BertModel (hidden states out; its pooler has no jaxmodels counterpart)
    bert_cls       BertForSequenceClassification with 3 labels
    vit_cls        ViTForImageClassification, 32x32 images, 8x8 patches, 5 labels, layer_norm_eps 1e-12
    vit_model      ViTModel (hidden states out; its pooler has no jaxmodels counterpart), 4x4 patches, bfloat16
                   weights
    resnet50_tiny  a torchvision ResNet-50 state dict (its key names, no config.json) at 1/16 of the width
                   (num_filters 4), 10 classes; built without torchvision, its logits from a functional forward

Every directory gets `reference.npz`: the inputs (`input_ids`, `attention_mask` or `pixel_values` in NCHW) and
the model's float32 output (`logits`, or `last_hidden_state`) on them; bert_mlm's also holds a masked sentence
as transformers' tokenizer encodes it and its logits. Everything together is well under 5 MB. Re-running the
script rewrites the same bytes (fixed seeds; the WordPiece vocabulary is built, not trained, since Hugging Face's
trainer breaks ties differently on every run); then re-run benchmarks/tokenizer_fixtures.py, whose references
(the token ids of test strings, fill-mask and greedy decoding) are computed from these files.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

TEXT = """\
Hello, my dog is cute. My cat is cute too, and the dog likes the cat.
To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer
the slings and arrows of outrageous fortune, or to take arms against a sea of troubles.
Now is the winter of our discontent made glorious summer by this sun of York;
and all the clouds that lour'd upon our house in the deep bosom of the ocean buried.
The quick brown fox jumps over the lazy dog. A dog is a good friend; a cat is a good friend.
Friends, Romans, countrymen, lend me your ears; I come to bury Caesar, not to praise him.
All the world's a stage, and all the men and women merely players: they have their exits and their entrances.
Shall I compare thee to a summer's day? Thou art more lovely and more temperate.
"""

NOISE = 0.1


def perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """`model` with noise added to every 1-D parameter (norm scales, biases), so none stays at its init."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 1:
                parameter.add_(NOISE * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def train_byte_level_bpe(vocab_size: int) -> Tokenizer:
    """A GPT-2-style byte-level BPE (the 256 bytes, merges, <|endoftext|>) trained on TEXT."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TEXT.splitlines(), trainer)
    return tokenizer


def write_gpt2_tokenizer(directory: Path, vocab_size: int) -> int:
    """Writes vocab.json, merges.txt, tokenizer.json and tokenizer_config.json; returns the vocabulary size."""
    tokenizer = train_byte_level_bpe(vocab_size)
    tokenizer.model.save(str(directory))  # vocab.json + merges.txt, as GPT-2 ships them
    tokenizer.save(str(directory / "tokenizer.json"))
    config = {
        "tokenizer_class": "GPT2Tokenizer",
        "model_max_length": 1024,
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "add_prefix_space": False,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return tokenizer.get_vocab_size()


def write_bert_vocab(directory: Path, vocab_size: int) -> None:
    """Writes a WordPiece vocab.txt of `vocab_size` pieces numbered as bert-base-uncased's specials, and
    tokenizer_config.json. The vocabulary is built, not trained (HF's WordPiece trainer breaks ties differently
    from run to run): after the specials, every character of TEXT both as a word start and as a "##"
    continuation, then TEXT's words by frequency (ties alphabetically), then the same as "##" continuations, up to
    `vocab_size`; other words split into pieces, and only characters TEXT lacks are [UNK]."""
    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    words = [word for word, _ in pre_tokenizers.BertPreTokenizer().pre_tokenize_str(normalizer.normalize_str(TEXT))]
    characters = sorted(set("".join(words)))
    specials = ["[PAD]", *[f"[unused{i}]" for i in range(1, 100)], "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocabulary = [*specials, *characters, *(f"##{c}" for c in characters)]
    by_frequency = sorted(set(words) - set(characters), key=lambda word: (-words.count(word), word))
    candidates = [*by_frequency, *(f"##{word}" for word in by_frequency)]  # words, then words as continuations
    vocabulary += candidates[: vocab_size - len(vocabulary)]
    assert len(vocabulary) == vocab_size, f"TEXT has too few words for a vocabulary of {vocab_size}"
    (directory / "vocab.txt").write_text("".join(f"{piece}\n" for piece in vocabulary))
    config = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": True,
        "strip_accents": None,
        "model_max_length": 512,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    specials_map = {key: config[key] for key in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")}
    (directory / "special_tokens_map.json").write_text(json.dumps(specials_map, indent=2) + "\n")


def save_reference(directory: Path, **arrays: np.ndarray) -> None:
    np.savez_compressed(directory / "reference.npz", **arrays)


def text_inputs(vocab_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two rows of 12 token ids; the second padded after 8 tokens (attention_mask 0)."""
    ids = torch.randint(0, vocab_size, (2, 12), generator=generator)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 8:] = 0
    return ids, mask


def build_gpt2(out: Path) -> None:
    lm_dir = out / "gpt2_lm"
    lm_dir.mkdir(parents=True)
    vocab_size = write_gpt2_tokenizer(lm_dir, 320)
    torch.manual_seed(0)
    special = {"bos_token_id": 0, "eos_token_id": 0}  # <|endoftext|>, the BPE trainer's first token
    config = transformers.GPT2Config(vocab_size=vocab_size, n_positions=32, n_embd=64, n_layer=2, n_head=4, **special)
    model = perturbed(transformers.GPT2LMHeadModel(config), seed=1)
    model.save_pretrained(lm_dir)
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(0, vocab_size, (2, 12), generator=generator)
    with torch.no_grad():
        save_reference(lm_dir, input_ids=ids.numpy(), logits=model(ids).logits.numpy())

    fp16_dir = out / "gpt2_lm_fp16"
    model.half().float()  # round the weights to float16: the reference logits are those of the stored weights
    model.half().save_pretrained(fp16_dir)
    model.float()
    for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(lm_dir / name, fp16_dir / name)
    with torch.no_grad():
        save_reference(fp16_dir, input_ids=ids.numpy(), logits=model(ids).logits.numpy())

    torch.manual_seed(3)
    config = transformers.GPT2Config(
        vocab_size=vocab_size,
        n_positions=24,
        n_embd=64,
        n_layer=2,
        n_head=2,
        n_inner=96,
        layer_norm_epsilon=1e-6,
        **special,
    )
    model = perturbed(transformers.GPT2Model(config), seed=4)
    model_dir = out / "gpt2_model"
    model.save_pretrained(model_dir)
    with torch.no_grad():
        save_reference(model_dir, input_ids=ids.numpy(), last_hidden_state=model(ids).last_hidden_state.numpy())


def bert_config(vocab_size: int, **overrides: object) -> transformers.BertConfig:
    sizes = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
    return transformers.BertConfig(vocab_size=vocab_size, max_position_embeddings=32, **{**sizes, **overrides})


def build_bert(out: Path) -> None:
    mlm_dir = out / "bert_mlm"
    mlm_dir.mkdir(parents=True)
    vocab_size = 304
    write_bert_vocab(mlm_dir, vocab_size)
    tokenizer = transformers.AutoTokenizer.from_pretrained(mlm_dir)
    generator = torch.Generator().manual_seed(5)
    ids, mask = text_inputs(vocab_size, generator)
    # A masked sentence, as fill-mask sees it: [CLS] hello , my [MASK] is cute . [SEP]
    masked = tokenizer("Hello, my [MASK] is cute.", return_tensors="pt")

    torch.manual_seed(6)
    model = perturbed(transformers.BertForMaskedLM(bert_config(vocab_size)), seed=7)
    model.save_pretrained(mlm_dir)
    model.save_pretrained(out / "bert_mlm_sharded", max_shard_size="100KB")
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.numpy()
        masked_logits = model(**masked).logits.numpy()
    for directory in (mlm_dir, out / "bert_mlm_sharded"):
        save_reference(
            directory,
            input_ids=ids.numpy(),
            attention_mask=mask.numpy(),
            logits=logits,
            masked_input_ids=masked["input_ids"].numpy(),
            masked_logits=masked_logits,
        )

    torch.manual_seed(8)
    model = perturbed(transformers.BertModel(bert_config(vocab_size, type_vocab_size=3, layer_norm_eps=1e-7)), seed=9)
    model.save_pretrained(out / "bert_model")
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    save_reference(out / "bert_model", input_ids=ids.numpy(), attention_mask=mask.numpy(), last_hidden_state=hidden)

    torch.manual_seed(10)
    config = bert_config(vocab_size, num_labels=3, num_hidden_layers=3, intermediate_size=80)
    model = perturbed(transformers.BertForSequenceClassification(config), seed=11)
    model.save_pretrained(out / "bert_cls")
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.numpy()
    save_reference(out / "bert_cls", input_ids=ids.numpy(), attention_mask=mask.numpy(), logits=logits)
    for directory in (out / "bert_mlm_sharded", out / "bert_model", out / "bert_cls"):
        for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copyfile(mlm_dir / name, directory / name)


def vit_config(**overrides: object) -> transformers.ViTConfig:
    sizes = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
    return transformers.ViTConfig(image_size=32, num_channels=3, layer_norm_eps=1e-12, **{**sizes, **overrides})


def build_vit(out: Path) -> None:
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(12))
    torch.manual_seed(13)
    model = perturbed(transformers.ViTForImageClassification(vit_config(patch_size=8, num_labels=5)), seed=14)
    model.save_pretrained(out / "vit_cls")
    with torch.no_grad():
        save_reference(out / "vit_cls", pixel_values=pixels.numpy(), logits=model(pixels).logits.numpy())

    torch.manual_seed(15)
    model = perturbed(transformers.ViTModel(vit_config(patch_size=4, num_attention_heads=2)), seed=16)
    model.to(torch.bfloat16).float()  # the reference is that of the bfloat16 weights it is stored with
    model.to(torch.bfloat16).save_pretrained(out / "vit_model")
    model.float()
    with torch.no_grad():
        hidden = model(pixels).last_hidden_state.numpy()
    save_reference(out / "vit_model", pixel_values=pixels.numpy(), last_hidden_state=hidden)


# torchvision's ResNet-50: blocks per stage, and its key names (conv1/bn1 stem, layerN.K.convM/bnM, downsample.0/1).
RESNET50_STAGES = (3, 4, 6, 3)


def resnet_state_dict(width: int, num_classes: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random weights in torchvision's `resnet50(num_classes=...)` layout with `width` stem channels (64 there);
    BatchNorm scales, biases and running statistics all away from their init."""
    state: dict[str, torch.Tensor] = {}

    def conv(name: str, out_channels: int, in_channels: int, size: int) -> None:
        fan_in = in_channels * size * size
        state[f"{name}.weight"] = torch.randn(out_channels, in_channels, size, size, generator=generator) / fan_in**0.5

    def bn(name: str, channels: int) -> None:
        state[f"{name}.weight"] = 1 + NOISE * torch.randn(channels, generator=generator)
        state[f"{name}.bias"] = NOISE * torch.randn(channels, generator=generator)
        state[f"{name}.running_mean"] = NOISE * torch.randn(channels, generator=generator)
        state[f"{name}.running_var"] = 1 + NOISE * torch.rand(channels, generator=generator)
        state[f"{name}.num_batches_tracked"] = torch.tensor(100, dtype=torch.long)

    conv("conv1", width, 3, 7)
    bn("bn1", width)
    in_channels = width
    for stage, num_blocks in enumerate(RESNET50_STAGES):
        filters = width * 2**stage
        for block in range(num_blocks):
            prefix = f"layer{stage + 1}.{block}"
            conv(f"{prefix}.conv1", filters, in_channels, 1)
            bn(f"{prefix}.bn1", filters)
            conv(f"{prefix}.conv2", filters, filters, 3)
            bn(f"{prefix}.bn2", filters)
            conv(f"{prefix}.conv3", 4 * filters, filters, 1)
            bn(f"{prefix}.bn3", 4 * filters)
            if block == 0:
                conv(f"{prefix}.downsample.0", 4 * filters, in_channels, 1)
                bn(f"{prefix}.downsample.1", 4 * filters)
            in_channels = 4 * filters
    state["fc.weight"] = torch.randn(num_classes, in_channels, generator=generator) / in_channels**0.5
    state["fc.bias"] = NOISE * torch.randn(num_classes, generator=generator)
    return state


def resnet_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """torchvision's ResNet-50 forward pass (eval mode, stride on the 3x3 convolution) on a state dict."""

    def bn(name: str, h: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            h, state[f"{name}.running_mean"], state[f"{name}.running_var"], state[f"{name}.weight"],
            state[f"{name}.bias"], training=False, eps=1e-5,
        )  # fmt: skip

    h = F.relu(bn("bn1", F.conv2d(x, state["conv1.weight"], stride=2, padding=3)))
    h = F.max_pool2d(h, 3, stride=2, padding=1)
    for stage, num_blocks in enumerate(RESNET50_STAGES):
        for block in range(num_blocks):
            prefix = f"layer{stage + 1}.{block}"
            stride = 2 if stage > 0 and block == 0 else 1
            out = F.relu(bn(f"{prefix}.bn1", F.conv2d(h, state[f"{prefix}.conv1.weight"])))
            out = F.relu(bn(f"{prefix}.bn2", F.conv2d(out, state[f"{prefix}.conv2.weight"], stride=stride, padding=1)))
            out = bn(f"{prefix}.bn3", F.conv2d(out, state[f"{prefix}.conv3.weight"]))
            if block == 0:
                h = bn(f"{prefix}.downsample.1", F.conv2d(h, state[f"{prefix}.downsample.0.weight"], stride=stride))
            h = F.relu(out + h)
    return F.linear(h.mean(dim=(2, 3)), state["fc.weight"], state["fc.bias"])


def build_resnet(out: Path) -> None:
    generator = torch.Generator().manual_seed(17)
    state = resnet_state_dict(width=4, num_classes=10, generator=generator)
    directory = out / "resnet50_tiny"
    directory.mkdir(parents=True)
    save_file(state, directory / "model.safetensors")
    pixels = torch.randn(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        save_reference(directory, pixel_values=pixels.numpy(), logits=resnet_forward(state, pixels).numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/pretrained"))
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    torch.set_num_threads(1)
    for build in (build_gpt2, build_bert, build_vit, build_resnet):
        build(args.out)
    total = sum(path.stat().st_size for path in args.out.rglob("*") if path.is_file())
    print(f"wrote {args.out}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
