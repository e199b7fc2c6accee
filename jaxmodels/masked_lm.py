"""Fill-mask: what a masked language model puts in place of each mask token of a text (`jaxmodels fill-mask`).

    run = jm.from_pretrained("bert-base-uncased")          # or jm.load(workdir) of an mlm run
    for predictions in jm.fill_mask(run, "Hello, my [MASK] is cute.", top_k=5):
        print([(p.token, round(p.probability, 3)) for p in predictions])

The text is encoded as the model was trained to read it (BERT: [CLS] text [SEP]), each mask token written in it
(a released BERT's "[MASK]", jaxmodels' own "<mask>") read as the mask, as `transformers`' fill-mask pipeline
does. Each mask gets its `top_k` tokens, most probable first, with their softmax probabilities over the whole
vocabulary.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from jaxmodels.data.tokenizers import Tokenizer
from jaxmodels.errors import ConfigError


class Prediction(NamedTuple):
    """One candidate for a mask: the vocabulary entry, its id, and its probability."""

    token: str
    token_id: int
    probability: float


def fill_mask(run: Any, text: str, top_k: int = 5) -> list[list[Prediction]]:
    """For each mask token of `text`, in order, the `top_k` most probable tokens of `run`'s masked-LM model.

    `run` is a `jaxmodels.Run` (of a workdir, an export or `from_pretrained`) whose task is mlm. ConfigError for
    a model without a masked-LM head, a text without a mask token, or a tokenizer that does not fit the model.
    """
    tokenizer = run.tokenizer
    if run.config.task.name != "mlm" or tokenizer is None or tokenizer.mask_id is None:
        raise ConfigError(
            f"fill-mask needs a masked language model (task mlm, e.g. an imported BertForMaskedLM); this is a "
            f"{run.config.model.name!r} model with task {run.config.task.name!r}, which has no masked-LM head"
        )
    check_tokenizer_fits(run.model, tokenizer)
    ids = tokenizer.with_special_tokens(encode_with_masks(tokenizer, text))
    positions = np.flatnonzero(ids == tokenizer.mask_id)
    if positions.size == 0:
        raise ConfigError(f"the text has no mask token; write {mask_token(tokenizer)!r} where a word should be filled")
    max_length = getattr(run.model, "max_length", None)
    if max_length is not None and len(ids) > max_length:
        raise ConfigError(f"the text is {len(ids)} tokens long; the model reads at most {max_length}: shorten it")
    if not 1 <= top_k <= tokenizer.vocab_size:
        raise ConfigError(f"--top_k must be between 1 and the vocabulary size {tokenizer.vocab_size}, got {top_k}")
    logits = run.apply(np.asarray(ids, np.int32)[None])[0, positions]
    probabilities = np.asarray(jax.device_get(jax.nn.softmax(logits.astype(np.float32), axis=-1)))
    best = np.argsort(-probabilities, axis=-1, kind="stable")[:, :top_k]
    return [
        [Prediction(tokenizer.id_to_piece(int(i)), int(i), float(row[i])) for i in order]
        for row, order in zip(probabilities, best, strict=True)
    ]


def mask_token(tokenizer: Tokenizer) -> str:
    """How the mask token is written in text: a released vocabulary's own ([MASK]), jaxmodels' <mask>."""
    return tokenizer.id_to_piece(tokenizer.mask_id)


def encode_with_masks(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """The ids of `text` with each written mask token as the mask id: the pieces between the masks are encoded
    one by one, since jaxmodels' own tokenizers read "<mask>" in text as characters (a released WordPiece
    tokenizer gives the same ids either way: it splits words at spaces and punctuation first)."""
    pieces = [tokenizer.encode(piece) for piece in text.split(mask_token(tokenizer))]
    joined = [pieces[0]]
    for piece in pieces[1:]:
        joined += [np.array([tokenizer.mask_id], np.int32), piece]
    return np.concatenate(joined).astype(np.int32)


def check_tokenizer_fits(model: Any, tokenizer: Tokenizer) -> None:
    """ConfigError when the tokenizer's vocabulary size is not the model's (`model.vocab_size`), so ids would
    index the wrong (or no) embedding rows."""
    vocab_size = getattr(model, "vocab_size", None)
    if vocab_size is not None and vocab_size != tokenizer.vocab_size:
        raise ConfigError(
            f"the tokenizer has {tokenizer.vocab_size} tokens but the model's vocabulary has {vocab_size}: they do not "
            "belong together; keep the tokenizer files that came with the model"
        )


def format_predictions(text: str, predictions: list[list[Prediction]]) -> str:
    """The lines `jaxmodels fill-mask` prints: per mask, its rank, probability and token."""
    lines = [text]
    for index, candidates in enumerate(predictions, start=1):
        lines.append(f"mask {index} of {len(predictions)}:")
        lines.extend(f"  {rank}. {p.probability:.4f}  {p.token}" for rank, p in enumerate(candidates, start=1))
    return "\n".join(lines)
