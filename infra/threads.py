"""The numba threading layer every parallel kernel runs on: `workqueue` unless the user chose one.

numba's default picks the OpenMP layer when it loads, and GNU OpenMP's idle workers spin between
parallel regions: on a 2-core machine shared with other work two threads then trained at 0.25-0.43x
of one thread (docs/results.md, Throughput). `workqueue` (numba's own pool) sleeps when idle.
The layer is chosen once per process, at the first parallel launch (or `numba.get_num_threads()`),
never at compile time, so cached kernels run on whichever layer is chosen. `use_default_layer()`
is called by the modules that define parallel kernels, when they are imported, before any launch.

The user's choice wins: NUMBA_THREADING_LAYER=omp (add OMP_WAIT_POLICY=passive so its workers
sleep) or tbb, and NUMBA_NUM_THREADS for the count (numba's default: one per core).
"""
from __future__ import annotations

import os
import sys

DEFAULT_LAYER = "workqueue"
ENV = "NUMBA_THREADING_LAYER"


def use_default_layer() -> str:
    """Make DEFAULT_LAYER numba's threading layer unless NUMBA_THREADING_LAYER names one; returns
    the layer asked for. Set in the environment too (numba re-reads NUMBA_* variables when they
    change, and child processes inherit it). Without effect once numba has launched its threads."""
    layer = os.environ.get(ENV) or DEFAULT_LAYER
    os.environ[ENV] = layer
    numba = sys.modules.get("numba")
    if numba is not None:
        from numba.np.ufunc import parallel
        if not parallel._is_initialized:
            numba.config.THREADING_LAYER = layer
    return layer
