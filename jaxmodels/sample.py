"""Text generation from a trained language model: what `jaxmodels sample` runs.

GPT decodes with its KV cache; when the prompt plus the new tokens exceed its context
(`block_size`), generation continues from the last half-context of text, as nanoGPT's
`generate` crops its input. Recurrent LMs carry their state, so they have no such limit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmodels.errors import ConfigError
from jaxmodels.models.rnn import CharRNN
from jaxmodels.models.rnn import sample as sample_rnn
from jaxmodels.models.transformer import GPT, generate


def continue_tokens(
    model, params, prompt: np.ndarray, num_tokens: int, rng: jax.Array, temperature: float, top_k: int | None
) -> np.ndarray:
    """`prompt` (1-D ids) followed by `num_tokens` sampled ids."""
    tokens = jnp.asarray(prompt, jnp.int32)[None, :]
    if isinstance(model, CharRNN):
        return np.asarray(sample_rnn(model, {"params": params}, tokens, num_tokens, rng, temperature, top_k))[0]
    if not isinstance(model, GPT):
        raise ConfigError(f"`jaxmodels sample` needs a language model (gpt, char_rnn), not {type(model).__name__}")
    keep = max(model.block_size // 2, 1)
    done, chunk = 0, 0
    while done < num_tokens:
        context = tokens[:, -keep:] if tokens.shape[1] + 1 > model.block_size else tokens
        new = min(num_tokens - done, model.block_size - context.shape[1])
        out = generate(model, params, context, new, jax.random.fold_in(rng, chunk), temperature, top_k)
        tokens = jnp.concatenate([tokens, out[:, context.shape[1] :]], axis=1)
        done, chunk = done + new, chunk + 1
    return np.asarray(tokens)[0]
