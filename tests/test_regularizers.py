"""Sparse-firing regularisers (M-SSR, F-SSR, membrane integral loss): values, exact gradients, wiring.

Independent references: central finite differences of the regulariser through the exact forward
pass (numpy twin), fine time stepping of the unreset potential, and short real-data trainings.
The regularisers are only piecewise smooth (kinks where a segment crosses theta, a maximiser
changes segment or a neuron starts/stops firing); with continuous random inputs no kink lies
within the finite-difference step h = 1e-6 of the chosen points, so every entry must agree to
atol 1e-6 (relative to values of order 1-100; the step's rounding error is ~1e-8).
"""
import dataclasses

import numba
import numpy as np
import pytest

from training import kernels, kernels_ref, network
from training.config import DataConfig, LossConfig, ModelConfig, RegConfig, RunConfig, TrainConfig
from training.trainer import train

from finite_diff import weight_differences

T_END = 4.0
V_TH = 1.0
SIZES = (20, 15, 12, 5)
KINDS = {"m-ssr": None, "f-ssr": None, "membrane": 0.7}   # kind -> v_hat
# (kind, v_hat) for the gradient checks: also the membrane loss at v_hat = 0 (the potential starts on it)
CASES = [(k, v) for k, v in KINDS.items()] + [("membrane", 0.0)]
H = 1e-6
ATOL = 1e-6


def _network(seed, b=4):
    """Small random network where most hidden neurons fire, with negative weights so that the
    unreset potential of some neurons peaks before t_end (F-SSR's maximiser at an input arrival)."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(2.5 / a, 1.0 / np.sqrt(a), (a, n)) for a, n in zip(SIZES[:-1], SIZES[1:])]
    t_in = rng.uniform(0.0, 1.0, (b, SIZES[0]))
    return weights, t_in


MODEL = ModelConfig(layers=(784, 1), v_th=V_TH, t_end=T_END)  # only v_th and t_end are read


def _total_reg(weights, t_in, kind, v_hat, coefs):
    """sum over samples and hidden layers of coef_l * R_l, through the numpy forward pass."""
    states = network.forward(weights, t_in, MODEL, "numpy")
    theta = network.regularizer_theta(kind, MODEL, v_hat)
    total = 0.0
    for l, c in enumerate(coefs):
        s = states[l]
        v, _, _ = kernels_ref.regularizer(s.t_in, weights[l], s.order, s.n_valid, network.REG_CODES[kind],
                                          theta, T_END, 1.0)
        total += c * v.sum()
    return total


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("kind,v_hat", CASES)
def test_regularizer_weight_gradients_match_finite_differences(kind, v_hat, backend):
    weights, t_in = _network(1)
    coefs = (0.7, 1.3)                 # distinct per layer: checks which coefficient goes where
    states = network.forward(weights, t_in, MODEL, backend)
    fired = [np.isfinite(s.t_out).mean() for s in states[:-1]]
    assert min(fired) > 0.6, fired     # most hidden neurons fire
    zero = np.zeros_like(states[-1].t_out)
    grads, reg = network.gradients(weights, states, zero, MODEL, backend, kind, coefs, v_hat)
    assert np.isclose(reg.sum(), _total_reg(weights, t_in, kind, v_hat, coefs), rtol=1e-12)
    rng = np.random.default_rng(7)
    for l, w in enumerate(weights):
        # 60 random entries per layer (a full check of all 540 weights agrees too, but takes longer)
        flat = rng.choice(w.size, size=min(60, w.size), replace=False)
        an = grads[l].ravel()[flat]
        fd = weight_differences(lambda ws: _total_reg(ws, t_in, kind, v_hat, coefs), weights, l, flat, H)
        np.testing.assert_allclose(an, fd, atol=ATOL, rtol=1e-6, err_msg=f"layer {l}")
        if l < len(weights) - 1:
            assert np.abs(fd).max() > 0.1          # the check is not vacuous
        else:
            assert np.all(grads[l] == 0.0)         # the output layer is not regularised


def _fsrr_maximiser_at_input(t, w, order, nv):
    """How many neurons' unreset potential peaks (above threshold) at an input arrival before t_end."""
    count = 0
    for b in range(t.shape[0]):
        o = order[b, :nv[b]]
        ts = t[b, o]
        s = np.cumsum(w[o], axis=0)
        u_end = s * np.append(ts[1:], T_END)[:, None] - np.cumsum(w[o] * ts[:, None], axis=0)
        k = u_end.argmax(axis=0)
        count += int(((u_end.max(axis=0) > V_TH) & (k + 1 < nv[b])).sum())
    return count


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("kind,v_hat", CASES)
def test_regularizer_input_time_gradient_matches_finite_differences(kind, v_hat, backend):
    """dR/dt_in from the kernel. Inputs spread over [0, 3.9] with mixed-sign weights, so F-SSR's
    maximiser often sits at an input arrival: there the maximum moves with that input
    (dR/dt_j = slope before it), which the envelope term -w_j [t_j < t*] alone misses."""
    rng = np.random.default_rng(1)
    t = rng.uniform(0.0, 3.9, (6, 15))
    w = rng.normal(0.1, 1.0, (15, 12))
    theta = v_hat if kind == "membrane" else V_TH
    code = network.REG_CODES[kind]
    k = network.BACKENDS[backend]

    def reg(tt):
        _, order, nv, _, _ = kernels_ref.forward(tt, w, V_TH, T_END)
        return kernels_ref.regularizer(tt, w, order, nv, code, theta, T_END, 1.0)[0]

    _, order, nv, _, _ = kernels_ref.forward(t, w, V_TH, T_END)
    if kind == "f-ssr":
        assert _fsrr_maximiser_at_input(t, w, order, nv) >= 5
    _, _, gt = k.regularizer(t, w, order, nv, code, theta, T_END, 1.0, 2)
    fd = np.zeros_like(t)
    for b, j in np.ndindex(t.shape):
        tp, tm = t.copy(), t.copy()
        tp[b, j] += H
        tm[b, j] -= H
        fd[b, j] = (reg(tp)[b] - reg(tm)[b]) / (2 * H)
    np.testing.assert_allclose(gt, fd, atol=ATOL, rtol=1e-6)
    assert np.abs(fd).max() > 0.1


def _unreset_on_grid(t, w, dt):
    grid = np.arange(0.0, T_END + dt / 2, dt)
    ramps = np.maximum(0.0, grid[:, None] - np.where(np.isfinite(t), t, np.inf)[None, :])
    return grid, ramps @ w                       # (T, n)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_regularizer_values_match_time_stepping(backend):
    """R_M and R_mem = integral of relu(u - theta) (trapezoid, error O(dt^2)); R_F = relu(max u - V_th)
    (grid maximum, error <= max slope * dt)."""
    rng = np.random.default_rng(3)
    t = rng.uniform(0.0, 3.0, (3, 20))
    t[0, :4] = np.inf                            # some inputs never spike
    w = rng.normal(0.2, 0.6, (20, 10))
    _, order, nv, _, _ = kernels_ref.forward(t, w, V_TH, T_END)
    k = network.BACKENDS[backend]
    dt = 1e-4
    for b in range(t.shape[0]):
        grid, u = _unreset_on_grid(t[b], w, dt)
        for theta in (0.0, 0.5, 0.9, V_TH):
            area = np.trapezoid(np.maximum(0.0, u - theta), grid, axis=0).sum()
            v = k.regularizer(t[b:b + 1], w, order[b:b + 1], nv[b:b + 1], 0, theta, T_END, 0.0, 1)[0][0]
            assert abs(v - area) < 1e-5 * max(1.0, area)
        peak = np.maximum(0.0, u.max(axis=0) - V_TH).sum()
        v = k.regularizer(t[b:b + 1], w, order[b:b + 1], nv[b:b + 1], 1, V_TH, T_END, 0.0, 1)[0][0]
        slope_max = np.abs(np.cumsum(w[order[b, :nv[b]]], axis=0)).max()
        assert peak - 1e-12 <= v <= peak + w.shape[1] * slope_max * dt
        assert v > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mssr_is_the_limit_of_the_membrane_loss(seed):
    """R_mem(v_hat) -> R_M as v_hat -> V_th, values and weight gradients, with
    |R_mem - R_M| <= (total time above v_hat) * (V_th - v_hat) (the integrand differs by at most that)."""
    weights, t_in = _network(seed)
    states = network.forward(weights, t_in, MODEL, "numba")
    s = states[0]
    w = weights[0]
    r_m, g_m, _ = kernels.regularizer(s.t_in, w, s.order, s.n_valid, 0, V_TH, T_END, 1.0, 1)
    assert r_m.sum() > 0
    prev = np.inf
    for eps in (1e-1, 1e-2, 1e-3, 1e-4, 1e-6):
        r, g, _ = kernels.regularizer(s.t_in, w, s.order, s.n_valid, 0, V_TH - eps, T_END, 1.0, 1)
        gap = np.abs(r - r_m).max()
        assert np.all(r >= r_m)                                  # relu(u - v_hat) >= relu(u - V_th)
        assert gap <= w.shape[1] * T_END * eps + 1e-12
        assert gap < prev
        prev = gap
        # dR/dw_ij = integral over {u > theta} of (t - t_j)+: its change is O(eps) too
        assert np.abs(g - g_m).max() <= w.shape[1] * T_END ** 2 * eps / V_TH * 10 + 1e-9
    assert prev < 1e-4


def _random_layer_inputs(rng, b, k):
    t = rng.uniform(0.0, 1.0, (b, k))
    t[rng.random((b, k)) < 0.3] = 1.0           # tie group like MNIST's black pixels
    t[: b // 2][rng.random((b // 2, k)) < 0.1] = np.inf
    return t


@pytest.mark.parametrize("kind,theta", [(0, V_TH), (0, 0.6), (1, V_TH)])
def test_numba_regularizer_equals_numpy_twin(kind, theta):
    rng = np.random.default_rng(4)
    t = _random_layer_inputs(rng, 9, 40)
    w = rng.normal(0.05, 0.2, (40, 30))
    _, order, nv, _, _ = kernels.forward(t, w, V_TH, T_END)
    # the numba sweep takes each sample's final tie group (all inputs valid, last ones tied) as one
    # segment with matrix-product gradients; the twin has no such shortcut: some rows must use it
    *_, tail_a, tail_b, in_tail = kernels._regularizer_sweep(t, w, order, nv, kind, theta, T_END, 0.37, 1)
    assert in_tail.sum(axis=1).max() >= 5 and np.abs(tail_a).max() > 0 and np.abs(tail_b).max() > 0
    for coef, chunks in ((0.0, 1), (0.37, 3)):
        a = kernels.regularizer(t, w, order, nv, kind, theta, T_END, coef, chunks)
        b = kernels_ref.regularizer(t, w, order, nv, kind, theta, T_END, coef, chunks)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-12, atol=1e-12)
        assert a[0].sum() > 0
        if coef:
            np.testing.assert_allclose(a[1], b[1], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(a[2], b[2], rtol=1e-10, atol=1e-12)
            assert np.abs(a[1]).max() > 0


def _tiny_cfg(kind="none", strength=0.0, v_hat=None, hidden=30, n_train=300, epochs=1, seed=0):
    return RunConfig(
        seed=seed,
        data=DataConfig(dataset="mnist", train_limit=n_train, test_limit=200),
        model=ModelConfig(layers=(784, hidden, 10)),
        loss=LossConfig(),
        train=TrainConfig(epochs=epochs, batch_size=64, lr=1e-3),
        reg=RegConfig(kind=kind, strength=strength, v_hat=v_hat),
    )


def test_strength_zero_leaves_training_bit_for_bit_unchanged(tmp_path):
    runs = {"none": _tiny_cfg(), "m-ssr": _tiny_cfg("m-ssr", 0.0), "f-ssr": _tiny_cfg("f-ssr", 0.0),
            "membrane": _tiny_cfg("membrane", 0.0, 0.8), "m-ssr-strong": _tiny_cfg("m-ssr", 1e-3)}
    weights = {}
    for name, cfg in runs.items():
        train(cfg, tmp_path / name, progress=False)
        with np.load(tmp_path / name / "model.npz") as z:
            weights[name] = [z[k] for k in sorted(z.files)]
    for name in ("m-ssr", "f-ssr", "membrane"):
        assert all(np.array_equal(a, b) for a, b in zip(weights["none"], weights[name])), name
    # ... while a non-zero strength does change them (the comparison can fail)
    assert not np.array_equal(weights["none"][0], weights["m-ssr-strong"][0])


@pytest.mark.parametrize("kind,strengths", [("m-ssr", (0.0, 3e-4, 3e-3)), ("f-ssr", (0.0, 1e-3, 1e-2))])
def test_increasing_strength_lowers_spikes_per_neuron(tmp_path, kind, strengths):
    """784-50-10, the first 2000 MNIST training images, 1 epoch of batch 16 (125 steps): hidden
    firing on 1000 test images falls with strength."""
    numba.set_num_threads(1)      # tiny batches: thread hand-offs cost more than they save
    spikes = []
    for s in strengths:
        cfg = _tiny_cfg("none" if s == 0 else kind, s, hidden=50, n_train=2000)
        cfg = dataclasses.replace(cfg, data=DataConfig(dataset="mnist", train_limit=2000, test_limit=1000),
                                  train=TrainConfig(epochs=1, batch_size=16, lr=2e-3))
        rec = train(cfg, tmp_path / f"{kind}{s}", progress=False)
        spikes.append(rec["spikes_per_neuron_mean"])
    assert all(a > b for a, b in zip(spikes, spikes[1:])), spikes
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert spikes[0] - spikes[-1] > 0.1, spikes
