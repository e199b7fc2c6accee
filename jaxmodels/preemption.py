"""Preemption: SIGTERM (what schedulers and cloud VMs send before they stop a job) or Ctrl-C.

The first signal only sets a flag; the train loop looks at it after each step, saves a checkpoint at
that step, flushes its logs and raises `Preempted`, which the CLI turns into exit status 0 and a line
saying how to resume (re-run the same command). A second Ctrl-C interrupts at once.

Single process only for now: on several hosts every process must stop at the same step, which needs
JAX's preemption sync point (`jax.distributed` with the preemption service); that comes with parallel.py.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):  # not a JaxmodelsError: the run stopped cleanly and can resume
    """Training stopped at `step` on a signal, after saving a checkpoint there."""

    def __init__(self, step: int, signal_name: str, directory: Path):
        self.step, self.signal_name, self.directory = step, signal_name, directory
        super().__init__(f"stopped by {signal_name} at step {step}; checkpoint saved in {directory}")


class PreemptionGuard:
    """Context manager turning the first SIGTERM/SIGINT into `requested = True` (handlers restored on exit).

    Outside the main thread (where Python cannot install signal handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> PreemptionGuard:
        if threading.current_thread() is threading.main_thread():
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
