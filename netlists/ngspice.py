"""One ngspice per process, driven through PySpice's shared-library interface (NgSpiceShared).

ngspice's shared library is neither thread-safe nor reentrant, so a process holds at most one
session (`session()`), whose ngspice lives in a private server process (a hung or crashed
ngspice is killed without taking the caller down); parallel runs use one process per worker
(netlists/runner.py).

The library is found without user setup: `$NGSPICE_LIBRARY_PATH` if set, else the system's
libngspice (Debian's libngspice0 ships only `libngspice.so.0`, which PySpice's default name
`libngspice.so` misses). A missing or unloadable library raises EngineError (a SimulationError)
with the install command. The server process dies with the process that started it (infra.lifetime).
"""
from __future__ import annotations

import ctypes.util
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infra import provenance
from infra.errors import EngineError, SimulationError
from netlists.writer import check_inert

INSTALL_HINT = "install it with: apt-get install ngspice libngspice0"
_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libngspice.so.0",
    "/usr/lib/aarch64-linux-gnu/libngspice.so.0",
    "/usr/lib/libngspice.so.0",
    "/usr/local/lib/libngspice.so.0",
    "/usr/local/lib/libngspice.so",
)

_SESSION = None
# PySpice logs every ngspice stderr line as an error; our callers inspect the run's log instead, so
# the engine's PySpice object logs to this logger of ours, which drops them. The user's "PySpice"
# loggers are left as they are (only the private server process silences them all: it is ours).
_PYSPICE_LOG = logging.getLogger(__name__ + ".pyspice")
_PYSPICE_LOG.setLevel(logging.CRITICAL)


def find_library() -> str:
    """Path of libngspice: $NGSPICE_LIBRARY_PATH, the system's soname, or a known location."""
    env = os.environ.get("NGSPICE_LIBRARY_PATH")
    if env:
        if not Path(env).is_file():
            raise EngineError(f"NGSPICE_LIBRARY_PATH={env}: no such file; the ngspice shared library "
                                  f"is missing ({INSTALL_HINT}, or unset NGSPICE_LIBRARY_PATH)")
        return env
    for path in _CANDIDATES:
        if Path(path).is_file():
            return path
    name = ctypes.util.find_library("ngspice")
    if name:
        return name
    raise EngineError(f"the ngspice shared library (libngspice.so.0) was not found; {INSTALL_HINT}")


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


class Engine:
    """ngspice loaded in this process (at most one per process; not reentrant)."""

    def __init__(self, library_path: str | None = None):
        library_path = library_path or find_library()
        if not Path(library_path).is_file() and "/" in library_path:
            raise EngineError(f"{library_path}: ngspice shared library not found; {INSTALL_HINT}")
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi

        class _Shared(NgSpiceShared):
            _logger = _PYSPICE_LOG
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
            hint = ", or unset NGSPICE_LIBRARY_PATH" if os.environ.get("NGSPICE_LIBRARY_PATH") else ""
            reason = str(exc).split("  Additionally,")[0]      # cffi's note on find_library adds nothing
            raise EngineError(f"cannot load the ngspice shared library {library_path} ({reason}); "
                              f"{INSTALL_HINT}{hint}") from None
        self.library_path = library_path
        self.broken = False
        found = re.search(r"ngspice-(\S+)", self._cmd("version -f"))
        self.version = found.group(1) if found else None
        provenance.record_version("ngspice", self.version)

    def _cmd(self, command: str) -> str:
        from PySpice.Spice.NgSpice.Shared import NgSpiceCommandError
        try:
            return self._ng.exec_command(command)
        except NgSpiceCommandError:
            return self._ng.stdout + "\n" + self._ng.stderr

    def run(self, netlist: str, timeout_s: float | None = None) -> RunResult:
        """Load `netlist` (with its .tran and .save lines), run it, return the saved vectors.

        Raises SimulationError on a netlist error, a failed transient (convergence) or a timeout,
        and before loading anything, on a line the netlist writer does not write (check_inert:
        no `.control`, `.include`, `*#` or non-ASCII line ever reaches ngspice).
        """
        from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError
        check_inert(netlist)
        if self.broken:
            raise SimulationError("this ngspice was halted after a timeout and cannot run again in this process")
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
            # ngspice 39 cannot be used safely after bg_halt (removing the halted circuit crashes
            # it); the caller must discard this engine (Session kills its server process).
            self.broken = True
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


def _serve(recv, send, library_path: str) -> None:
    """Server process: one Engine, running the netlists received until None arrives."""
    try:
        engine = Engine(library_path)
    except EngineError as exc:
        send.send(("error", str(exc)))
        return
    send.send(("ready", engine.version))
    while True:
        try:
            msg = recv.recv()
        except EOFError:
            return
        if msg is None:
            return
        try:
            r = engine.run(msg)
            send.send(("ok", (r.vectors, r.log)))     # plain types: this module is __main__ here
        except SimulationError as exc:
            send.send(("error", str(exc)))


class Session:
    """ngspice for this process, run in a private server process (`python -m netlists.ngspice`).

    The server isolates the caller from ngspice: a run that exceeds its timeout, or crashes
    ngspice, costs only the server, which is killed and started again on the next run.
    `isolated=False` loads ngspice in this process instead (no protection; a timeout leaves it
    unable to simulate again).
    """

    def __init__(self, library_path: str | None = None, isolated: bool = True):
        self.library_path = library_path or find_library()
        if "/" in self.library_path and not Path(self.library_path).is_file():
            raise EngineError(f"{self.library_path}: ngspice shared library not found; {INSTALL_HINT}")
        self.isolated = isolated
        self._proc = self._send = self._recv = None
        self._engine = None
        self._cpu_stopped_s = 0.0      # CPU time of the servers this session has stopped

    def _start(self) -> None:
        import subprocess
        import sys
        from multiprocessing.connection import Connection
        r1, w1 = os.pipe()          # to the server
        r2, w2 = os.pipe()          # from the server
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.Popen([sys.executable, "-m", "netlists.ngspice", str(r1), str(w2), self.library_path,
                                 str(os.getpid())],
                                pass_fds=(r1, w2), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
        os.close(r1)
        os.close(w2)
        self._proc = proc
        self._send, self._recv = Connection(w1, readable=False), Connection(r2, writable=False)
        if not self._recv.poll(120):
            self._stop()
            raise EngineError("the ngspice server process did not start within 120 s")
        try:
            kind, payload = self._recv.recv()
        except EOFError:
            self._stop()
            raise EngineError(f"the ngspice server process died while loading {self.library_path}; is it a "
                              f"working ngspice shared library? ({INSTALL_HINT})") from None
        if kind != "ready":
            self._stop()
            raise EngineError(payload)
        provenance.record_version("ngspice", payload)

    def _stop(self) -> None:
        if self._proc is not None:
            self._cpu_stopped_s += self._server_cpu_s()
            self._proc.kill()
            self._proc.wait()
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        self._proc = self._send = self._recv = None

    def run(self, netlist: str, timeout_s: float | None = None) -> RunResult:
        """Load and run `netlist`; its saved vectors. SimulationError on failure or timeout."""
        if not self.isolated:
            if self._engine is None:
                self._engine = Engine(self.library_path)
            return self._engine.run(netlist, timeout_s)
        if self._proc is None or self._proc.poll() is not None:
            self._stop()
            self._start()
        start = time.perf_counter()
        try:
            self._send.send(netlist)
            ready = self._recv.poll(timeout_s)
        except OSError:
            ready = False
        if not ready:
            alive = self._proc.poll() is None
            self._stop()
            if alive:
                raise SimulationError(f"ngspice did not finish within {timeout_s:.3g} s")
            raise SimulationError("ngspice crashed (its server process died)")
        try:
            kind, payload = self._recv.recv()
        except (EOFError, OSError):
            self._stop()
            raise SimulationError("ngspice crashed (its server process died)") from None
        if kind == "error":
            raise SimulationError(payload)
        vectors, log = payload
        return RunResult(vectors=vectors, log=log, seconds=time.perf_counter() - start)

    def cpu_seconds(self) -> float:
        """CPU time used so far by this session's ngspice servers, the present one and those stopped
        (a timeout or crash restarts the server; 0 when not isolated: counted in-process)."""
        return self._cpu_stopped_s + self._server_cpu_s()

    def _server_cpu_s(self) -> float:
        if self._proc is None:
            return 0.0
        try:
            with open(f"/proc/{self._proc.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def close(self) -> None:
        if self._send is not None:
            try:
                self._send.send(None)
            except OSError:
                pass
        self._stop()


def session() -> Session:
    """The process's ngspice session, created on first use."""
    global _SESSION
    if _SESSION is None:
        _SESSION = Session()
    return _SESSION


def _tail(text: str, lines: int = 15) -> str:
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def parse_measurements(stdout: str, prefix: str = "t_l") -> dict:
    """`.meas` results of `ngspice -b` output (stdout and stderr): name -> value, inf = failed (silent)."""
    import re
    out = {}
    failed = re.findall(rf"^\s*\.meas\s+tran\s+({prefix}\S*)\s.*failed", stdout, re.M | re.I)
    failed += re.findall(rf"^Error: measure\s+({prefix}\S*)\s", stdout, re.M | re.I)
    for name in failed:
        out[name.lower()] = np.inf
    for name, value in re.findall(rf"^({prefix}\S*)\s*=\s*(\S+)", stdout, re.M):
        out[name.lower()] = np.inf if value == "failed" else float(value)
    return out


if __name__ == "__main__":
    import sys
    from multiprocessing.connection import Connection

    from infra.lifetime import die_with_parent
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)     # this process is ngspice's server only
    die_with_parent(int(sys.argv[4]) if len(sys.argv) > 4 else None)   # a killed caller takes its ngspice along
    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False), sys.argv[3])
