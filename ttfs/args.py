"""argparse `type=` functions for numeric flags: a negative index or a zero count is a usage error
naming the flag (`argument --limit: expected an integer >= 1, got '-3'`), exit 2, before any work.

Whether an index is past the end of the data set is known only once it is loaded:
`training.data.select` checks that.
"""
from __future__ import annotations

import argparse
import math


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
