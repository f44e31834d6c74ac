"""Output paths built from file contents stay inside the folder the user named.

`inside(root, name)` is the one way to join a name read from a file (a data set field of a
sweep's tradeoff.csv, a run folder name) onto an output folder: the name is sanitised with
`inert_text.safe_name` (so `../../escape` becomes a plain file name, never a parent reference) and
the resolved result must still lie in root (a symlink planted at that name and pointing out of
root is refused with CheckpointError).

`within(root, name)` is its reading counterpart: the one way to join a folder name read from a file
(the run column of tradeoff.csv) onto the folder it must lie in. Nothing is sanitised there, since
a name changed on the way would read another folder: a name that is not a plain name of a direct
subfolder, or that resolves outside root, is refused with CheckpointError.
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


def within(root: str | Path, name: str, where: str = "", fix: str = "") -> Path:
    """root / name when name is a plain name of a direct subfolder of root, else CheckpointError.

    Plain: not empty, no path separator, not `.` or `..`, not absolute, and root / name resolves
    to a direct child of root (a symlink out of root is refused). `where` names the file (and row)
    the name came from and `fix` how to repair it, for the message."""
    root = Path(root)
    base = root.resolve()
    plain = (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
             and "\0" not in name and not Path(name).is_absolute())
    if plain:
        path = root / name
        try:
            if path.resolve().parent == base:
                return path
        except (OSError, RuntimeError):     # a symlink loop
            pass
    src = f"{where}: " if where else ""
    raise CheckpointError(f"{src}{name!r} is not the name of a folder directly inside {base}"
                          f"{'; ' + fix if fix else ''}")
