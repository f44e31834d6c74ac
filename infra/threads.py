"""The numba threading layer every parallel kernel runs on: OpenMP with sleeping workers, unless
the user chose one.

numba's stock order tries tbb, then OpenMP; GNU OpenMP's idle workers spin between parallel
regions, and on a 2-core machine shared with other work two threads then trained at 0.25-0.43x of
one thread (docs/results.md, Throughput). With OMP_WAIT_POLICY=passive they sleep at once; a
two-thread launch then costs 45-60 us against 90-100 us on `workqueue` (numba's own pool, which
also sleeps), and two threads train 1.2-1.85x faster than one on an idle machine (about 1.55x
median; 1.2-1.5x on `workqueue`; docs/results.md, Throughput). Where no OpenMP runtime loads,
numba falls back to tbb, then `workqueue`.
The layer is chosen once per process, at the first parallel launch (or `numba.get_num_threads()`),
never at compile time, so cached kernels run on whichever layer is chosen. The OpenMP runtime
reads OMP_WAIT_POLICY once, when it is loaded: if something loaded it before (libngspice links
it), the setting would come too late and its workers would spin, so `workqueue` comes first then.
`use_default_layer()` is called by the modules that define parallel kernels, when they are
imported, before any launch.

GNU OpenMP cannot run in a child forked after the parent used it (the child stops with
"fork() called from a process already using GNU OpenMP"): the project's own workers are spawned,
not forked; a user's fork-based multiprocessing.Pool over the training functions needs
NUMBA_THREADING_LAYER=workqueue (or the spawn start method).

The user's choice wins: NUMBA_THREADING_LAYER (omp, tbb, workqueue), OMP_WAIT_POLICY, and
NUMBA_NUM_THREADS for the count (numba's default: one per core).
"""
from __future__ import annotations

import os
import sys
import time

DEFAULT_PRIORITY = "omp tbb workqueue"   # numba's "default" layer tries these in turn
ENV = "NUMBA_THREADING_LAYER"
PRIORITY_ENV = "NUMBA_THREADING_LAYER_PRIORITY"
WAIT_ENV = "OMP_WAIT_POLICY"


def use_default_layer() -> str:
    """Make numba's threading layer the first of DEFAULT_PRIORITY that loads, with OpenMP's workers
    sleeping when idle, unless the environment chose (NUMBA_THREADING_LAYER, its _PRIORITY,
    OMP_WAIT_POLICY; and `workqueue` first when an OpenMP runtime is already loaded, too late to make
    its workers sleep); returns the layer asked for ("default": numba tries the priority order).
    Set in the environment too (numba re-reads NUMBA_* variables when they change, and child
    processes inherit them). Without effect once numba has launched its threads."""
    layer = os.environ.get(ENV) or "default"
    priority = os.environ.get(PRIORITY_ENV) or DEFAULT_PRIORITY
    if not (os.environ.get(ENV) or os.environ.get(PRIORITY_ENV) or os.environ.get(WAIT_ENV)) and _openmp_loaded():
        priority = "workqueue omp tbb"   # too late for OMP_WAIT_POLICY: its workers would spin
    os.environ[ENV], os.environ[PRIORITY_ENV] = layer, priority
    os.environ.setdefault(WAIT_ENV, "passive")
    numba = sys.modules.get("numba")
    if numba is not None:
        from numba.np.ufunc import parallel
        if not parallel._is_initialized:
            numba.config.THREADING_LAYER = layer
            numba.config.THREADING_LAYER_PRIORITY = priority.split()
    return layer


def _openmp_loaded() -> bool:
    """Whether GNU OpenMP is already mapped into this process (Linux; elsewhere: False)."""
    try:
        with open("/proc/self/maps") as maps:
            return any("libgomp" in line for line in maps)
    except OSError:
        return False


class ThreadCountChooser:
    """Chooses numba's thread count step by step in a loop of like steps (training batches).

    On an idle machine two threads beat one; on a machine whose cores are busy with other work,
    every parallel region waits for its slowest thread and one thread can be faster (measured:
    two at 0.56x of one with about ten other jobs on two cores). So the loop runs `probe_steps`
    steps with every count from 1 to numba's current one, then `keep_steps` steps with the
    fastest per sample (median), then probes again (less often, down to every 8 x keep_steps
    steps, while the answer stays the same). The kernels' results do not depend on the
    thread count (tests/test_threads.py): switching changes the speed only. With one thread
    (NUMBA_NUM_THREADS=1 or numba.set_num_threads(1) before) there is nothing to choose.

        threads = ThreadCountChooser()
        for batch in batches:
            threads.begin()
            ...                       # the step
            threads.end(len(batch))
    """

    def __init__(self, probe_steps: int = 3, keep_steps: int = 60):
        import numba
        self._numba = numba
        self.top = numba.get_num_threads()
        self.counts = list(range(1, self.top + 1))
        self.probe_steps, self.keep_steps = probe_steps, keep_steps
        self.best = self.top
        self._keep = keep_steps // 2    # doubled at the first choice that confirms the default
        self._plan = []                 # (count, timed) for the steps to come
        self._times = {c: [] for c in self.counts}
        self._step = (self.top, False)  # the first step compiles or loads the kernels: not timed
        self._started = False
        self._t0 = 0.0

    def _plan_more(self) -> None:
        if all(self._times[c] for c in self.counts):
            best = min(self.counts, key=lambda c: sorted(self._times[c])[len(self._times[c]) // 2])
            # the same answer again: probe half as often (up to 8x), a new one: as at first
            self._keep = min(2 * self._keep, 8 * self.keep_steps) if best == self.best else self.keep_steps
            self.best = best
            self._times = {c: [] for c in self.counts}
            self._plan += [(self.best, False)] * self._keep
        self._plan += [(c, True) for c in self.counts for _ in range(self.probe_steps)]

    def begin(self) -> None:
        """Set the thread count for the step about to run."""
        if self.top > 1:
            if self._started:
                if not self._plan:
                    self._plan_more()
                self._step = self._plan.pop(0)
            self._numba.set_num_threads(self._step[0])
        self._started = True
        self._t0 = time.perf_counter()

    def end(self, n_samples: int) -> None:
        """The step has run (`n_samples` of work): record its time, restore numba's count."""
        elapsed = time.perf_counter() - self._t0
        count, timed = self._step
        if timed and n_samples > 0:
            self._times[count].append(elapsed / n_samples)
        if self.top > 1:
            self._numba.set_num_threads(self.top)
