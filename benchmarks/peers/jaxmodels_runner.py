"""jaxmodels, timed through its real train step: the experiment's compiled `loop_step` fed by its own feed.

`JaxmodelsRunner` drives the step as `jaxmodels.loop` does (feed arguments per step, metric sums carried), writes
the batches its feed produces for the peers (`cases.save_batches`), and measures what only jaxmodels reports:
FLOPs per step from `compile_report` (the cost analysis behind `jm.compile`), the feed's own rate, and the time
of one checkpoint save.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from feed_vs_step import rate

import jaxmodels as jm
from jaxmodels.checkpoint import Checkpointer
from jaxmodels.compile_report import compile_report
from jaxmodels.data.feeds import ResidentFeed
from jaxmodels.experiment import build_experiment
from peers.cases import CASES, EXPERIMENTS, NUM_BATCHES, model_sizes, save_batches


class JaxmodelsRunner:
    """One case's experiment, built and compiled; `run(n)` runs n loop steps and waits for them."""

    def __init__(self, case_name: str, overrides: list[str]):
        case = CASES[case_name]
        self.config = jm.load_config(EXPERIMENTS / case.experiment, [*case.overrides, *overrides])
        self.experiment = build_experiment(self.config)
        compiling = self.experiment.compile_step_ahead()  # as the train loop: compiled while the state is created
        self.state = jax.tree.map(jnp.copy, self.experiment.initial_state)  # the loop step donates its input
        compiling.result()
        self.sums = self.experiment.strategy.put_replicated(self.experiment.zero_metrics)
        self.step = 0
        self.run(1)  # the first step (its compilation, under pmap)

    def run(self, steps: int) -> None:
        feed, loop_step = self.experiment.feed, self.experiment.loop_step
        for s in range(self.step, self.step + steps):
            self.state, self.sums = loop_step(self.state, self.sums, *feed.args_for_step(s))
            self.experiment.strategy.pace(s + 1, self.state.step)  # as the train loop: several CPU devices
        self.step += steps
        jax.block_until_ready((self.state, self.sums))

    def save_batches(self, path: Path) -> None:
        """Writes the next NUM_BATCHES batches of the run's feed for the peers (a Grain feed moves on by as many)."""
        feed = self.experiment.feed
        select = jax.jit(feed.select_batch)
        steps = range(self.step, self.step + NUM_BATCHES)
        batches = [jax.device_get(select(jnp.int32(s), *feed.args_for_step(s))) for s in steps]
        config = {**self.config.to_dict(), "model": model_sizes(self.experiment.model)}
        save_batches(path, [{k: np.asarray(v) for k, v in b.items()} for b in batches], config)

    def extras(self) -> dict[str, Any]:
        """FLOPs per step (all devices), the feed's batches/s (None when the step gathers from resident arrays)
        and the seconds of one checkpoint save of the current state, written and committed."""
        report = compile_report(self.experiment)
        feed = self.experiment.feed
        feed_rate = None if isinstance(feed, ResidentFeed) else rate(feed.args_for_step, 2.0)
        with tempfile.TemporaryDirectory() as workdir:
            checkpointer = Checkpointer.from_config(Path(workdir), self.config)
            canonical = self.experiment.strategy.canonical_state(self.state)
            start = time.perf_counter()
            checkpointer.save(self.step, canonical, None, force=True)
            checkpointer.wait()
            save_seconds = time.perf_counter() - start
            checkpointer.close()
        return {
            "flops": report["flops_per_device"] * report["devices"],
            "parameters": report["parameters"],
            "feed_batches_per_s": feed_rate,
            "checkpoint_save_s": save_seconds,
        }
