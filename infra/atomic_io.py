"""Atomic file writes (a crash leaves either the old file or the new one, never half of one), and
readers that turn a corrupt, truncated or non-UTF-8 file into one error naming it."""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import yaml

from infra.errors import CheckpointError, ConfigError
from infra.killpoints import maybe_exit

# mkstemp creates 0600 files; give written files the mode open() would (read once: os.umask can
# only be read by setting it, which is not thread-safe)
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


# The temporary file of an atomic write of NAME: `.NAME.ttfs-XXXXXXXX.part` (XXXXXXXX: mkstemp's
# random part). The `ttfs-` mark tells the toolkit's own leftovers from another program's
# (infra.folder_lock removes only these).
_PART_MARK = "ttfs-"
PART_FILE = re.compile(rf"^\..+\.{_PART_MARK}[A-Za-z0-9_]{{8}}\.part$")


def write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_PART_MARK}", suffix=".part")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        maybe_exit(f"before_replace.{path.name}")    # tests: a kill leaves the .part file
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:   # write()/fsync() errors name no file
            exc.filename = str(path)
        raise


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_yaml(path: str | Path, data) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def write_npz(path: str | Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(path, buf.getvalue())


def write_csv(path: str | Path, rows: list[dict], fields: list[str] | None = None) -> None:
    """A CSV table with a header: one line per row (LF line ends); columns `fields` (default:
    every key of the rows, in order of first appearance), a key a row lacks left empty, a key not
    in `fields` a ValueError (nothing is written)."""
    if fields is None:
        fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def csv_number(cell) -> float:
    """A table cell as a number: a CSV field (str), a number or None; NaN where it holds none
    (empty, None, not a number), so a missing figure draws and sorts as absent."""
    try:
        return float(cell)
    except (TypeError, ValueError):
        return float("nan")


def save_png(fig, path: str | Path, **savefig_kwargs) -> Path:
    """Render a matplotlib figure to PNG in memory, then write it atomically: a figure that fails
    to render leaves no file (nor a partial one) at `path`. Keyword arguments go to fig.savefig."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **savefig_kwargs)
    write_bytes(path, buf.getvalue())
    return Path(path)


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one JSON line and flush it to disk (a torn last line is dropped by `read_jsonl`)."""
    try:
        with open(path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:          # write()/fsync() errors name no file
        exc.filename = str(path) if exc.filename is None else exc.filename
        raise


def _read_utf8(path: str | Path, error: type[Exception], fix: str) -> str:
    """The text of `path`; non-UTF-8 bytes are `error` naming the file and the first bad byte."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}); the file is corrupt{fix}") from None


def read_yaml(path: str | Path, error: type[Exception], hint: str = ""):
    """Parse a YAML file; a syntax error or non-UTF-8 text becomes `error` naming the file (and `hint`)."""
    fix = f"; {hint}" if hint else ""
    text = _read_utf8(path, error, fix)
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError: a well-formed scalar yaml cannot build, e.g. the date 2020-13-45
        raise error(f"{path}: not valid YAML ({_one_line(exc)}){fix}") from None


def read_json(path: str | Path, error: type[Exception], hint: str = ""):
    """Parse a JSON file; malformed or non-UTF-8 content becomes `error` naming the file (and `hint`)."""
    fix = f"; {hint}" if hint else ""
    text = _read_utf8(path, error, fix)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise error(f"{path}: not valid JSON ({_one_line(exc)}){fix}") from None


def read_npz(path: str | Path, error: type[Exception], hint: str = "") -> dict[str, np.ndarray]:
    """Every array of an .npz archive as float64 (no pickles); a file that is not such an archive,
    is truncated, or holds a non-numeric array becomes `error` naming the file (and `hint`)."""
    fix = f"; {hint}" if hint else ""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except AttributeError:          # np.load returned a bare .npy array, which has no `with`
        raise error(f"{path}: a single .npy array, not an .npz archive{fix}") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, MemoryError,
            UnicodeDecodeError) as exc:
        raise error(f"{path}: not a readable .npz archive, truncated or corrupt "
                    f"({type(exc).__name__}: {_one_line(exc)}){fix}") from None
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
            what = a.dtype if isinstance(a, np.ndarray) else "not an array"
            raise error(f"{path}: {name} is {what}, expected numbers; the file is corrupt{fix}")
    return {k: a.astype(np.float64) for k, a in arrays.items()}


# The fix for a damaged line of a JSON-lines file (results.jsonl, metrics.jsonl).
DAMAGED_LINE = "the file is damaged: delete that line (or the file) and rerun"


def check_fields(record, fields: dict, where: str, error: type[Exception], hint: str = DAMAGED_LINE) -> None:
    """`record` is a mapping holding each key of `fields` with a value of its type(s); `int` never
    accepts a bool, `float` accepts any real number. Else `error` naming `where`, the key and `hint`."""
    fix = f"; {hint}" if hint else ""
    if not isinstance(record, dict):
        raise error(f"{where}: expected a record of keys, got {type(record).__name__}{fix}")
    for key, tp in fields.items():
        types = tp if isinstance(tp, tuple) else (tp,)
        value = record.get(key)
        ok = any(isinstance(value, int) and not isinstance(value, bool) if t is int else
                 isinstance(value, (int, float)) and not isinstance(value, bool) if t is float else
                 isinstance(value, t) for t in types)
        if not ok:
            names = " or ".join(t.__name__ for t in types)
            raise error(f"{where}: {key!r} should be {names}, got {value!r:.60}{fix}")


def read_jsonl(path: str | Path, error: type[Exception] = CheckpointError, fields: dict | None = None) -> list[dict]:
    """Records of a JSON-lines file (none if it does not exist). An incomplete last line with no
    newline (a crash mid-append) is dropped; any other line that is not a JSON object (with
    `fields`, see `check_fields`) is `error` naming the file and line: the file is damaged."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")[:-1]     # the last piece is b"" or the torn line
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}: line {n}"
        try:
            record = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError) as exc:   # UnicodeDecodeError is a ValueError
            raise error(f"{where} is not a JSON record ({_one_line(exc)}); {DAMAGED_LINE}") from None
        check_fields(record, fields or {}, where, error)
        out.append(record)
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def prepare_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """Check, before any work, that `path` can be made or used as an output folder: it is a folder
    or does not exist, and its nearest existing ancestor is a writable folder. Creates nothing, so
    a command that fails later leaves no empty folder; the writers make it when they first write."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: is a file, not a folder; name a folder (new or existing)")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{flag} {path}: {probe} is a file, not a folder; choose a path under a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: {probe} is not writable (read-only file system or no "
                          "permission); choose a folder you can write to")
    return path


def prepare_out_file(path: str | Path) -> Path:
    """Check, before any work, that `path` can be written as a file: it is not a folder and no file
    stands where a folder on the way to it must be. Raises the OSError writing it would raise (the
    command line words it in one line, as for any write); missing folders on the way are made when
    the file is written, as by every writer here. Creates nothing."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    probe = path.parent
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    return path
