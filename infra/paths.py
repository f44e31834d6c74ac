"""Output paths built from file contents stay inside the folder the user named.

`inside(root, name)` is the one way to join a name read from a file (a data set field of a
sweep's tradeoff.csv, a run folder name) onto an output folder: the name is sanitised with
`inert_text.safe_name` (so `../../escape` becomes a plain file name, never a parent reference) and
the resolved result must still lie in root (a symlink planted at that name and pointing out of
root is refused with CheckpointError).
"""
from __future__ import annotations

from pathlib import Path

from infra.errors import CheckpointError
from infra.inert_text import safe_name


def inside(root: str | Path, name: str, where: str = "") -> Path:
    """root / safe_name(name); CheckpointError if that path resolves outside root.

    `where` names the file the name came from, for the message."""
    root = Path(root)
    path = root / safe_name(name)
    base = root.resolve()
    if not path.resolve().is_relative_to(base) or path.resolve() == base:
        src = f"{where}: " if where else ""
        raise CheckpointError(f"{src}output name {name!r} resolves to {path.resolve()}, outside {base}; "
                              f"remove that link or choose another --out folder")
    return path
