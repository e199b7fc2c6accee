"""Preemption: SIGTERM (what schedulers and cloud VMs send before they stop a job) or Ctrl-C.

The first signal only sets a flag; the train loop looks at it after each step, saves a checkpoint at
that step, flushes its logs and raises `Preempted`, which the CLI turns into exit status 0 and a line
saying how to resume (re-run the same command). A second Ctrl-C interrupts at once.

With several processes every one must stop at the same step, for the checkpoint is written collectively.
There JAX's preemption service (started by `jax.distributed.initialize`) owns SIGTERM: a notice to any
process reaches all of them, and `multihost_utils.reached_preemption_sync_point`, asked after every step,
turns true on all of them at the same step. Ctrl-C then interrupts at once (one process cannot stop alone).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import jax
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):  # not a JaxmodelsError: the run stopped cleanly and can resume
    """Training stopped at `step` on a signal, after saving a checkpoint there."""

    def __init__(self, step: int, signal_name: str, directory: Path):
        self.step, self.signal_name, self.directory = step, signal_name, directory
        super().__init__(f"stopped by {signal_name} at step {step}; checkpoint saved in {directory}")


class PreemptionGuard:
    """Context manager turning the first SIGTERM/SIGINT into `requested = True` (handlers restored on exit).

    Outside the main thread (where Python cannot install signal handlers) it does nothing. In a
    multi-process run it installs no handler and defers to JAX's preemption sync point (`stop_at`).
    """

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, Any] = {}
        self._synced = jax.process_count() > 1

    def stop_at(self, step: int) -> bool:
        """Whether to save and stop after `step`. Ask once per step: the sync point counts on it."""
        if self._synced and multihost_utils.reached_preemption_sync_point(step):
            self.requested, self.signal_name = True, "a preemption notice (SIGTERM to a process of the run)"
        return self.requested

    def __enter__(self) -> PreemptionGuard:
        if threading.current_thread() is threading.main_thread() and not self._synced:
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait for the save
        self.requested = True
        self.signal_name = signal.Signals(signum).name
