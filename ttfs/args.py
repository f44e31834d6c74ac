"""The flags commands share: argparse `type=` functions for numeric flags, and the parent parsers
of the flags many commands take (`--data-dir`, `--quiet`, `--set`), each defined once here.

A negative index or a zero count is a usage error naming the flag (`argument --limit: expected an
integer >= 1, got '-3'`), exit 2, before any work. Whether an index is past the end of the data
set is known only once it is loaded: `training.data.select` checks that.
"""
from __future__ import annotations

import argparse
import math

from infra.config import prefixes, split_overrides


def _int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
    return value


def index(text: str) -> int:
    """An index into the data set (--start, --sample, --image): 0, 1, 2, ..."""
    return _int(text, 0)


def count(text: str) -> int:
    """A number of things (--limit, --trials, --workers): 1, 2, ..."""
    return _int(text, 1)


def positive(text: str) -> float:
    """A finite number > 0 (--rate, --timeout-s, --t-rise-s, --max-step-s)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


DATA_DIR = _parent()
DATA_DIR.add_argument("--data-dir", default=None, help="folder holding the idx files (default: installed location)")

QUIET = _parent()
QUIET.add_argument("--quiet", action="store_true", help="no progress bars or progress messages (warnings and errors only)")

_EXAMPLES = {"": "train.epochs=3", "hw": "hw.bits=4", "energy": "energy.e_comparator_j=1e-14"}


def setting(sections: dict) -> argparse.ArgumentParser:
    """The `--set PREFIX.KEY=VALUE` flag of a command whose config has these sections (prefix ->
    dataclass, as infra.config.split_overrides takes); `overrides(args)` reads it."""
    parser = _parent()
    example = " --set ".join(_EXAMPLES.get(p, f"{p}.KEY=VALUE") for p in sections)
    parser.add_argument("--set", action="append", default=[], metavar="PREFIX.KEY=VALUE",
                        help=f"override one config key, PREFIX one of {prefixes(sections)}; repeatable, "
                             f"e.g. --set {example}")
    parser.set_defaults(set_sections=sections)
    return parser


def overrides(args) -> dict[str, list[str]]:
    """The command's --set items by section, each as KEY=VALUE (infra.config.split_overrides)."""
    return split_overrides(args.set, args.set_sections)


def add_wires(p) -> None:
    """`--wires literal|reduced`: how a netlist writes a design's wires (export-netlist, simulate,
    energy-validate)."""
    from netlists.circuit import WIRE_NETLISTS
    p.add_argument("--wires", choices=WIRE_NETLISTS, default="reduced",
                   help="a design with wire resistance: 'reduced' writes each tile as its exact port equivalent "
                        "(wire nodes eliminated, as fast as a wire-free array), 'literal' a resistor per wire "
                        "segment and per cell (the reference; slow beyond small tiles). The same circuit: "
                        "docs/netlists.md, 'Wires'")
