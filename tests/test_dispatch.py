"""training.dispatch: a kernel's serial twin gives its parallel compilation's numbers, bit for bit,
and the atomic counter hands every index out once."""
import numba
import numpy as np

from training import kernels
from training.dispatch import next_index


def _layer(rng, b=12, k=40, n=30):
    t = np.where(rng.random((b, k)) < 0.4, 1.0, rng.uniform(0.0, 1.0, (b, k)))
    return t, rng.normal(0.05, 0.1, (k, n))


def test_serial_twin_equals_the_parallel_kernel_bit_for_bit():
    rng = np.random.default_rng(0)
    t, w = _layer(rng)
    before = numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    try:
        par = kernels._forward_batch.parallel(t, w, 1.0, 4.0, kernels._NO_HINT, 3, np.zeros(1, np.int64))
        ser = kernels._forward_batch.serial(t, w, 1.0, 4.0, kernels._NO_HINT, 1, np.zeros(1, np.int64))
        for x, y in zip(par, ser):
            assert np.array_equal(x, y)
        hint = np.argsort(t, axis=1, kind="stable")    # the inputs' stable order as a hint (the chained path)
        for x, y in zip(par, kernels._forward_batch.serial(t, w, 1.0, 4.0, hint, 1, np.zeros(1, np.int64))):
            assert np.array_equal(x, y)
        t_out, order, _, kf, slope, _ = par
        assert np.isfinite(t_out).mean() > 0.3
        delta = rng.normal(0.0, 1.0, t_out.shape)
        t_f = np.where(np.isfinite(t_out), t_out, 4.0)
        g_par = kernels._backward_sweep.parallel(t, w, order, kf, delta, slope, t_f, True, 2)
        g_ser = kernels._backward_sweep.serial(t, w, order, kf, delta, slope, t_f, True, 2)
        for x, y in zip(g_par, g_ser):
            assert np.array_equal(x, y) and np.abs(x).max() > 0
    finally:
        numba.set_num_threads(before)


@numba.njit(parallel=True)
def _take_all(n, n_workers, hits, taken):
    for _ in numba.prange(n_workers):
        i = next_index(taken)
        while i < n:
            hits[i] += 1
            i = next_index(taken)


def test_next_index_hands_out_each_index_once():
    hits, taken = np.zeros(5000, np.int64), np.zeros(1, np.int64)
    _take_all(5000, 4, hits, taken)
    assert np.all(hits == 1)
    assert taken[0] == 5000 + 4      # each worker's final take is past the end


def test_next_index_refuses_a_counter_that_is_not_int64():
    import pytest
    from numba.core.errors import TypingError
    hits = np.zeros(5, np.int64)
    for bad in (np.zeros(1, np.int32), np.zeros(1, np.float64), np.zeros((1, 1), np.int64)):
        with pytest.raises(TypingError):
            _take_all(5, 2, hits, bad)


def test_serial_twin_takes_the_kernels_error_model():
    """Adam's kernel and its twin both compile under numpy's error model (what lets the loop
    vectorise): with eps = 0 a zero gradient divides 0 by 0, nan in both rather than a
    ZeroDivisionError from the twin alone."""
    from training.optim import _adam_update
    for run in (_adam_update.parallel, _adam_update.serial):
        w, g, m, v = np.ones(3), np.array([0.0, 1.0, -2.0]), np.zeros(3), np.zeros(3)
        run(w, g, m, v, 0.9, 0.999, 1e-3, 0.1, 0.001, 0.0)
        assert np.isnan(w[0]) and np.all(np.isfinite(w[1:])) and w[1] < 1.0 < w[2]
