"""Independent tasks run in this process, in local worker processes or on a dask.distributed cluster.

`run_tasks(fn, tasks, on_result, jobs=N, dask_address=ADDRESS)` calls `fn(*args)` for every
`args` in `tasks` and hands each result to `on_result(result)` in this process as soon as it is
done (in order of completion, not of `tasks`). It is the one submit/collect loop of the toolkit:
`ttfs simulate` (netlists.runner, one image per task), `ttfs sweep` (training.sweep, one
training per task) and `ttfs explore` (energy.explore, one design point and run per task) use it.

- no address and jobs <= 1: here, in order (nothing to pickle; what a test monkeypatches is used).
- jobs > 1: `jobs` spawned processes (fresh interpreters: no ngspice state, thread pool or lock is
  inherited by fork). Each dies with this process, however it ends (infra.lifetime), and ignores
  Ctrl-C: this process takes the interrupt and stops them. `env` is in each worker's environment
  from its first instruction, so it is read when numpy and numba load there (`thread_env(1)`
  keeps N workers to one thread each instead of N x cores).
- dask_address: a dask.distributed scheduler (`check_dask_address` first, so a typo fails in
  seconds); each task a future of its own. `fn` and its arguments must mean the same on the
  workers (importable code, absolute paths on a shared file system).

An exception from a task or from `on_result`, or a Ctrl-C, cancels the tasks not yet started,
stops the local workers (a task they were running is lost: callers write their results
atomically, so nothing is half-written and a rerun redoes it) and propagates; a local worker that
dies (killed, out of memory) is a TtfsError saying so. Tasks already running on a dask cluster
cannot be stopped; they finish there and their results are dropped.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import threading
import uuid
from contextlib import contextmanager

from infra.errors import ConfigError, TtfsError

DASK_CONNECT_TIMEOUT_S = 5.0
_DASK_ADDRESS = re.compile(r"(?:(tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})")
# the thread pools of the numerical libraries, each read once when its library loads
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """The environment that limits numba, OpenMP and BLAS to `threads` threads in a new process."""
    return {name: str(int(threads)) for name in THREAD_VARIABLES}


def check_dask_address(address: str, timeout_s: float = DASK_CONNECT_TIMEOUT_S) -> None:
    """`--dask ADDRESS` is [tcp:// or tls://]HOST:PORT and something listens there; else a
    ConfigError naming the flag, within `timeout_s`."""
    m = _DASK_ADDRESS.fullmatch(address)
    if not m or not 1 <= int(m.group(3)) <= 65535:
        raise ConfigError(f"--dask {address!r}: expected a scheduler address tcp://HOST:PORT, "
                          "e.g. tcp://127.0.0.1:8786 (what 'dask scheduler' prints)")
    host, port = m.group(2).strip("[]"), int(m.group(3))
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(f"--dask {address}: no scheduler answers at {m.group(2)}:{port} "
                          f"({exc.strerror or str(exc) or type(exc).__name__}); start one with 'dask scheduler' and workers "
                          "with 'dask worker ADDRESS --nthreads 1', or check the address") from None


def run_tasks(fn, tasks, on_result, jobs: int = 1, dask_address: str | None = None, env: dict | None = None,
              name: str = "ttfs-task") -> None:
    """fn(*args) for every args in `tasks`, each result to on_result as it finishes (see the module).

    jobs: local worker processes (1: in this process); dask_address: a scheduler instead;
    env: variables set in each local worker process; name: the prefix of the dask task keys."""
    tasks = [tuple(t) for t in tasks]
    if not tasks:
        return
    if dask_address:
        _run_dask(dask_address, fn, tasks, on_result, name)
    elif jobs <= 1:
        for args in tasks:
            on_result(fn(*args))
    else:
        _run_pool(min(jobs, len(tasks)), fn, tasks, on_result, env or {})


def _start_worker(parent_pid: int, env: dict) -> None:
    """First thing in a local worker: die with the parent, leave Ctrl-C to it, make no named semaphore."""
    from infra.lifetime import die_with_parent
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(env)
    # A named semaphore made here outlives a worker that is stopped (terminate runs no finalizer) and
    # the resource tracker warns about it on stderr at exit. tqdm makes one for its default lock at
    # the first bar; a worker's bars need only a lock between its own threads.
    from tqdm import tqdm
    tqdm.set_lock(threading.RLock())


@contextmanager
def _environment(env: dict):
    """os.environ with `env` while the block runs (the environment a process spawned in it inherits)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_pool(workers: int, fn, tasks, on_result, env: dict) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # spawn: a fresh interpreter per worker, started at a submit while `env` is set, so the worker
    # reads it before it imports anything (its parent's main module, and with it numpy, included)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_start_worker, initargs=(os.getpid(), env))
    try:
        with _environment(env):
            futures = [pool.submit(fn, *args) for args in tasks]
        # submit wakes the pool's manager thread before it spawns the worker, so (CPython 3.11) the
        # thread may watch for deaths without the last worker: wake it again, every worker known
        wakeup = getattr(pool, "_executor_manager_thread_wakeup", None)
        if wakeup is not None:
            wakeup.wakeup()
        for fut in as_completed(futures):
            on_result(fut.result())
    except BrokenProcessPool:
        _stop(pool)
        raise TtfsError("a worker process ended abruptly (killed, or out of memory); what finished is "
                        "kept: rerun the same command to continue") from None
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _stop(pool) -> None:
    """Cancel what has not started and end the workers now, not after their current task."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:       # ProcessPoolExecutor can stop running tasks only from Python 3.14 on
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=10)


def _run_dask(address: str, fn, tasks, on_result, name: str) -> None:
    from dask.distributed import Client, as_completed

    token = f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"    # unique: never an earlier call's result
    with Client(address, timeout=DASK_CONNECT_TIMEOUT_S) as client:
        futures = [client.submit(fn, *args, key=f"{token}-{i}", pure=False) for i, args in enumerate(tasks)]
        try:
            for fut in as_completed(futures):
                on_result(fut.result())
        except BaseException:
            client.cancel(futures)
            raise
