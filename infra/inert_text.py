"""Text from files made inert before it reaches a netlist or names an output file.

A design folder, run folder or sweep table is shared between users, so any string read from one
(a design's `source_run`, a data set name, a folder path) is hostile until it passes here:

- `comment_text`: one line of printable ASCII, for a `* ...` netlist comment. Anything else
  (newline, CR, NUL, non-ASCII such as U+2028 or U+0085, which Python's and PySpice's
  `splitlines` treat as line breaks) and the backslash are written as `\\xNN` / `\\uNNNN`
  escapes, so the text can never start a netlist line (`.control`, `.include`, `shell`).
- `comment_line`: the whole comment line, `* TEXT\\n`. The space after the star matters: ngspice
  executes a comment line that starts with `*#` as a control command.
- `safe_name`: a name of the characters [A-Za-z0-9_.-] only (others become `_`), never starting
  with a dot (so never `..`), for file names and tags built from file contents.
- `number_text`: a finite number as SPICE text; NaN or inf raises SimulationError naming the
  quantity, so no `nan`/`inf` token lands in a netlist.
"""
from __future__ import annotations

import math
import re

from infra.errors import SimulationError

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
NAME_MAX = 100          # characters of a safe_name (well below the file-name limit of 255 bytes)


def comment_text(s) -> str:
    """`s` (any object, as str) as one line of printable ASCII without backslashes; the rest escaped."""
    text = str(s)
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0x20 <= code <= 0x7E and ch != "\\":
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def comment_line(s) -> str:
    """The netlist comment line `* TEXT\\n` of `s` (see comment_text)."""
    return f"* {comment_text(s)}\n"


def safe_name(s) -> str:
    """`s` mapped onto [A-Za-z0-9_.-] (other characters become `_`, leading dots too), at most
    NAME_MAX characters; never empty, `.` or `..`, never holding a path separator."""
    name = _NAME_CHARS.sub("_", str(s))[:NAME_MAX]
    stripped = name.lstrip(".")
    name = "_" * (len(name) - len(stripped)) + stripped
    return name or "_"


def number_text(x, what: str) -> str:
    """`x` as SPICE number text (9 significant digits); SimulationError naming `what` if not finite."""
    v = float(x)
    if not math.isfinite(v):
        raise SimulationError(f"{what} is {v}; a netlist needs finite numbers (check the design folder's "
                              "design.yaml and design.npz, or re-map it with 'ttfs map')")
    return f"{v:.9g}"
