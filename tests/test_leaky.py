"""The leaky TTFS layer (training.leaky, its twin training.leaky_ref): lam = 0 is the ideal kernel,
numba equals numpy, firing times and end potentials agree with integrating the ODE, gradients with
central finite differences, and wrong shapes are refused before a kernel runs."""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from infra.errors import DataError
from training import kernels, kernels_ref, leaky, leaky_ref, network
from training.encoding import encode_pixels

T_END = 4.0
BACKENDS = {"numba": (leaky, kernels), "numpy": (leaky_ref, kernels_ref)}
LAMS = [0.0, 0.05, 0.7, 3.0]


def _inputs(rng, b, k, silent=0.15):
    """MNIST-like input times: the first half of the batch encoded images (every input arrives,
    ~80% tied at t_in = 1), the second half a hidden layer's (uniform in [0, 2], a tie group at 1,
    some never spiking)."""
    h = b // 2
    t = np.empty((b, k))
    t[:h] = encode_pixels(rng.integers(1, 256, (h, k)) * (rng.random((h, k)) < 0.2), 1.0)
    t[h:] = rng.uniform(0.0, 2.0, (b - h, k))
    t[h:][rng.random((b - h, k)) < 0.3] = 1.0
    t[h:][rng.random((b - h, k)) < silent] = np.inf
    return t


def _layer(rng, k, n, lam, mean=0.012, std=0.08):
    """Weights (some negative; scaled with the leak so that some neurons fire, some not; a fifth of
    the neurons 6x stronger, to fire early), per-neuron leaks around `lam` and thresholds around 1."""
    w = rng.normal(mean * (1 + lam), std * (1 + lam / 3), (k, n))
    w[:, : n // 5] *= 6.0
    return w, lam * rng.uniform(0.5, 1.5, n), rng.uniform(0.8, 1.2, n)


def _close(a, b, rtol):
    """Equal to rtol relative to each entry, entries near 0 relative to the largest (a sum of
    signed terms can cancel to well below its terms)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    fa, fb = np.isfinite(a), np.isfinite(b)
    assert np.array_equal(fa, fb) and np.array_equal(a[~fa], b[~fb])
    scale = max(np.abs(b[fb]).max(initial=0.0), 1e-300)
    np.testing.assert_allclose(a[fa], b[fb], rtol=rtol, atol=rtol * scale)


def _silent_output_args(t_out, n_valid, kf, slope):
    """kf, slope, t_f as network.gradients passes them for an output layer with silent neurons."""
    silent = ~np.isfinite(t_out)
    kf = np.where(silent, n_valid[:, None], kf)
    slope = np.where(silent, np.maximum(slope, 1.0 / T_END), slope)
    return kf, slope, np.where(silent, T_END, t_out)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_lam_zero_is_the_ideal_kernel_and_tiny_lam_is_close(backend):
    lk, ideal = BACKENDS[backend]
    rng = np.random.default_rng(0)
    t = _inputs(rng, 10, 60)
    w = rng.normal(0.015, 0.08, (60, 25))
    n = w.shape[1]
    want = ideal.forward(t, w, 1.0, T_END)
    assert 0.2 < np.isfinite(want[0]).mean() < 0.95
    delta = rng.normal(size=want[0].shape)
    kf, slope, t_f = _silent_output_args(want[0], want[2], want[3], want[4])
    want_g = ideal.backward(t, w, want[1], kf, slope, t_f, delta, 3)
    v_want, ramps = network.potential_at_end(t, w, T_END)
    g = rng.normal(size=v_want.shape)
    # lam = 1e-9 moves the model itself by about lam t^2 (the leak's first order, checked below)
    for lam, tol in ((0.0, 1e-12), (1e-9, 1e-9 * T_END ** 2)):
        got = lk.forward(t, w, np.full(n, lam), np.ones(n), T_END)
        _close(got[0], want[0], tol)
        _close(got[4], want[4], tol)
        for x, y in zip(got[1:4], want[1:4]):
            np.testing.assert_array_equal(x, y)
        gw, gt, glam = lk.backward(t, w, np.full(n, lam), got[1], kf, slope, t_f, delta, 3)
        _close(gw, want_g[0], tol)
        _close(gt, want_g[1], tol)
        # at lam -> 0: dt_f/dlam = sum over the causal set of w_ji (t_f - t_j)^2 / 2 / slope
        glam_want = np.zeros(n)
        for b, i in zip(*np.nonzero(kf)):
            c = want[1][b, :kf[b, i]]
            glam_want[i] += delta[b, i] / slope[b, i] * (w[c, i] * (t_f[b, i] - t[b, c]) ** 2 / 2).sum()
        _close(glam, glam_want, 1e-8 if lam else 1e-12)
        # ... and t_f(lam) = t_f(0) + lam dt_f/dlam to 1e-14: no cancellation at tiny lam
        first = np.zeros_like(t_out_0 := want[0])
        for b, i in zip(*np.nonzero(want[3])):
            c = want[1][b, :want[3][b, i]]
            first[b, i] = (w[c, i] * (want[0][b, i] - t[b, c]) ** 2 / 2).sum() / want[4][b, i]
        fired = want[3] > 0
        np.testing.assert_allclose(got[0][fired], (t_out_0 + lam * first)[fired], rtol=0, atol=1e-14)
        v_end = lk.end_potential(t, w, np.full(n, lam), T_END)
        _close(v_end, v_want, tol)
        egw, egt, _ = lk.end_potential_backward(t, w, np.full(n, lam), T_END, g, 2)
        _close(egw, ramps.T @ g, tol)
        _close(egt, np.where(t < T_END, -(g @ w.T), 0.0), tol)


@pytest.mark.parametrize("lam", LAMS)
def test_numba_equals_numpy_twin(lam):
    rng = np.random.default_rng(1 + int(10 * lam))
    t = _inputs(rng, 12, 70)
    w, lam_v, v_th = _layer(rng, 70, 30, lam)
    a = leaky.forward(t, w, lam_v, v_th, T_END)
    b = leaky_ref.forward(t, w, lam_v, v_th, T_END)
    fired = np.isfinite(a[0])
    assert 0.05 < fired.mean() < 0.95
    _close(a[0], b[0], 1e-10)
    _close(a[4], b[4], 1e-10)
    for x, y in zip(a[1:4], b[1:4]):
        np.testing.assert_array_equal(x, y)
    delta = rng.normal(size=a[0].shape)
    for kf, slope, t_f in ((a[3], a[4], np.where(fired, a[0], T_END)), _silent_output_args(a[0], a[2], a[3], a[4])):
        want = leaky_ref.backward(t, w, lam_v, b[1], kf, slope, t_f, delta)
        got = [leaky.backward(t, w, lam_v, a[1], kf, slope, t_f, delta, c) for c in (1, 2, 7)]
        for x, y in zip(got[0], want):
            _close(x, y, 1e-10)
        for other in got[1:]:          # any split of the neurons over blocks: the same bits
            assert all(np.array_equal(x, y) for x, y in zip(other, got[0]))
        no_gt = leaky.backward(t, w, lam_v, a[1], kf, slope, t_f, delta, 2, need_gt=False)
        assert np.array_equal(no_gt[0], got[0][0]) and not no_gt[1].any()
    _close(leaky.end_potential(t, w, lam_v, T_END), leaky_ref.end_potential(t, w, lam_v, T_END), 1e-10)
    g = rng.normal(size=a[0].shape)
    got = leaky.end_potential_backward(t, w, lam_v, T_END, g, 3)
    for x, y in zip(got, leaky_ref.end_potential_backward(t, w, lam_v, T_END, g, 3)):
        _close(x, y, 1e-10)


def test_shared_tie_run_path_is_taken():
    """MNIST-like samples: most firing neurons' causal sets are every input, so the final tie run
    (black pixels at t_in) is the shared row of `_grad_block` (exactness: the twin test above)."""
    rng = np.random.default_rng(2)
    t = _inputs(rng, 8, 70)[:4]
    w, lam_v, v_th = _layer(rng, 70, 30, 0.3)
    _, order, _, kf, _ = leaky.forward(t, w, lam_v, v_th, T_END)
    runs = [leaky._shared_run(t[b], order[b], kf[b]) for b in range(4)]
    assert all(r < 70 for r in runs) and ((kf == 70).sum(axis=1) > 5).all()
    assert ((kf > 0) & (kf < 70)).sum() > 5


def _ode_layer(t_b, w, lam, v_th):
    """Per neuron: first crossing of v_th, and v(t_end) and v'(t_end) if none, integrating
    dv/dt = sum_{t_j < t} w_j - lam v with DOP853 between input times (tight tolerances)."""
    stops = np.unique(np.append(t_b[t_b < T_END], T_END))
    out = []
    for i in range(w.shape[1]):
        v, t0, fire = 0.0, 0.0, np.inf
        for t1 in stops:
            s = w[t_b <= t0, i].sum()        # the inputs that arrived before (t0, t1)
            if t1 > t0:
                ev = lambda tt, y: y[0] - v_th[i]
                ev.terminal, ev.direction = True, 1
                sol = solve_ivp(lambda tt, y: [s - lam[i] * y[0]], (t0, t1), [v], method="DOP853",
                                rtol=1e-13, atol=1e-14, events=ev)
                if sol.t_events[0].size:
                    fire = sol.t_events[0][0]
                    break
                v = sol.y[0, -1]
            t0 = t1
        out.append((fire, v, w[t_b < T_END, i].sum() - lam[i] * v))
    return np.array(out)


@pytest.mark.parametrize("lam", [0.05, 0.7, 3.0])
def test_against_integrating_the_ode(lam):
    rng = np.random.default_rng(3)
    t = _inputs(rng, 4, 16, silent=0.2)
    t[:2] = np.round(rng.uniform(0, 1, (2, 16)), 1)     # few distinct times, ties, for the first half
    w, lam_v, v_th = _layer(rng, 16, 10, lam, mean=0.05, std=0.3)
    t_out, _, _, _, slope = leaky.forward(t, w, lam_v, v_th, T_END)
    v_end = leaky.end_potential(t, w, lam_v, T_END)
    n_fired = n_silent = 0
    for b in range(len(t)):
        ref = _ode_layer(t[b], w, lam_v, v_th)
        fired = np.isfinite(ref[:, 0])
        np.testing.assert_array_equal(np.isfinite(t_out[b]), fired)
        np.testing.assert_allclose(t_out[b, fired], ref[fired, 0], rtol=0, atol=1e-9)
        np.testing.assert_allclose(v_end[b, ~fired], ref[~fired, 1], rtol=0, atol=1e-10)
        np.testing.assert_allclose(slope[b, ~fired], ref[~fired, 2], rtol=0, atol=1e-10)
        n_fired += fired.sum()
        n_silent += (~fired).sum()
    assert n_fired >= 8 and n_silent >= 4


@pytest.mark.parametrize("lam", [0.05, 0.7, 3.0])
def test_gradients_against_finite_differences(lam):
    """d(sum delta t_out)/d(w, t_in, lam) and d(sum g u(t_end))/d(w, t_in, lam) against central
    differences (h = 1e-6, agreement 1e-6 of max(1, |fd|)); an entry whose +-h moves a causal set
    (a kink) is not a derivative and is left out; at least 20 entries per parameter (every lam) are checked."""
    rng = np.random.default_rng(4)
    t = _inputs(rng, 4, 14, silent=0.1)
    t[:2] = rng.uniform(0, 1, (2, 14))
    w, lam_v, v_th = _layer(rng, 14, 9, lam, mean=0.05, std=0.3)
    delta = rng.normal(size=(4, 9))
    g = rng.normal(size=(4, 9))
    fwd = leaky.forward(t, w, lam_v, v_th, T_END)
    fired = np.isfinite(fwd[0])
    assert fired.mean() > 0.4
    gw, gt, glam = leaky.backward(t, w, lam_v, fwd[1], fwd[3], fwd[4], fwd[0], delta, 2)
    ew, et, elam = leaky.end_potential_backward(t, w, lam_v, T_END, g, 2)

    def times(w_, t_, l_):
        r = leaky.forward(t_, w_, l_, v_th, T_END)
        return (delta * np.where(fired, r[0], 0.0)).sum(), r[3]

    def end(w_, t_, l_):
        return (g * leaky.end_potential(t_, w_, l_, T_END)).sum(), (t_ < T_END)

    h = 1e-6
    for f, grads, kink_free in ((times, (gw, gt, glam), lambda a, b: np.array_equal(a, b) and np.array_equal(a, fwd[3])),
                                (end, (ew, et, elam), lambda a, b: np.array_equal(a, b))):
        for which, exact in zip(("w", "t", "lam"), grads):
            base = {"w": w, "t": t, "lam": lam_v}[which]
            idx = [np.unravel_index(k, base.shape) for k in rng.permutation(base.size)[:40]]
            if which == "t":
                idx = [ix for ix in idx if np.isfinite(t[ix])]
            checked = 0
            for ix in idx:
                args = {"w": w, "t": t, "lam": lam_v}
                plus, minus = dict(args), dict(args)
                plus[which] = base.copy()
                minus[which] = base.copy()
                plus[which][ix] += h
                minus[which][ix] -= h
                fp, kp = f(plus["w"], plus["t"], plus["lam"])
                fm, km = f(minus["w"], minus["t"], minus["lam"])
                if not kink_free(kp, km):
                    continue
                fd = (fp - fm) / (2 * h)
                assert abs(fd - exact[ix]) <= 1e-6 * max(1.0, abs(fd)), (which, ix, fd, exact[ix])
                checked += 1
            assert checked >= min(20, len(idx)), (which, checked)


def test_silent_output_gradient_is_that_of_the_end_potential():
    """With kf = n_valid and t_f = t_end (network.gradients' silent outputs), backward is the
    gradient of -(delta / slope) u(t_end) (whose own gradient the finite differences check)."""
    rng = np.random.default_rng(5)
    t = _inputs(rng, 6, 30)
    w, lam_v, v_th = _layer(rng, 30, 12, 0.7, mean=0.01, std=0.05)
    t_out, order, n_valid, _, slope = leaky.forward(t, w, lam_v, v_th, T_END)
    assert (~np.isfinite(t_out)).mean() > 0.5
    slope = np.maximum(slope, 1.0 / T_END)
    kf = np.broadcast_to(n_valid[:, None], slope.shape)
    delta = rng.normal(size=slope.shape)
    got = leaky.backward(t, w, lam_v, order, kf, slope, np.full(slope.shape, T_END), delta, 2)
    want = leaky.end_potential_backward(t, w, lam_v, T_END, -delta / slope, 2)
    for x, y in zip(got, want):
        _close(x, y, 1e-12)


@pytest.mark.parametrize("module", [leaky, leaky_ref])
def test_wrong_shapes_are_refused_before_a_kernel_runs(module, monkeypatch):
    for name in ("_forward", "_backward_sweep", "_end_potential", "_sort_batch"):
        monkeypatch.setattr(leaky, name, lambda *a: pytest.fail("a kernel ran"))
    rng = np.random.default_rng(6)
    t = _inputs(rng, 4, 20)
    w, lam_v, v_th = _layer(rng, 20, 7, 0.5)
    ok = np.ones((4, 7))
    order = np.zeros((4, 20), np.int64)
    bad = [(lambda: module.forward(t, w, lam_v[:-1], v_th, T_END), "leak lam has shape (6,), expected (7,)"),
           (lambda: module.forward(t, w, lam_v, 1.0, T_END), "thresholds v_th has shape ()"),
           (lambda: module.forward(t, w, lam_v, v_th[None], T_END), "thresholds v_th has shape (1, 7)"),
           (lambda: module.forward(t, w[:-1], lam_v, v_th, T_END), "weights has shape (19, 7)"),
           (lambda: module.forward(t, w, -lam_v, v_th, T_END), "leak lam must be finite and >= 0"),
           (lambda: module.forward(t, w, lam_v, 0 * v_th, T_END), "thresholds v_th must be finite and > 0"),
           (lambda: module.backward(t, w, lam_v[:3], order, ok, ok, ok, ok, 1), "leak lam has shape (3,)"),
           (lambda: module.backward(t, w, lam_v, order, ok, ok, ok, ok[:2], 1), "delta has shape (2, 7)"),
           (lambda: module.end_potential(t, w, np.ones((7, 1)), T_END), "leak lam has shape (7, 1)"),
           (lambda: module.end_potential_backward(t, w, lam_v, T_END, ok.T, 1), "g has shape (7, 4)")]
    for call, message in bad:
        with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
            call()
