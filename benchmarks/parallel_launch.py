"""Cost of one numba parallel launch (a prange over 128 trivial iterations), per thread count.

    python benchmarks/parallel_launch.py [--launches 2000] [--rounds 3]

Run it under each threading layer to compare, e.g. `NUMBA_THREADING_LAYER=workqueue` against the
default (OpenMP with sleeping workers, infra.threads). A training step makes one launch per layer
for the forward, one per layer for the backward and one per weight array of at least
training.optim.PARALLEL_MIN_SIZE weights for Adam (training.dispatch runs them serially at one thread),
so this times the fixed cost a step pays for its threads (docs/model.md, Threads).
"""
import argparse
import time

import numba
import numpy as np

from infra.threads import use_default_layer

use_default_layer()


@numba.njit(parallel=True)
def _touch(x):
    for b in numba.prange(x.shape[0]):
        x[b] += 1.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--launches", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    x = np.zeros(128)
    counts = range(1, numba.config.NUMBA_NUM_THREADS + 1)
    per = {c: [] for c in counts}
    for _ in range(args.rounds):
        for c in counts:
            numba.set_num_threads(c)
            _touch(x)
            start = time.perf_counter()
            for _ in range(args.launches):
                _touch(x)
            per[c].append((time.perf_counter() - start) / args.launches * 1e6)
    print(f"threading layer {numba.threading_layer()}")
    for c in counts:
        print(f"{c} thread(s): {np.median(per[c]):.1f} us a launch (rounds: {', '.join(f'{v:.1f}' for v in per[c])})")


if __name__ == "__main__":
    main()
