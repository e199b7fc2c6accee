"""Preemption: SIGTERM (what schedulers and cloud VMs send before they stop a job) or Ctrl-C.

The first signal only sets a flag; the train loop looks at it after each step, saves a checkpoint at
that step, flushes its logs and raises `Preempted`, which the CLI turns into exit status 0 and a line
saying how to resume (re-run the same command). A second Ctrl-C interrupts at once.

With several processes every one must stop at the same step, for the checkpoint is written collectively.
Each process catches its own signals, and every `AGREE_EVERY` steps all of them gather their flags (one
tiny collective, at the same steps everywhere): if any process was signalled, all stop at that step.
JAX's own preemption sync point is not used (`disable_jax_preemption_service`): Orbax asks it too, with
the step of a checkpoint it finalises in the background, and such an out-of-order call can move the sync
point behind a process that has already passed it, which then trains on while the others save (a hang).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)
AGREE_EVERY = 10  # steps between the processes' agreements on stopping (a host sync each, multi-process only)


class Preempted(Exception):  # not a JaxmodelsError: the run stopped cleanly and can resume
    """Training stopped at `step` on a signal, after saving a checkpoint there; with `saved=False`, before its
    first step, when there was nothing new to save (step 0, or the checkpoint it resumed from)."""

    def __init__(self, step: int, signal_name: str, directory: Path, saved: bool = True):
        self.step, self.signal_name, self.directory = step, signal_name, directory
        if saved:
            message = f"stopped by {signal_name} at step {step}; checkpoint saved in {directory}"
        elif step:
            message = f"stopped by {signal_name} at step {step}, before training on; its checkpoint is in {directory}"
        else:
            message = f"stopped by {signal_name} before the first step; nothing to save"
        super().__init__(message)


def disable_jax_preemption_service() -> None:
    """Keeps `jax.distributed.initialize` from starting JAX's preemption service (see the module docstring)."""
    import jax

    jax.config.update("jax_enable_preemption_service", False)


class PreemptionGuard:
    """Context manager turning the first SIGTERM/SIGINT into `requested = True` (handlers restored on exit).

    Outside the main thread (where Python cannot install signal handlers) it does nothing. In a
    multi-process run `stop_at` answers for all processes at once, every `AGREE_EVERY` steps.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, Any] = {}

    def stop_at(self, step: int, *, agree_now: bool = False) -> bool:
        """Whether to save and stop after `step`; the same answer on every process of the run (which agree at
        every `AGREE_EVERY` steps, or now with `agree_now`). Entered before the run is built, since a signal
        may come while data loads and the step compiles; the processes are counted only here, once JAX's
        distributed runtime is up."""
        import jax  # here: the CLI enters a guard before it loads JAX, so that no signal is missed meanwhile
        import numpy as np
        from jax.experimental import multihost_utils

        if jax.process_count() == 1:
            return self.requested
        if step % AGREE_EVERY and not agree_now:
            return False
        anyone = bool(np.any(multihost_utils.process_allgather(np.int32(self.requested))))
        if anyone and not self.requested:
            self.requested, self.signal_name = True, "a signal to another process of the run"
        return anyone

    def __enter__(self) -> PreemptionGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
                enclosing = getattr(self._previous[sig], "__self__", None)
                if isinstance(enclosing, PreemptionGuard) and enclosing.requested:  # a signal before this guard
                    self.requested, self.signal_name = True, enclosing.signal_name
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
