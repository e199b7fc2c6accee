"""Quiet background threads after a failure that jaxmodels reports in one line.

A checkpoint that cannot be written (a full disk, a read-only workdir) or read (truncated files) fails inside
Orbax's and TensorStore's background threads and asyncio loops. Each of them reports the same failure again in
its own way: Orbax logs it with a traceback on every thread it touched, TensorStore's pending reads call back
into an event loop Orbax has already closed ("Event loop is closed", printed as an exception Python had to
ignore), TensorBoard's writer fails its last flush at exit. Hundreds of lines would bury the one line that says
what happened and what to do. `silence_echoes()` drops exactly those echoes (more of them once jaxmodels has
reported the failure itself); `WithoutWriteFailures` drops Orbax's log records of a failed write, which always
surfaces as a CheckpointError.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sys
import threading
from typing import Any

# What a failed write looks like: the OSError's errno, or the text of TensorStore's and Orbax's wrapped errors.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG)
WRITE_FAILURE_TEXT = ("RESOURCE_EXHAUSTED", "No space left on device", "Read-only file system", "PERMISSION_DENIED")


def write_failure_reason(error: BaseException | None) -> str | None:
    """Why a write failed ('No space left on device', 'Read-only file system', ...) if `error` (or an exception
    it was raised from) is a failed write to a full or read-only disk; else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
            return os.strerror(error.errno)
        text = str(error)
        if "RESOURCE_EXHAUSTED" in text or "No space left on device" in text:  # TensorStore's words for ENOSPC
            return os.strerror(errno.ENOSPC)
        if "Read-only file system" in text:
            return os.strerror(errno.EROFS)
        if "PERMISSION_DENIED" in text:
            return os.strerror(errno.EACCES)
        error = error.__cause__ or error.__context__
    return None


def is_write_failure(error: BaseException | None) -> bool:
    """Whether `error` (or an exception it was raised from) is a failed write to a full or read-only disk."""
    return write_failure_reason(error) is not None


class WithoutWriteFailures(logging.Filter):
    """Drops error records (with their tracebacks) of a failed write: the CheckpointError that follows says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        error = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        echoed = any(text in message for text in (*WRITE_FAILURE_TEXT, *ENDED_TEXT))
        return not (is_write_failure(error) or echoed or (_reported and any(text in str(error) for text in ENDED_TEXT)))


# Errors of Orbax's threads that were still at work when the process ended after a reported failure.
ENDED_TEXT = ("cannot schedule new futures after interpreter shutdown",)
ECHOING_LIBRARIES = ("orbax", "tensorboardX")  # whose background threads repeat a failure reported already


def _is_echo(error: BaseException | None, source: Any, thread: Any = None) -> bool:
    """An echo of a failure jaxmodels reports itself. Always: a failed write, or a TensorStore callback into an
    event loop Orbax has closed (never news). Once a failure has been reported: besides, a coroutine of an
    abandoned read or write that Python had to close, or any error of Orbax's and TensorBoard's threads."""
    if is_write_failure(error) or (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
        return True
    if not _reported:
        return False
    library = type(thread).__module__.split(".")[0] if thread is not None else ""
    ended = any(text in str(error) for text in ENDED_TEXT)
    return asyncio.iscoroutine(source) or library in ECHOING_LIBRARIES or ended


_installed = False
_reported = False


def silence_echoes(reported: bool = False) -> None:
    """Installs the hooks that drop the echoes (see `_is_echo`) which background threads and finalizers print;
    any other exception they raise is still printed. `reported`: jaxmodels has just reported a failed read or
    write of a checkpoint, so that more of what follows is its echo. Called when a checkpoint directory opens."""
    global _installed, _reported
    _reported = _reported or reported
    if _installed:
        return
    _installed = True
    unraisable, thread_hook = sys.unraisablehook, threading.excepthook

    def quiet_unraisable(report: Any) -> None:
        if not _is_echo(report.exc_value, report.object):
            unraisable(report)

    def quiet_thread(report: Any) -> None:
        if not _is_echo(report.exc_value, None, report.thread):
            thread_hook(report)

    sys.unraisablehook, threading.excepthook = quiet_unraisable, quiet_thread
