"""One ngspice per process, driven through PySpice's shared-library interface (NgSpiceShared).

ngspice's shared library is neither thread-safe nor reentrant, so a process holds at most one
session (`session()`); parallel runs use one process per worker (netlists/runner.py).

The library is found without user setup: `$NGSPICE_LIBRARY_PATH` if set, else the system's
libngspice (Debian's libngspice0 ships only `libngspice.so.0`, which PySpice's default name
`libngspice.so` misses). A missing library raises SimulationError with the install command.
"""
from __future__ import annotations

import ctypes.util
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.errors import SimulationError

INSTALL_HINT = "install it with: apt-get install ngspice libngspice0"
_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libngspice.so.0",
    "/usr/lib/aarch64-linux-gnu/libngspice.so.0",
    "/usr/lib/libngspice.so.0",
    "/usr/local/lib/libngspice.so.0",
    "/usr/local/lib/libngspice.so",
)

_SESSION = None


def find_library() -> str:
    """Path of libngspice: $NGSPICE_LIBRARY_PATH, the system's soname, or a known location."""
    env = os.environ.get("NGSPICE_LIBRARY_PATH")
    if env:
        if not Path(env).is_file():
            raise SimulationError(f"NGSPICE_LIBRARY_PATH={env}: no such file; the ngspice shared library "
                                  f"is missing ({INSTALL_HINT}, or unset NGSPICE_LIBRARY_PATH)")
        return env
    for path in _CANDIDATES:
        if Path(path).is_file():
            return path
    name = ctypes.util.find_library("ngspice")
    if name:
        return name
    raise SimulationError(f"the ngspice shared library (libngspice.so.0) was not found; {INSTALL_HINT}")


def find_executable() -> str:
    """The `ngspice` program (for running exported netlists with `ngspice -b`)."""
    exe = shutil.which("ngspice")
    if exe is None:
        raise SimulationError(f"the ngspice program was not found on PATH; {INSTALL_HINT}")
    return exe


@dataclass
class RunResult:
    """Saved vectors of one transient run (name -> array; 'time' is the abscissa) and its log."""

    vectors: dict
    log: str
    seconds: float


class Session:
    """One ngspice instance in this process. Use `session()` rather than constructing it."""

    def __init__(self, library_path: str | None = None):
        library_path = library_path or find_library()
        if not Path(library_path).is_file() and "/" in library_path:
            raise SimulationError(f"{library_path}: ngspice shared library not found; {INSTALL_HINT}")
        # PySpice logs every ngspice stderr line as an error; our callers inspect the log instead.
        logging.getLogger("PySpice").setLevel(logging.CRITICAL)
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi

        class _Shared(NgSpiceShared):
            @staticmethod
            def _background_thread_running(is_running, ngspice_id, user_data):
                # PySpice's callback returns None, which cffi reports on every bg_run; return 0.
                # ngspice passes True when the background thread has stopped ("no run").
                self = ffi.from_handle(user_data)
                self._bg_events.append(bool(is_running))
                return 0

        _Shared.LIBRARY_PATH = library_path
        try:
            self._ng = _Shared(ngspice_id=0, send_data=False)
        except OSError as exc:
            raise SimulationError(f"cannot load the ngspice shared library {library_path} ({exc}); "
                                  f"{INSTALL_HINT}") from None
        self.library_path = library_path

    def _cmd(self, command: str) -> str:
        from PySpice.Spice.NgSpice.Shared import NgSpiceCommandError
        try:
            return self._ng.exec_command(command)
        except NgSpiceCommandError:
            return self._ng.stdout + "\n" + self._ng.stderr

    def run(self, netlist: str, timeout_s: float | None = None) -> RunResult:
        """Load `netlist` (with its .tran and .save lines), run it, return the saved vectors.

        Raises SimulationError on a netlist error, a failed transient (convergence) or a timeout.
        """
        from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError
        ng = self._ng
        start = time.perf_counter()
        self._cmd("destroy all")
        try:
            ng.load_circuit(netlist)
        except NgSpiceCircuitError:
            raise SimulationError("ngspice rejected the netlist:\n" + _tail(ng.stdout + ng.stderr)) from None
        ng.clear_output()
        ng._bg_events = []
        ng._ngspice_shared.ngSpice_Command(b"bg_run")
        timed_out = False
        while not (ng._bg_events and ng._bg_events[-1]) or ng._ngspice_shared.ngSpice_running():
            if timeout_s is not None and time.perf_counter() - start > timeout_s:
                ng._ngspice_shared.ngSpice_Command(b"bg_halt")
                while ng._ngspice_shared.ngSpice_running():
                    time.sleep(0.01)
                timed_out = True
                break
            time.sleep(0.002)
        log = "\n".join(ng._stdout + ng._stderr)
        if timed_out:
            self._cleanup()
            raise SimulationError(f"ngspice did not finish within {timeout_s:.0f} s")
        plot_name = ng.last_plot
        if not plot_name.startswith("tran"):
            self._cleanup()
            raise SimulationError("the transient analysis failed:\n" + _tail(log))
        plot = ng.plot(None, plot_name)
        vectors = {name: np.array(vec._data, dtype=np.float64) for name, vec in plot.items()}
        self._cleanup()
        return RunResult(vectors=vectors, log=log, seconds=time.perf_counter() - start)

    def _cleanup(self) -> None:
        self._cmd("destroy all")
        self._cmd("remove_circuit")


def session() -> Session:
    """The process's ngspice session, created on first use."""
    global _SESSION
    if _SESSION is None:
        _SESSION = Session()
    return _SESSION


def _tail(text: str, lines: int = 15) -> str:
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
