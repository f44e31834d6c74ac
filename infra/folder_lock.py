"""An exclusive lock on an output folder for the life of a command.

`with folder_lock(DIR, "ttfs simulate"):` takes a non-blocking `fcntl.flock` on DIR/.lock and writes
the holder's PID and command into it; a second process gets FolderInUseError ("DIR is in use by PID
1234 (ttfs simulate); ..."), so two commands never mix their files in one folder. The kernel drops
the lock when the holder dies, however it dies; a holder that ends normally removes DIR/.lock. The
same process may take a lock it holds again.

Under the lock the folder is the holder's, so the lock also cleans up after earlier kills and
failures: stale temporary files of interrupted atomic writes are removed when it is taken, in DIR
and its subfolders down to three levels except those with a .lock of their own (held, or left by a
killed holder, whose next command cleans them); and a folder the lock created is removed again on
release if it is empty (a failed command leaves no empty folder). Only the toolkit's own temporary
files are removed: their names carry its mark (`.NAME.ttfs-XXXXXXXX.part`, infra.atomic_io.PART_FILE),
so an --out that is a shared folder (a home directory) keeps every other program's `.part` files.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from infra.atomic_io import PART_FILE
from infra.errors import FolderInUseError, TtfsError

LOCK_NAME = ".lock"
_HELD: dict[str, int] = {}       # real path -> depth, for the locks this process holds
_CLEAN_DEPTH = 3                 # DEMO/report/cache is the deepest folder a command writes into


def is_temporary(name: str) -> bool:
    """A lock file or a temporary file of an atomic write: not a file of the folder's contents."""
    return name == LOCK_NAME or bool(PART_FILE.match(name))


@contextmanager
def folder_lock(folder: str | Path, command: str):
    """Hold DIR/.lock for the body (creating DIR); FolderInUseError if another process holds it."""
    folder = Path(folder)
    key = os.path.realpath(folder)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield folder
        finally:
            _HELD[key] -= 1
        return
    if folder.exists() and not folder.is_dir():
        raise TtfsError(f"{folder}: is a file, not a folder; choose another --out")
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    fd = _acquire(folder, command)
    _HELD[key] = 1
    try:
        remove_stale_parts(folder)
        yield folder
    finally:
        del _HELD[key]
        try:
            (folder / LOCK_NAME).unlink()  # still locked: a newcomer opening it now sees a removed file
            for p in created:              # innermost first; stops at the first non-empty one
                p.rmdir()
        except OSError:
            pass
        os.close(fd)


def _acquire(folder: Path, command: str) -> int:
    path = folder / LOCK_NAME
    for _ in range(10):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:      # removed by a holder releasing it just now: try again
            continue
        except OSError as exc:
            raise TtfsError(f"{folder}: cannot create {LOCK_NAME} ({exc.strerror}); choose a writable --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise FolderInUseError(f"{folder} is in use by {holder}; wait for it or choose another --out") from None
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            try:                       # who holds it, for the error others get; optional
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
            except OSError:
                pass
            return fd
        os.close(fd)                   # we locked a lock file that was removed meanwhile
    raise FolderInUseError(f"{folder}: could not take {path}; another process keeps replacing it")


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    pid, _, command = text.partition(" ")
    if not pid.isdigit():
        return "another process"
    return f"PID {pid}" + (f" ({command})" if command else "")


def remove_stale_parts(folder: Path) -> list[Path]:
    """Delete the toolkit's leftover temporary files (PART_FILE) under `folder` (not inside
    subfolders with their own lock)."""
    removed = []
    for root, dirs, files in os.walk(folder):
        depth = len(Path(root).relative_to(folder).parts)
        if depth >= _CLEAN_DEPTH:
            dirs.clear()
        if depth and LOCK_NAME in files:
            dirs.clear()
            continue
        for name in files:
            if name != LOCK_NAME and is_temporary(name):
                path = Path(root) / name
                try:
                    path.unlink()
                    removed.append(path)
                except OSError:
                    pass
    return removed
