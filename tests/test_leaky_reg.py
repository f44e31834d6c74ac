"""Sparse-firing regularisers on the leaky unreset potential (training.leaky_reg and its numpy twin).

Independent references: the ideal kernels at lam = 0, quadrature of relu(u - theta) with u summed
input by input from its definition (not the kernels' segment recursion), a brute-force maximum of u,
and central finite differences in w, t_in and lam (step 1e-6; no kink lies within a step of these
continuous random points, so entries agree to atol 1e-6 on values of order 1-100).
"""
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq

from infra.errors import DataError
from training import kernels, kernels_ref, leaky_reg, leaky_reg_ref

T_END = 4.0
V_TH = 1.0
LAMS = (0.0, 0.05, 0.7, 3.0)
CASES = [(0, "m-ssr"), (0, "membrane"), (1, "f-ssr")]
BACKENDS = {"numba": leaky_reg, "numpy": leaky_reg_ref}
H = 1e-6
ATOL = 1e-6


def _mnist_like(rng, b, k):
    """Pixel times t_in (1 - x) with x in 1/255 steps: ~75% black pixels tied at t_in = 1 (the final
    tie group), ties among the grey levels too; half the batch has some inputs that never spike."""
    x = rng.integers(1, 256, (b, k)) / 255.0 * (rng.random((b, k)) < 0.25)
    t = 1.0 - x
    t[: b // 2][rng.random((b // 2, k)) < 0.1] = np.inf
    return t


def _hidden_like(rng, b, k):
    """Continuous spike times over most of the window (a hidden layer's inputs), some never."""
    t = rng.uniform(0.0, 3.9, (b, k))
    t[rng.random((b, k)) < 0.15] = np.inf
    return t


def _order(t):
    order = np.argsort(t, axis=1, kind="mergesort")
    return order, (t < T_END).sum(axis=1)


def _theta(kind_name, n, rng):
    """Per-neuron thresholds: V_th for M-SSR / F-SSR, a spread of v_hat below it for the membrane loss."""
    return np.full(n, V_TH) if kind_name != "membrane" else rng.uniform(0.0, 0.9, n)


def _reg(mod, t, w, lam, kind, theta, coef=1.0, chunks=1):
    order, nv = _order(t)
    return mod.regularizer(t, w, lam, order, nv, kind, theta, T_END, coef, chunks)


def _close(a, b, rel):
    """Equal to `rel` of the larger array's scale (entries may be tiny where a piece is short)."""
    scale = max(np.abs(a).max(), np.abs(b).max(), 1e-300)
    np.testing.assert_allclose(a, b, rtol=0, atol=rel * scale)


@pytest.mark.parametrize("kind,name", CASES)
def test_lam_zero_is_the_ideal_regularizer(kind, name):
    """lam = 0: exactly kernels.regularizer (numba) and kernels_ref.regularizer (twin), values and
    gradients to 1e-12, on MNIST-like inputs (the final tie group) and hidden-layer ones. lam = 1e-9:
    the gradients within 1e-8 (the model itself moves by ~lam t_end), and the batch total is the
    ideal one plus lam * dR/dlam to 1e-12 (the lam gradient is right at lam = 0)."""
    rng = np.random.default_rng(11)
    coef = 0.37
    for t in (_mnist_like(rng, 6, 60), _hidden_like(rng, 6, 25)):
        k_in = t.shape[1]
        w = rng.normal(1.5 / k_in, 2.0 / np.sqrt(k_in), (k_in, 14))
        th = 0.6 if name == "membrane" else V_TH     # the ideal kernels take one theta for the layer
        theta = np.full(14, th)
        order, nv = _order(t)
        for mod, ideal in ((leaky_reg, kernels), (leaky_reg_ref, kernels_ref)):
            ref = ideal.regularizer(t, w, order, nv, kind, th, T_END, coef, 2)
            assert ref[0].sum() > 0 and np.abs(ref[1]).max() > 0 and np.abs(ref[2]).max() > 0
            got = mod.regularizer(t, w, np.zeros(14), order, nv, kind, theta, T_END, coef, 2)
            for a, b in zip(got[:3], ref):
                _close(a, b, 1e-12)
            assert np.abs(got[3]).max() > 0
            small = mod.regularizer(t, w, np.full(14, 1e-9), order, nv, kind, theta, T_END, coef, 2)
            for a, b in zip(small[1:3], ref[1:]):
                _close(a, b, 1e-8)
            first_order = ref[0].sum() + 1e-9 * got[3].sum() / coef
            assert small[0].sum() == pytest.approx(first_order, rel=1e-12)
            assert small[0].sum() != pytest.approx(ref[0].sum(), rel=1e-12)   # the leak is felt


@pytest.mark.parametrize("kind,name", CASES)
def test_numba_equals_numpy_twin(kind, name):
    """Random layers with ties, never-spiking inputs, negative weights, silent and firing neurons and
    lam in {0, 0.05, 0.7, 3}: the kernel and the twin (a different route to the gradients) to 1e-10."""
    rng = np.random.default_rng(5)
    for make, k_in in ((_mnist_like, 50), (_hidden_like, 30)):
        t = make(rng, 7, k_in)
        w = rng.normal(1.0 / k_in, 2.5 / np.sqrt(k_in), (k_in, 24))
        lam = rng.choice(LAMS, 24)
        theta = _theta(name, 24, rng)
        if make is _mnist_like:
            # the kernel takes each sample's final tie group as one segment with matrix-product
            # gradients; the twin has no such shortcut: some rows must use it
            order, nv = _order(t)
            *_, tail_a, tail_b, in_tail = leaky_reg._regularizer_sweep(t, w, lam, order, nv, kind, theta,
                                                                       T_END, 0.37, 1)
            assert in_tail.sum(axis=1).max() >= 20 and np.abs(tail_a).max() > 0 and np.abs(tail_b).max() > 0
        v0 = _reg(leaky_reg, t, w, lam, kind, theta, coef=0.0)
        assert np.all(v0[1] == 0) and np.all(v0[2] == 0) and np.all(v0[3] == 0)
        for coef, chunks in ((0.0, 1), (0.37, 1), (0.37, 3)):
            a = _reg(leaky_reg, t, w, lam, kind, theta, coef, chunks)
            b = _reg(leaky_reg_ref, t, w, lam, kind, theta, coef, chunks)
            _close(a[0], b[0], 1e-12)
            np.testing.assert_array_equal(a[0], v0[0])
            if coef:
                for x, y in zip(a[1:], b[1:]):
                    _close(x, y, 1e-10)
                    assert np.abs(x).max() > 0
        fires = _peaks(t, w, lam)[0] > V_TH       # a mix of firing and silent neurons
        assert 0.1 < fires.mean() < 0.9, fires.mean()


def _u_direct(t_b, w_i, lam_i, x):
    """u at times x from its definition, input by input (independent of the kernels' recursion)."""
    dt = np.maximum(0.0, np.asarray(x)[..., None] - np.where(np.isfinite(t_b), t_b, np.inf))
    ramps = dt if lam_i == 0 else -np.expm1(-lam_i * dt) / lam_i
    return ramps @ w_i


def _area_quad(t_b, w_i, lam_i, theta_i):
    """integral_0^t_end relu(u - theta) by quad between the input times, each piece split where u
    crosses theta (brentq), so that quad only sees smooth integrands."""
    u = lambda x: float(_u_direct(t_b, w_i, lam_i, x)) - theta_i
    cuts = np.unique(np.r_[0.0, t_b[t_b < T_END], T_END])
    area = 0.0
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        pts = [lo, hi]
        if u(lo) * u(hi) < 0:
            pts.insert(1, brentq(u, lo, hi, xtol=1e-15, rtol=1e-15))
        for a, b in zip(pts[:-1], pts[1:]):
            if u(0.5 * (a + b)) > 0:
                area += quad(u, a, b, epsabs=1e-14, epsrel=1e-13)[0]
    return area


def _peaks(t, w, lam):
    """(max u, whether it is at an input arrival) per sample and neuron, u at every segment end."""
    peak = np.zeros((t.shape[0], w.shape[1]))
    at_input = np.zeros(peak.shape, bool)
    for b in range(t.shape[0]):
        ends = np.r_[np.sort(t[b][t[b] < T_END]), T_END]
        for i in range(w.shape[1]):
            u = _u_direct(t[b], w[:, i], lam[i], ends)
            peak[b, i], at_input[b, i] = u.max(), u.argmax() < len(ends) - 1
    return peak, at_input


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_values_match_quadrature_and_brute_force_maximum(backend):
    """M-SSR / membrane = sum_i of quad of relu(u_i - theta_i) (`_area_quad`); F-SSR =
    sum_i relu(max u_i - theta_i) with the maximum over a grid of 4e4 points plus every input time."""
    rng = np.random.default_rng(3)
    t = _hidden_like(rng, 3, 12)
    t[1, :3] = 1.5                                 # a tie
    w = rng.normal(0.25, 0.8, (12, 8))
    lam = np.array([0.0, 0.05, 0.7, 3.0, 20.0, 0.3, 1e-9, 1.3])
    mod = BACKENDS[backend]
    for theta in (np.full(8, 0.0), np.full(8, 0.5), rng.uniform(0.2, 1.0, 8)):
        values = _reg(mod, t, w, lam, 0, theta, 0.0)[0]
        for b in range(t.shape[0]):
            area = sum(_area_quad(t[b], w[:, i], lam[i], theta[i]) for i in range(8))
            assert values[b] == pytest.approx(area, rel=1e-11, abs=1e-13)
            assert area > 0
    theta = np.full(8, V_TH)
    values = _reg(mod, t, w, lam, 1, theta, 0.0)[0]
    for b in range(t.shape[0]):
        grid = np.unique(np.r_[np.linspace(0.0, T_END, 40001), t[b][t[b] < T_END]])
        peak = sum(max(0.0, _u_direct(t[b], w[:, i], lam[i], grid).max() - V_TH) for i in range(8))
        assert values[b] == pytest.approx(peak, rel=1e-12, abs=1e-12)
    assert values.sum() > 0


def _fd(f, x, idx, h=H):
    xp, xm = x.copy(), x.copy()
    xp[idx] += h
    xm[idx] -= h
    return (f(xp) - f(xm)) / (2 * h)


def _maximiser_at_input(t, w, lam):
    """How many (sample, neuron) pairs have u's largest value above V_th at an input arrival."""
    peak, at_input = _peaks(t, w, lam)
    return int(((peak > V_TH) & at_input).sum())


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("kind,name", CASES)
def test_gradients_match_finite_differences(kind, name, backend):
    """gw and glam on MNIST-like inputs (the final tie group's shared rows) and on hidden-layer ones,
    gt on hidden-layer ones (ties have no time derivative), lam in {0, 0.05, 0.7, 3}. F-SSR's
    maximiser sits at an input arrival for several neurons: there dR/dt_j* = u'(t*-). The
    differences are taken of the numba values (equal to the twin's, test above), for speed."""
    rng = np.random.default_rng(17)
    mod = BACKENDS[backend]
    coef = 0.7
    for make in (_mnist_like, _hidden_like):
        t = make(rng, 4, 16)
        w = rng.normal(0.1, 0.9, (16, 8))
        lam = np.array(LAMS * 2)
        theta = _theta(name, 8, rng)
        total = lambda ww=w, ll=lam: _reg(leaky_reg, t, ww, ll, kind, theta, 0.0)[0].sum()
        _, gw, gt, glam = _reg(mod, t, w, lam, kind, theta, coef)
        flat = rng.choice(w.size, size=40, replace=False)
        fd_w = np.array([_fd(lambda ww: total(ww=ww), w, np.unravel_index(f, w.shape)) for f in flat])
        np.testing.assert_allclose(gw.ravel()[flat], coef * fd_w, atol=ATOL, rtol=1e-6)
        assert np.abs(fd_w).max() > 0.1
        fd_lam = np.array([_fd(lambda ll: total(ll=ll), lam, i) for i in range(8)])
        np.testing.assert_allclose(glam, coef * fd_lam, atol=ATOL, rtol=1e-6)
        assert np.abs(fd_lam).max() > 0.01
        if make is _hidden_like:
            if kind == 1:
                assert _maximiser_at_input(t, w, lam) >= 3
            for b, j in np.ndindex(t.shape):
                if np.isfinite(t[b, j]):
                    fd_t = _fd(lambda tt: _reg(leaky_reg, tt, w, lam, kind, theta, 0.0)[0][b], t, (b, j))
                    assert gt[b, j] == pytest.approx(coef * fd_t, abs=ATOL, rel=1e-6), (b, j)
            assert np.abs(gt).max() > 0.1


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_wrong_shapes_of_lam_or_theta_are_clear_errors(backend):
    rng = np.random.default_rng(0)
    t = _hidden_like(rng, 2, 6)
    w = rng.normal(0.3, 0.5, (6, 4))
    order, nv = _order(t)
    mod = BACKENDS[backend]
    good = dict(lam=np.zeros(4), theta=np.ones(4))
    for key, bad in (("lam", np.zeros(5)), ("lam", np.zeros((1, 4))), ("theta", np.ones(3)), ("theta", 1.0)):
        args = dict(good, **{key: bad})
        with pytest.raises(DataError, match=f"{key} has shape .*one .* per neuron \\(4\\)"):
            mod.regularizer(t, w, args["lam"], order, nv, 0, args["theta"], T_END, 1.0, 1)
    with pytest.raises(DataError, match="weights has shape"):
        mod.regularizer(t, w[:5], good["lam"], order, nv, 0, good["theta"], T_END, 1.0, 1)


def test_potential_crossing_theta_many_times():
    """A zigzag potential (alternating input signs) crosses theta ~20 times per neuron: more
    intervals of {u > theta} than the kernel's first buffer holds (2n + 16), so the sweep is redone
    with more room. Values against quadrature, gradients against the twin and finite differences."""
    k_in, n = 40, 2
    t = np.linspace(0.1, 3.8, k_in)[None, :]
    signs = np.where(np.arange(k_in) % 2 == 0, 1.0, -1.0)
    signs[0] = 0.5                                  # slope alternates +-3 after the first input
    w = np.column_stack([6.0 * signs, 5.0 * signs])
    lam = np.array([0.05, 0.7])
    theta = np.array([0.14, 0.1])
    ends = np.r_[t[0], T_END]
    crossings = 0
    for i in range(n):
        u = _u_direct(t[0], w[:, i], lam[i], ends)
        crossings += ((u[:-1] > theta[i]) != (u[1:] > theta[i])).sum()
    assert crossings > 2 * (2 * n + 16)            # each interval has two crossings
    order, nv = _order(t)
    scratch = [np.empty(n), np.empty(n), np.empty(n, np.int64), np.empty(n), np.empty(n)]
    first_try = [np.empty(2 * n + 16, np.int64), np.empty(2 * n + 16), np.empty(2 * n + 16)]
    assert leaky_reg._sweep_one(t[0], w, w.sum(axis=0), lam, order[0], nv[0], 0, theta, T_END,
                                *scratch, *first_try)[1] == -1     # the first buffer is too small
    value, gw, gt, glam = _reg(leaky_reg, t, w, lam, 0, theta, 1.0)
    ref = _reg(leaky_reg_ref, t, w, lam, 0, theta, 1.0)
    for a, b in zip((value, gw, gt, glam), ref):
        _close(a, b, 1e-10)
    area = sum(_area_quad(t[0], w[:, i], lam[i], theta[i]) for i in range(n))
    assert value[0] == pytest.approx(area, rel=1e-11)
    total = lambda ww=w, ll=lam: _reg(leaky_reg, t, ww, ll, 0, theta, 0.0)[0].sum()
    for idx in [(0, 0), (7, 1), (20, 0), (33, 1)]:
        assert gw[idx] == pytest.approx(_fd(lambda ww: total(ww=ww), w, idx), abs=ATOL, rel=1e-6)
    for i in range(n):
        assert glam[i] == pytest.approx(_fd(lambda ll: total(ll=ll), lam, i), abs=ATOL, rel=1e-6)
