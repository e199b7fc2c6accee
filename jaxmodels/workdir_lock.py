"""One training process per workdir: `<workdir>/train.lock`, held for the whole run.

Two `jaxmodels train` on one workdir (two terminals, a scheduler's retry, a sweep worker beside a manual run)
would both save checkpoints and both append to metrics.jsonl. The first to start holds the lock; the second
refuses in one line naming the holder (host, PID, since when). The lock is two things at once:

- an exclusive `fcntl.flock` on the file, which the kernel releases when the holder dies, kill -9 included:
  on one host a dead holder is noticed at once and its lock taken over (with a warning line);
- a lease in the file's content (host, PID, start, last beat), refreshed every `BEAT_SECONDS` by a background
  thread: on a shared filesystem whose locks other hosts do not see, a lease naming another host is honoured
  while it beats, and taken over once it has missed `STALE_BEATS` beats (a lost node). On a filesystem that
  has no locks at all, the lease alone decides, on one host too (a lease whose PID still runs is honoured).

Only process 0 of a multi-host run takes the lock, for all of them; the others learn from it whether it did.
`eval`, `export`, `sample`, `explain` and `compare` take no lock: they read complete checkpoints only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxmodels.errors import JaxmodelsError

LOCK_FILE = "train.lock"
BEAT_SECONDS = 10.0  # how often the holder refreshes its lease
STALE_BEATS = 6  # a lease from another host silent for this many beats belongs to a lost node


class WorkdirBusy(JaxmodelsError):
    """Another live training process holds the workdir."""


def _holder_text(holder: dict[str, Any]) -> str:
    since = holder.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if isinstance(since, int | float) else "?"
    return f"host {holder.get('host', '?')}, PID {holder.get('pid', '?')}, since {when}"


def _read_holder(path: Path) -> dict[str, Any]:
    """The lease in the lock file; {} if it is empty or unreadable (a holder between truncate and write)."""
    for _ in range(3):
        try:
            holder = json.loads(path.read_bytes() or b"{}")
        except (OSError, ValueError):
            holder = None
        if isinstance(holder, dict):
            return holder
        time.sleep(0.05)
    return {}


def _running(pid: Any) -> bool:
    """Whether a process `pid` runs on this host (another than this one)."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _write_lease(fd: int, lease: dict[str, Any]) -> None:
    data = json.dumps(lease).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


class WorkdirLock:
    """The exclusive lock of one workdir (see the module docstring); `acquire`, then `release`."""

    def __init__(self, workdir: Path, warn: Callable[[str], None]):
        self.path = Path(workdir) / LOCK_FILE
        self._warn = warn
        self._fd: int | None = None
        self._lease: dict[str, Any] = {}
        self._stop = threading.Event()
        self._beating: threading.Thread | None = None

    def acquire(self) -> None:
        """Takes the lock, or raises WorkdirBusy naming the live holder."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._refuse(_read_holder(self.path))
            except OSError:  # a filesystem without locks (some FUSE mounts): the lease alone decides
                pass
            # A holder that released between our open and flock may have removed the file: lock the one in place.
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
            os.close(fd)
        try:
            self._take_over_or_refuse(_read_holder(self.path))
            now = time.time()
            self._lease = {"host": socket.gethostname(), "pid": os.getpid(), "since": now, "beat": now}
            _write_lease(fd, self._lease)
        except OSError as error:  # a full disk, or a workdir gone read-only: leave it as it was
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(fd)
            raise JaxmodelsError(
                f"cannot write {self.path} ({error.strerror or error}); nothing was changed. Free disk space (or "
                "make the workdir writable) and run the same command again"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._beating = threading.Thread(target=self._beat, name="jaxmodels-workdir-lease", daemon=True)
        self._beating.start()

    def _take_over_or_refuse(self, holder: dict[str, Any]) -> None:
        """After flock succeeded: a lease left in the file is a dead holder's, unless it still beats and its holder
        lives: on another host (whose flock is invisible here when the filesystem does not share locks between
        hosts), or on this one under a PID that is still running."""
        if not holder:
            return
        beat = holder.get("beat")
        silent = time.time() - beat if isinstance(beat, int | float) else float("inf")
        elsewhere = holder.get("host") != socket.gethostname()
        if silent < BEAT_SECONDS * STALE_BEATS and (elsewhere or _running(holder.get("pid"))):
            self._refuse(holder)
        why = f"silent for {silent:.0f} s" if elsewhere else "no longer running"
        self._warn(
            f"warning: took over the lock of {self.path.parent} from a training process that is {why} "
            f"({_holder_text(holder)})"
        )

    def _refuse(self, holder: dict[str, Any]) -> None:
        who = _holder_text(holder) if holder else "details unreadable"
        raise WorkdirBusy(
            f"workdir {str(self.path.parent)!r} is in use by another training process ({who}); wait for it to "
            f"finish or stop it, or train into another --workdir (a holder that died is taken over by the next run)"
        )

    def _beat(self) -> None:
        """Refreshes the lease; stops (with a warning) if another process took it over, e.g. after this one
        stalled longer than `STALE_BEATS` beats. An empty file is another process writing its lease this very
        moment: looked at again at the next beat (and overwritten if still empty then)."""
        empty_before = False
        while not self._stop.wait(BEAT_SECONDS):
            holder = _read_holder(self.path)
            if holder and not self._is_ours(holder):
                self._warn(
                    f"warning: the lock of {self.path.parent} was taken over by another process "
                    f"({_holder_text(holder)})"
                )
                return
            if holder or empty_before:
                self._lease["beat"] = time.time()
                with contextlib.suppress(OSError):  # a full disk must not end the run; the next beat tries again
                    _write_lease(self._fd, self._lease)
            empty_before = not holder

    def _is_ours(self, holder: dict[str, Any]) -> bool:
        return all(holder.get(key) == self._lease[key] for key in ("host", "pid", "since"))

    def release(self) -> None:
        """Stops beating and removes the lock file (while still holding it, so nobody locks a removed file)."""
        if self._fd is None:
            return
        self._stop.set()
        self._beating.join()
        holder = _read_holder(self.path)
        if not holder or self._is_ours(holder):  # a lease taken over by another process stays
            with contextlib.suppress(OSError):
                self.path.unlink()
        os.close(self._fd)
        self._fd = None


@contextlib.contextmanager
def workdir_locked(workdir: Path, warn: Callable[[str], None]) -> Iterator[None]:
    """Holds `workdir`'s lock around the body: process 0 takes it for every process of the run, and all of them
    raise WorkdirBusy if it could not."""
    lock = WorkdirLock(workdir, warn)
    refusal: WorkdirBusy | None = None
    if jax.process_index() == 0:
        try:
            lock.acquire()
        except WorkdirBusy as busy:
            refusal = busy
    if jax.process_count() > 1:
        refused = bool(np.any(multihost_utils.process_allgather(np.int32(refusal is not None))))
        if refused and refusal is None:
            refusal = WorkdirBusy(f"workdir {str(workdir)!r} is in use by another training process (see process 0)")
    if refusal is not None:
        raise refusal
    try:
        yield
    finally:
        lock.release()
