"""The TTFS layer kernels: exact firing times, exact gradients, numba twin equal to numpy."""
import numpy as np
import pytest

from training import kernels, kernels_ref, network
from training.config import LossConfig, ModelConfig

T_END = 4.0


def _inputs(rng, b, k, ties=True, silent=0.1):
    """Input times in [0, 1] with a tie group at t_in = 1 (like MNIST's black pixels) and some never-spiking inputs."""
    t = rng.uniform(0.0, 1.0, (b, k))
    if ties:
        t[rng.random((b, k)) < 0.4] = 1.0
    if silent:
        t[: b // 2][rng.random((b // 2, k)) < silent] = np.inf  # half the batch has every input valid
    return t


def _brute_force_times(t_in, w, v_th, t_end, dt):
    """First threshold crossing of v(t) = sum_j w_j max(0, t - t_j) on a fine grid (upper bound, error <= dt)."""
    grid = np.arange(0.0, t_end + dt, dt)
    out = np.full((t_in.shape[0], w.shape[1]), np.inf)
    for b in range(t_in.shape[0]):
        ramps = np.maximum(0.0, grid[:, None] - np.where(np.isfinite(t_in[b]), t_in[b], np.inf)[None, :])
        v = ramps @ w                                  # (T, n)
        crossed = v >= v_th
        first = crossed.argmax(axis=0)
        hit = crossed.any(axis=0) & (grid[first] <= t_end)
        out[b, hit] = grid[first[hit]]
    return out


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_firing_time_matches_fine_time_stepping(backend):
    rng = np.random.default_rng(0)
    t = _inputs(rng, 8, 30)
    w = rng.normal(0.03, 0.15, (30, 25))
    dt = 1e-4
    t_out = network.BACKENDS[backend].forward(t, w, 1.0, T_END)[0]
    ref = _brute_force_times(t, w, 1.0, T_END, dt)
    both = np.isfinite(ref) & np.isfinite(t_out)
    assert both.sum() > 50 and (~np.isfinite(ref)).sum() > 0          # fired and silent neurons both present
    # the grid finds the first grid point at or after the crossing
    assert np.all(ref[both] - t_out[both] >= -1e-12)
    assert np.all(ref[both] - t_out[both] <= dt + 1e-12)
    # silent agree except where the crossing is within one step of t_end
    disagree = np.isfinite(ref) != np.isfinite(t_out)
    assert np.all(np.abs(np.where(np.isfinite(t_out), t_out, ref)[disagree] - T_END) < 2 * dt)


def test_causal_set_and_slope_define_the_firing_time():
    rng = np.random.default_rng(1)
    t = _inputs(rng, 6, 40)
    w = rng.normal(0.06, 0.12, (40, 20))
    t_out, order, n_valid, kf, slope = kernels.forward(t, w, 1.0, T_END)
    for b in range(6):
        for i in range(20):
            if np.isfinite(t_out[b, i]):
                causal = order[b, : kf[b, i]]
                assert np.isclose(slope[b, i], w[causal, i].sum(), rtol=1e-12, atol=1e-12)
                v = np.sum(w[causal, i] * (t_out[b, i] - t[b, causal]))
                assert abs(v - 1.0) < 1e-10
                assert np.all(t[b, causal] <= t_out[b, i])


@pytest.mark.parametrize("ties", [True, False])
def test_numba_forward_backward_equal_numpy(ties):
    rng = np.random.default_rng(2)
    t = _inputs(rng, 10, 50, ties=ties)
    w = rng.normal(0.05, 0.1, (50, 30))
    a = kernels.forward(t, w, 1.0, T_END)
    b = kernels_ref.forward(t, w, 1.0, T_END)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    for x, y in zip(a[1:], b[1:]):
        if x.dtype.kind == "i":
            np.testing.assert_array_equal(x[:, :] if x.ndim > 1 else x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)
    delta = rng.normal(size=(10, 30))
    t_f = np.where(np.isfinite(a[0]), a[0], T_END)
    g1 = kernels.backward(t, w, a[1], a[3], a[4], t_f, delta, 2)
    g2 = kernels_ref.backward(t, w, b[1], b[3], b[4], t_f, delta)
    for x, y in zip(g1, g2):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


def _loss(weights, t, labels, model, loss_cfg):
    states = network.forward(weights, t, model)
    value, delta = network.output_loss(states[-1].t_out, labels, model, loss_cfg)
    return value.sum(), delta, states


def test_gradients_match_finite_differences_every_layer():
    rng = np.random.default_rng(3)
    model = ModelConfig(layers=(20, 15, 12, 5), t_end=T_END)
    loss_cfg = LossConfig(tau_soft=0.5, gamma_t=1e-2, t_ref=2.0)
    weights = network.init_weights(model.layers, 4.0, 1.5, 3)
    t = rng.uniform(0.0, 1.0, (6, 20))
    labels = rng.integers(0, 5, 6)
    value, delta, states = _loss(weights, t, labels, model, loss_cfg)
    assert np.isfinite(states[-1].t_out).all()  # the silent-output pseudo-gradient is not a derivative
    grads, _ = network.gradients(weights, states, delta, model)
    h = 1e-6
    for l, w in enumerate(weights):
        for _ in range(25):
            i, j = rng.integers(w.shape[0]), rng.integers(w.shape[1])
            plus = [x.copy() for x in weights]
            minus = [x.copy() for x in weights]
            plus[l][i, j] += h
            minus[l][i, j] -= h
            fd = (_loss(plus, t, labels, model, loss_cfg)[0] - _loss(minus, t, labels, model, loss_cfg)[0]) / (2 * h)
            assert abs(fd - grads[l][i, j]) <= 1e-6 * max(1.0, abs(fd)), (l, i, j, fd, grads[l][i, j])


def test_silent_output_gradient_raises_potential_at_window_end():
    """A silent output neuron the loss wants earlier gets weight updates that raise v(t_end)."""
    rng = np.random.default_rng(4)
    model = ModelConfig(layers=(10, 3), t_end=T_END)
    w = [rng.normal(0.0, 0.01, (10, 3))]
    t = rng.uniform(0.0, 1.0, (1, 10))
    states = network.forward(w, t, model)
    assert not np.isfinite(states[-1].t_out).any()
    delta = np.array([[1.0, 0.0, 0.0]])  # dL/dt > 0: the loss wants neuron 0 earlier
    grads, _ = network.gradients(w, states, delta, model)
    step = -grads[0][:, 0]
    dv_end = (step * (T_END - t[0])).sum()   # change of v_0(t_end) along the descent direction
    assert dv_end > 0
    assert np.all(grads[0][:, 1:] == 0)
