"""A folder of generated files kept in step with what a build produces: unchanged files keep their time stamps
(so Sphinx re-reads only what changed) and files no longer produced are removed."""

from __future__ import annotations

from pathlib import Path


def sync(folder: Path, files: dict[str, str | bytes]) -> None:
    """Makes `folder` hold exactly `files` (relative path -> text or bytes)."""
    for relative, content in files.items():
        path = folder / relative
        data = content.encode() if isinstance(content, str) else content
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    for path in sorted(folder.rglob("*"), reverse=True):  # deepest first, so emptied folders go too
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative not in files:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def markdown_table(text: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table in `text`, each a dict from column header to cell text."""
    lines = iter(text.splitlines())
    table: list[list[str]] = []
    for line in lines:
        if line.startswith("|"):
            table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif table:
            break
    header, _separator, *rows = table
    return [dict(zip(header, row, strict=True)) for row in rows]
