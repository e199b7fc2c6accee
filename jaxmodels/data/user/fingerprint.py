"""The fingerprint of a run's data files, kept in its workdir, so a resume on changed data is refused.

A fingerprint lists every file read (its path relative to the files' common folder, so moving the whole
dataset elsewhere keeps it), its size in bytes and a SHA-256 of its first and last 64 KiB (of all of it for
smaller files). Sizes catch added, removed and resized files; the hash catches edits that keep the size, such as
a relabelled row of a small CSV. Modification times are left out: copying a dataset changes them, not the data.
Reading 128 KiB per file costs about as much as opening it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxmodels.errors import DataError
from jaxmodels.files import read_json_object

FINGERPRINT_FILE = "data_fingerprint.json"
SAMPLE_BYTES = 64 * 2**10


def fingerprint(files: Sequence[Path], class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """{'files': [{'path', 'bytes', 'sha256'}] of `files` in their order, 'class_names': the labels' names in
    id order (for classification data), which the run keeps beside the fingerprint for its user}."""
    root = Path(os.path.commonpath([str(path.resolve().parent) for path in files]))
    entries = [
        {"path": path.resolve().relative_to(root).as_posix(), "bytes": path.stat().st_size, "sha256": _sample(path)}
        for path in files
    ]
    return {"files": entries, **({"class_names": list(class_names)} if class_names is not None else {})}


def _sample(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        digest.update(file.read(SAMPLE_BYTES))
        size = path.stat().st_size
        if size > 2 * SAMPLE_BYTES:
            file.seek(size - SAMPLE_BYTES)
        digest.update(file.read())
    return digest.hexdigest()


def keep(workdir: Path, fingerprint: dict[str, Any]) -> None:
    """Writes the fingerprint to `workdir` (once a run is accepted)."""
    (workdir / FINGERPRINT_FILE).write_text(json.dumps(fingerprint, indent=1))


def check_unchanged(workdir: Path, fingerprint: dict[str, Any]) -> None:
    """Raises a DataError naming the first difference if `workdir` keeps a fingerprint of other files."""
    path = workdir / FINGERPRINT_FILE
    if not path.is_file():
        return
    kept = {entry.get("path"): entry for entry in read_json_object(path, DataError).get("files", [])}
    now = {entry["path"]: entry for entry in fingerprint["files"]}
    changes = [f"{name} is gone" for name in kept.keys() - now.keys()]
    changes += [f"{name} is new" for name in now.keys() - kept.keys()]
    for name in kept.keys() & now.keys():
        before, after = kept[name], now[name]
        if before.get("bytes") != after["bytes"]:
            changes.append(f"{name} changed size ({before.get('bytes')} -> {after['bytes']} bytes)")
        elif before.get("sha256") != after["sha256"]:
            changes.append(f"{name} changed content")
    if changes:
        changes.sort()
        more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
        raise DataError(
            f"the data changed on disk since this run in {workdir} began: {changes[0]}{more}; resuming would train "
            "on other data. Restore the files, or train into a new --workdir"
        )
