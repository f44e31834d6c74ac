"""How the parallel kernels use the threads: a serial twin for one thread, samples taken by speed.

A prange launch hands the work to pool threads and waits for them even with one thread: on the
2-core VM 90-150 us on numba's workqueue layer at one or two threads, 1 us at one thread and
45-60 us at two on the default layer (OpenMP with sleeping workers: infra.threads;
benchmarks/parallel_launch.py), against 8-12 ms of work a training step at 1 thread. `threaded`
compiles the same Python function a second time without `parallel` (prange runs as range: the
same operations in the same order, so the same numbers) and calls that one when numba's thread
count is 1 (infra.threads.ThreadCountChooser's choice on a busy machine, or NUMBA_NUM_THREADS=1).
"""
from __future__ import annotations

import types

import numba as nb
from numba.core import cgutils, types as nbtypes
from numba.extending import intrinsic


def threaded(kernel, cache: bool = True, **options):
    """A callable running `kernel` (an `njit(parallel=True)` dispatcher) or, at one thread, its
    serial compilation (cached on disk as the kernel is: `cache`; `options`, e.g. error_model or
    fastmath, as the kernel's, so the two compute the same numbers); `.parallel` and `.serial`
    give the two."""
    f = kernel.py_func
    # a copy under its own name: numba's cache files are named by qualname, and two compilations of
    # one function would share (and overwrite) one index
    twin = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__, f.__closure__)
    twin.__qualname__ = f.__qualname__ + "_serial"
    twin.__module__ = f.__module__
    serial = nb.njit(cache=cache, **options)(twin)
    get = nb.get_num_threads

    def run(*args):
        return (kernel if get() > 1 else serial)(*args)

    run.parallel, run.serial = kernel, serial
    run.__name__, run.__doc__ = kernel.__name__, kernel.__doc__
    return run


@intrinsic
def next_index(typingctx, counter):
    """counter[0] += 1 atomically, returning the value before: threads that take their samples
    this way share a batch by speed (a thread on a core busy with other work takes fewer) where
    a prange gives each an equal part and waits for the slowest. What a sample computes does not
    depend on the thread that takes it. `counter`: a 1-d int64 array the caller allocates and
    passes in (numba's analyses do not see this write: a counter allocated inside the kernel
    reads back stale after the loop)."""
    if not (isinstance(counter, nbtypes.Array) and counter.dtype == nbtypes.int64 and counter.ndim == 1):
        return None      # a typing error: the atomic add is 64-bit on element 0
    sig = nbtypes.int64(counter)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [context.get_constant(nbtypes.intp, 0)])
        return builder.atomic_rmw("add", ptr, context.get_constant(nbtypes.int64, 1), "monotonic")

    return sig, codegen
