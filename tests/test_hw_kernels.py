"""The column kernel: numba equals its numpy twin, reduces to the training sweep, draws honest noise."""
import numpy as np
import pytest

from hwmodel import kernels, kernels_ref
from training import kernels as train_kernels

T_END = 4e-6


def _case(seed, b=24, k=40, n=13):
    """Input times with ties, a final tie group (like MNIST's black pixels), inputs that never
    arrive or arrive after the window, and mixed-sign drive currents."""
    rng = np.random.default_rng(seed)
    t = rng.choice(np.linspace(0.0, 1e-6, 9), size=(b, k))      # many ties
    t[:, :15] = 1e-6                                               # final group at t_in
    t[0, :] = 1e-6                                                 # every input in one group
    t[1, 3] = np.inf
    t[2, 5] = 5e-6                                                 # after the window
    a = rng.normal(np.linspace(-0.3, 0.4, n), 1.0, (k, n)) * 1e-7  # amps; some columns mostly negative
    s = np.abs(rng.normal(0.0, 1.0, (k, n))) * 5e-8
    c = np.full(n, 1e-11)
    theta = rng.uniform(0.05, 0.3, n)
    return t, a, s, c, theta


@pytest.mark.parametrize("leak", [0.0, 3e-8, 3e-6])      # none, series branch of expm1, expm1 branch
@pytest.mark.parametrize("noisy", [False, True])
def test_numba_column_kernel_equals_numpy_twin(leak, noisy):
    t, a, s, c, theta = _case(1)
    s = s if noisy else np.zeros_like(s)
    g = np.full(a.shape[1], leak)
    if leak:
        g[2] = 0.0    # a leak-free column inside a leaky layer
    got = kernels.column_forward(t, a, s, g, c, theta, T_END, np.uint64(11), 5)
    want = kernels_ref.column_forward(t, a, s, g, c, theta, T_END, np.uint64(11), 5)
    assert 0.2 < np.isfinite(got).mean() < 1.0, "the case should have both firing and silent neurons"
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    f = np.isfinite(got)
    np.testing.assert_allclose(got[f], want[f], rtol=1e-12, atol=1e-20)


def test_leak_free_noiseless_column_equals_training_sweep():
    """With g_leak = 0 and no noise the column is the training model (weights a / C, threshold theta)."""
    t, a, _, c, _ = _case(2)
    theta = 0.15
    got = kernels.column_forward(t, a, np.zeros_like(a), np.zeros(a.shape[1]), c, np.full(a.shape[1], theta),
                                 T_END, np.uint64(0), 0)
    want = train_kernels.forward(t, np.ascontiguousarray(a / c[0]), theta, T_END)[0]
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    f = np.isfinite(got)
    assert f.mean() > 0.3
    np.testing.assert_allclose(got[f], want[f], rtol=1e-12)


def test_leak_delays_firing_of_excitatory_columns():
    t, a, _, c, theta = _case(3)
    a = np.abs(a) * 0.3
    z = np.zeros_like(a)
    ideal = kernels.column_forward(t, a, z, np.zeros(a.shape[1]), c, theta, T_END, np.uint64(0), 0)
    leaky = kernels.column_forward(t, a, z, np.full(a.shape[1], 1e-6), c, theta, T_END, np.uint64(0), 0)
    both = np.isfinite(ideal) & np.isfinite(leaky)
    assert both.sum() > 20
    # with only positive drive y_leaky <= y_ideal, so a leaky column fires no earlier (and some strictly later)
    assert np.all(leaky[both] >= ideal[both] * (1 - 1e-12))
    assert np.any(leaky[both] > ideal[both] * (1 + 1e-6))
    assert np.all(np.isfinite(ideal) | ~np.isfinite(leaky))


def test_read_noise_is_standard_normal_and_keyed_by_sample():
    """One input at t=0 with drive a and noise std s, no leak: the crossing time c theta / (a + s eps)
    reveals eps, which must be N(0, 1); the draws depend on the global sample index only."""
    n_samples, n = 4000, 25
    t = np.zeros((n_samples, 1))
    a = np.full((1, n), 1e-6)
    s = np.full((1, n), 1e-8)
    c, theta = np.full(n, 1e-11), np.full(n, 0.1)
    out = kernels.column_forward(t, a, s, np.zeros(n), c, theta, 1.0, np.uint64(3), 0)
    eps = (c[0] * theta[0] / out - a[0, 0]) / s[0, 0]
    assert abs(eps.mean()) < 5 / np.sqrt(eps.size)
    assert abs(eps.std() - 1.0) < 5 / np.sqrt(2 * eps.size)
    assert abs((np.abs(eps) > 2).mean() - 0.0455) < 0.004        # tails of a normal, not a uniform
    # the same samples run in another batch split give the same draws; another seed does not
    part = kernels.column_forward(t[1000:1500], a, s, np.zeros(n), c, theta, 1.0, np.uint64(3), 1000)
    np.testing.assert_array_equal(part, out[1000:1500])
    other = kernels.column_forward(t[:100], a, s, np.zeros(n), c, theta, 1.0, np.uint64(4), 0)
    assert not np.allclose(other, out[:100])
