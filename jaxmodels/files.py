"""Files and directories the user hands jaxmodels: read as data, created with errors that say how to fix them.

A workdir's JSON files (config.json, a checkpoint's saved config) may have been edited, truncated or replaced;
a directory named on the command line may be a file or unwritable. Each problem is one `JaxmodelsError` naming
the path, never a traceback. Nothing here executes what it reads.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from jaxmodels.errors import JaxmodelsError


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (at most `limit` characters), for a one-line error."""
    lines = str(error).strip().splitlines()
    return (lines[0][:limit] if lines else "") or "no message"


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
