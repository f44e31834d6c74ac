"""Content fingerprints for caches and resume records.

`digest(...)` is a sha256 over arrays (dtype, shape and bytes), files (an .npz by its arrays, so
re-saving the same arrays keeps the fingerprint; a YAML file by its text less its `provenance:`
block, which says what wrote it, not what it holds; any other file by its bytes) and configs
(canonical JSON). A cached result is reused only while the fingerprint of everything it was
computed from is unchanged; paths and modification times play no part.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from infra import provenance


def digest(*parts) -> str:
    """Hex sha256 of `parts`: numpy arrays, bytes, Paths (file contents) or JSON-able values."""
    h = hashlib.sha256()
    for part in parts:
        _update(h, part)
    return h.hexdigest()


def arrays_digest(arrays: dict) -> str:
    """Digest of named arrays, as an .npz holding them (file_digest) has."""
    return digest(*[x for name in sorted(arrays) for x in (name, arrays[name])])


def file_digest(path: str | Path) -> str:
    """Digest of one file's content: an .npz by its named arrays (not the zip's timestamps), a YAML
    file without its provenance (infra.provenance.strip)."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return arrays_digest({name: z[name] for name in z.files})
    data = path.read_bytes()
    if path.suffix in (".yaml", ".yml") and f"\n{provenance.KEY}:".encode() in b"\n" + data:
        try:
            data = provenance.strip(data.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            pass
    return digest(data)


def _update(h, x) -> None:
    if isinstance(x, np.ndarray):
        h.update(f"array {x.dtype.str} {x.shape};".encode())
        h.update(np.ascontiguousarray(x).tobytes())
    elif isinstance(x, (bytes, bytearray, memoryview)):
        h.update(f"bytes {len(x)};".encode())
        h.update(x)
    elif isinstance(x, Path):
        h.update(f"file {file_digest(x)};".encode())
    else:
        text = json.dumps(x, sort_keys=True, separators=(",", ":"), default=_json_default)
        h.update(f"json {len(text)};{text}".encode())


def _json_default(x):
    if isinstance(x, np.ndarray):
        return {"array": digest(x)}
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return {"file": file_digest(x)}
    raise TypeError(f"cannot fingerprint a {type(x).__name__}")
