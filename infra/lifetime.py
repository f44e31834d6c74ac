"""Child processes that die with their parent.

Worker processes and ngspice servers call `die_with_parent` first thing: when the process that
started them ends in any way (including `kill -9`), the kernel kills them too, instead of leaving
them to finish minutes of simulation nobody will read.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None) -> None:
    """Have this process SIGKILLed when its parent exits (Linux prctl PR_SET_PDEATHSIG; a no-op
    elsewhere). `parent_pid`: the expected parent; if it is already gone, exit now."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
