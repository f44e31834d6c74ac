"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import yaml

from infra.killpoints import maybe_exit

# mkstemp creates 0600 files; give written files the mode open() would (read once: os.umask can
# only be read by setting it, which is not thread-safe)
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        maybe_exit(f"before_replace.{path.name}")    # tests: a kill leaves the .part file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_yaml(path: str | Path, data) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def write_npz(path: str | Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(path, buf.getvalue())


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one JSON line and flush it to disk (a torn last line is dropped by `read_jsonl`)."""
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_yaml(path: str | Path, error: type[Exception], hint: str = ""):
    """Parse a YAML file; a syntax error becomes `error` naming the file (and `hint`, what to do)."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc})" + (f"; {hint}" if hint else "")) from None


def read_jsonl(path: str | Path) -> list[dict]:
    """Records of a JSON-lines file; an incomplete last line (from a crash) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out
