"""Deterministic kill points for tests of crash safety.

`TTFS_TEST_EXIT_AT=NAME` (or `NAME:N`) makes the process exit at once, with status 137 as after
`kill -9` and without any cleanup, the first (or N-th) time it passes `maybe_exit(NAME)`. Tests use it
to stop a command between two writes exactly, instead of racing a timer.
"""
from __future__ import annotations

import os

ENV = "TTFS_TEST_EXIT_AT"
EXIT_STATUS = 137
_hits: dict[str, int] = {}


def maybe_exit(point: str) -> None:
    """Exit now if $TTFS_TEST_EXIT_AT names `point` and this is the requested pass through it."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, sep, count = spec.rpartition(":")
    if not (sep and count.isdigit()):
        name, count = spec, "1"
    if name != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] == int(count):
        os._exit(EXIT_STATUS)
