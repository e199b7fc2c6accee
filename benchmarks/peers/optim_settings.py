"""The learning-rate schedule of a jaxmodels optimizer config, in plain Python, for the peers' optimizers.

It mirrors `jaxmodels.optim.SCHEDULES` (constant, cosine, warmup_cosine) so the peers update with the same rates;
the cost of setting a rate per step is the same in every framework and small.
"""

from __future__ import annotations

import math
from typing import Any


def learning_rate(optimizer: dict[str, Any], num_steps: int, step: int) -> float:
    """The rate at `step` of `optimizer` (a jaxmodels config's 'optimizer' section) for a run of `num_steps`."""
    peak, final = optimizer["learning_rate"], optimizer["learning_rate"] * optimizer["final_lr_fraction"]
    schedule, warmup = (
        optimizer["schedule"],
        optimizer["warmup_steps"] if optimizer["schedule"] == "warmup_cosine" else 0,
    )
    if schedule == "constant":
        return peak
    if step < warmup:
        return peak * step / warmup
    progress = min((step - warmup) / max(num_steps - warmup, 1), 1.0)
    return final + (peak - final) * 0.5 * (1 + math.cos(math.pi * progress))
