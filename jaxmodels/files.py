"""Files and directories the user hands jaxmodels: read as data, created with errors that say how to fix them.

A workdir's JSON files (config.json, a checkpoint's saved config) may have been edited, truncated or replaced;
a directory named on the command line may be a file or unwritable. Each problem is one `JaxmodelsError` naming
the path, never a traceback. Nothing here executes what it reads.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jaxmodels.errors import JaxmodelsError


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (at most `limit` characters), for a one-line error, followed by
    a "Did you mean ...?" line if the message has one (as ml_collections' unknown-key errors do).

    The message is the text the exception was raised with: a KeyError's str() would quote it with its line
    breaks escaped ('\\n'), and an exception raised with another as its only argument (ml_collections raises
    AttributeError(KeyError(...))) shows that one's text."""
    while len(error.args) == 1 and isinstance(error.args[0], BaseException):
        error = error.args[0]
    text = error.args[0] if isinstance(error, KeyError) and len(error.args) == 1 else None
    message = text if isinstance(text, str) and "\n" in text else str(error)
    lines = [line.strip() for line in message.strip().splitlines()]
    first = (lines[0][:limit] if lines else "") or "no message"
    hint = next((line for line in lines[1:] if line.startswith("Did you mean")), "")
    return f"{first.rstrip('.')}. {hint}" if hint else first


def read_json_object(path: Path, error: type[JaxmodelsError] = JaxmodelsError) -> dict[str, Any]:
    """The JSON object stored in the file `path`; `error` naming the file if it is unreadable or not an object."""
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as problem:  # ValueError: bad JSON or bytes that are not UTF-8
        raise error(
            f"{path} is not valid JSON ({first_line(problem)}); restore it, or train into a new workdir"
        ) from None
    if not isinstance(value, dict):
        raise error(
            f"{path} holds a JSON {type(value).__name__}, not an object; restore it, or train into a new workdir"
        )
    return value


@contextlib.contextmanager
def removed_if_failed(path: Path) -> Iterator[None]:
    """Runs the body; if it raises, removes the directories of `path` (itself and its parents) that did not exist
    before it and are still empty, so a command that fails leaves no empty directory behind."""
    missing = [directory for directory in (path, *path.parents) if not directory.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for directory in missing:
            try:
                directory.rmdir()
            except OSError:  # not empty (or gone): keep it and what lies above it
                break
        raise


def workdir_path(value: str | Path, option: str = "--workdir") -> Path:
    """`value` as a workdir path; an empty one is refused (it would mean the current directory, e.g. the
    repository's root, filled with checkpoints)."""
    if not str(value).strip():
        raise JaxmodelsError(f"{option} is empty; name a directory for the run, e.g. {option} runs/cnn")
    return Path(value)


def make_writable_dir(path: Path, what: str, option: str) -> None:
    """Creates the directory `path` (and its parents) and checks that files can be written in it.

    `what` names it in the error ('workdir'); `option` is the command-line flag that chose it ('--workdir').
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # writable? (mkdir succeeds on an existing read-only dir)
            pass
    except OSError as problem:
        raise JaxmodelsError(
            f"cannot write to {what} {str(path)!r}: {problem.strerror or first_line(problem)}; "
            f"choose a writable {option}"
        ) from None
