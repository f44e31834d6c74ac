"""infra.workers.run_tasks, the one engine of `ttfs simulate --workers/--dask` and `ttfs sweep --jobs/--dask`:
results come back from spawned workers that had `env` before anything loaded; an error or a dead
worker stops the others at once and is reported."""
import os
import time
from pathlib import Path

import pytest

from infra.errors import ConfigError, TtfsError
from infra.workers import run_tasks, thread_env


def _probe(i):
    import numba
    return i, os.getpid(), os.environ.get("TTFS_PROBE"), numba.config.NUMBA_NUM_THREADS


def _bar_lock_kinds(i):
    from multiprocessing.synchronize import SemLock
    from tqdm import tqdm
    for _ in tqdm(range(2), disable=True):        # what the trainer and the ngspice runner do in a worker
        pass
    lock = tqdm.get_lock()
    return [isinstance(lk, SemLock) for lk in getattr(lock, "locks", [lock])]


def _fail_or_sleep(what, pid_file, other_pid_file):
    Path(pid_file).write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while not Path(other_pid_file).exists() and time.monotonic() < deadline:
        time.sleep(0.02)                    # both tasks are running
    if what == "fail":
        raise ConfigError("bad key")
    if what == "die":
        os._exit(137)
    time.sleep(120)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_results_come_back_from_workers_that_had_env_before_numba_loaded():
    got = []
    run_tasks(_probe, [(i,) for i in range(4)], got.append, jobs=2, env={"TTFS_PROBE": "x", **thread_env(1)})
    assert sorted(r[0] for r in got) == [0, 1, 2, 3]
    pids = {r[1] for r in got}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert all(r[2] == "x" and r[3] == 1 for r in got)       # numba read NUMBA_NUM_THREADS=1 at import
    assert "TTFS_PROBE" not in os.environ                     # this process's environment is as it was
    serial = []
    run_tasks(_probe, [(i,) for i in range(2)], serial.append)         # jobs=1: here, in order
    assert [r[:2] for r in serial] == [(0, os.getpid()), (1, os.getpid())]


def test_a_worker_makes_no_named_semaphore_that_a_stop_would_leak():
    # a terminated worker runs no finalizer: a named semaphore it made is left to the resource
    # tracker, which warns on stderr ("leaked semaphore objects") after a Ctrl-C of ttfs sweep
    got = []
    run_tasks(_bar_lock_kinds, [(0,), (1,)], got.append, jobs=2)
    assert got and not any(any(kinds) for kinds in got)


@pytest.mark.parametrize("what, error, message", [("fail", ConfigError, "bad key"),
                                                  ("die", TtfsError, "a worker process ended abruptly")])
def test_a_failing_or_dying_task_stops_the_other_worker_at_once(tmp_path, what, error, message):
    files = [tmp_path / "a", tmp_path / "b"]
    start = time.monotonic()
    with pytest.raises(error, match=message):
        run_tasks(_fail_or_sleep, [(what, str(files[0]), str(files[1])), ("sleep", str(files[1]), str(files[0]))],
                  print, jobs=2)
    assert time.monotonic() - start < 60                      # not after the other task's 120 s
    pids = [int(f.read_text()) for f in files]
    deadline = time.monotonic() + 10
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, pids))
