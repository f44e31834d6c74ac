"""The TTFS layer kernels: exact firing times, exact gradients, numba twin equal to numpy."""
import numpy as np
import pytest

from training import kernels, kernels_ref, network
from training.config import LossConfig, ModelConfig
from training.encoding import encode_pixels

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


def test_sort_inputs_gives_the_order_of_a_stable_mergesort():
    """The partition sort (inputs below the largest finite time merge-sorted alone, the rest in
    index order) against np.argsort(kind="mergesort"): ties at the top (MNIST's black pixels),
    silent inputs (inf), and the cases that need the fallback (-inf, nan, nothing finite)."""
    rng = np.random.default_rng(7)
    cases = [_inputs(rng, 1, 60)[0], _inputs(rng, 1, 60, silent=0.0)[0], np.round(rng.uniform(0, 1, 50), 1),
             np.full(9, np.inf), np.array([np.inf, -np.inf, 0.5, np.nan, 0.5, np.inf, -np.inf]),
             np.array([2.0]), np.array([np.nan, 1.0, np.nan, np.inf])]
    mnist_like = encode_pixels(rng.integers(0, 256, (1, 784)) * (rng.random((1, 784)) < 0.2), 1.0)[0]
    cases.append(mnist_like)
    for t in cases:
        order = np.empty(len(t), np.int64)
        nv = kernels._sort_inputs(t, T_END, order)
        want = np.argsort(t, kind="mergesort")
        np.testing.assert_array_equal(order, want)
        assert nv == int((t < T_END).sum())
    assert (mnist_like == 1.0).sum() > 500


@pytest.mark.parametrize("n", [1, 2, 31, 32, 33, 150, 700])
def test_stable_sort_low_equals_a_stable_argsort(n):
    """The bucket sort of the inputs below the top time against np.argsort(kind="mergesort") on
    spread, clustered (few distinct times, as MNIST's 256 levels), all-tied, two-valued, -inf and
    extreme-range times, at sizes on both sides of the insertion-sort cut-off."""
    rng = np.random.default_rng(n)
    cases = [rng.uniform(0, 1, n), np.round(rng.uniform(0, 1, n), 2), np.full(n, 0.3),
             np.where(rng.random(n) < 0.5, 0.1, 0.9), rng.exponential(1.0, n) ** 4,
             np.where(rng.random(n) < 0.1, -np.inf, rng.uniform(0, 1, n)),
             np.concatenate([[1e-300, 1e300], rng.uniform(0, 1, n)])[:n]]
    for t in cases:
        low = np.arange(n)
        order = np.full(n + 3, -7, np.int64)
        kernels._stable_sort_low(t, low, order)
        np.testing.assert_array_equal(order[:n], np.argsort(t, kind="mergesort"))
        assert (order[n:] == -7).all()
    sub = np.flatnonzero(rng.random(3 * n) < 0.5)           # a subset of the inputs, as _sort_inputs passes
    t = np.round(rng.uniform(0, 1, 3 * n), 2)
    order = np.empty(len(sub), np.int64)
    kernels._stable_sort_low(t, sub, order)
    np.testing.assert_array_equal(order, sub[np.argsort(t[sub], kind="mergesort")])


def test_backward_shared_tie_row_and_any_split_over_neurons():
    """MNIST-like inputs (every input arrives, most tied at t_in = 1): the neurons firing after
    the tie group take it as one shared row (the path is taken); the result equals the numpy twin,
    and splitting the neurons over 1, 2, 3 or 7 blocks (threads) gives the same bits."""
    rng = np.random.default_rng(8)
    t = _inputs(rng, 12, 80, ties=True, silent=0.0)
    w = rng.normal(0.04, 0.1, (80, 33))
    t_out, order, n_valid, kf, slope = kernels.forward(t, w, 1.0, T_END)
    shared = [kernels._shared_group(t[b], order[b], kf[b], 80) for b in range(12)]
    assert sum(kg < km for km, kg in shared) >= 6
    assert ((kf > 0) & (kf < 80)).sum() > 20          # partial causal sets too
    delta = rng.normal(size=t_out.shape)
    t_f = np.where(np.isfinite(t_out), t_out, T_END)
    want = kernels_ref.backward(t, w, order, kf, slope, t_f, delta)
    got = [kernels.backward(t, w, order, kf, slope, t_f, delta, c) for c in (1, 2, 3, 7)]
    for gw, gt in got:
        np.testing.assert_allclose(gw, want[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gt, want[1], rtol=1e-10, atol=1e-12)
        assert np.array_equal(gw, got[0][0]) and np.array_equal(gt, got[0][1])


def test_fused_adam_step_equals_the_numpy_expressions():
    """optim.Adam's fused loop against the numpy statements it replaced, bit for bit, on an
    array of PARALLEL_MIN_SIZE weights or more (the parallel loop when numba has more than one
    thread) and a smaller one (always the serial twin)."""
    from training.optim import PARALLEL_MIN_SIZE, Adam
    rng = np.random.default_rng(9)
    shapes = [(PARALLEL_MIN_SIZE // 100 + 1, 100), (20, 4)]
    w_ref = [rng.normal(size=s) for s in shapes]
    w = [x.copy() for x in w_ref]
    start = w_ref[0].copy()
    m_ref = [np.zeros(s) for s in shapes]
    v_ref = [np.zeros(s) for s in shapes]
    opt = Adam(shapes, 3e-3, lr_scales=[1.0, 0.25])
    for step in range(1, 21):
        grads = [rng.normal(size=s) * 10.0 ** rng.uniform(-8, 2) for s in shapes]
        opt.step(w, grads)
        c1, c2 = 1.0 - 0.9 ** step, 1.0 - 0.999 ** step
        for x, g, m, v, scale in zip(w_ref, grads, m_ref, v_ref, [1.0, 0.25]):
            m *= 0.9
            m += (1.0 - 0.9) * g
            v *= 0.999
            v += (1.0 - 0.999) * g * g
            x -= scale * 3e-3 * (m / c1) / (np.sqrt(v / c2) + 1e-8)
    for a, b in zip(w + opt.m + opt.v, w_ref + m_ref + v_ref):
        assert np.array_equal(a, b)
    assert not np.array_equal(w[0], start)     # the steps moved the weights


def test_firing_order_and_hinted_input_order_are_the_stable_sort():
    """forward_ordered's firing order is the stable argsort of t_out (ties among the tied inputs'
    neurons included), and a layer given a hint orders its inputs as the stable sort does whether
    the hint is that order, a wrong one (reversed, a repeated index) or absent."""
    rng = np.random.default_rng(7)
    t = _inputs(rng, 12, 60)
    w1, w2 = rng.normal(0.02, 0.1, (60, 40)), rng.normal(0.08, 0.1, (40, 20))
    out1 = kernels.forward_ordered(t, w1, 1.0, T_END)
    t1 = out1[0]
    assert np.isfinite(t1).mean() > 0.3 and (~np.isfinite(t1)).any()
    np.testing.assert_array_equal(out1[5], np.argsort(t1, axis=1, kind="mergesort"))
    np.testing.assert_array_equal(kernels_ref.forward_ordered(t, w1, 1.0, T_END)[5], out1[5])
    want = kernels.forward(t1, w2, 1.0, T_END)
    np.testing.assert_array_equal(want[1], np.argsort(t1, axis=1, kind="mergesort"))
    repeated = out1[5].copy()
    repeated[:, 1] = repeated[:, 0]
    for hint in (out1[5], out1[5][:, ::-1].copy(), repeated):
        got = kernels.forward_ordered(t1, w2, 1.0, T_END, hint)
        for x, y in zip(got[:5], want):
            np.testing.assert_array_equal(x, y)


def test_a_layer_firing_together_leaves_the_order_to_the_next_layer():
    """More than _GROUP_MAX neurons firing in one segment (here after the tie group at t = 1):
    no firing order (-1 first), and the next layer sorts its inputs itself."""
    rng = np.random.default_rng(9)
    t = np.where(rng.random((4, 30)) < 0.5, 1.0, rng.uniform(0.0, 1.0, (4, 30)))
    w = np.full((30, 3 * kernels._GROUP_MAX), 0.2) + rng.normal(0.0, 0.01, (30, 3 * kernels._GROUP_MAX))
    t1, _, _, _, _, fire_order = kernels.forward_ordered(t, w, 1.0, T_END)
    assert np.all(fire_order[:, 0] == -1) and np.isfinite(t1).all()
    w2 = rng.normal(0.01, 0.02, (w.shape[1], 5))
    got = kernels.forward_ordered(t1, w2, 1.0, T_END, fire_order)
    np.testing.assert_array_equal(got[1], np.argsort(t1, axis=1, kind="mergesort"))
    for x, y in zip(got[:5], kernels_ref.forward(t1, w2, 1.0, T_END)):
        np.testing.assert_allclose(x, y, rtol=1e-12)


def test_network_forward_chains_layers_as_separate_kernel_calls():
    rng = np.random.default_rng(8)
    model = ModelConfig(layers=(50, 30, 30, 10))
    weights = network.init_weights(model.layers, 2.0, 1.0, 3)
    t = _inputs(rng, 9, 50)
    states = network.forward(weights, t, model)
    for s, w in zip(states, weights):
        want = kernels.forward(s.t_in, w, model.v_th, model.t_end)
        for x, y in zip((s.t_out, s.order, s.n_valid, s.kf, s.slope), want):
            np.testing.assert_array_equal(x, y)
    assert all(np.isfinite(s.t_out).any() for s in states)
