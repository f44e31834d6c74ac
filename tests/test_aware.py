"""hwmodel.aware.ChipTraining: the chip as training sees it (model units), its draws per step and
its pull-back of the gradients (exact where the chain is differentiable, straight-through across
quantisation and exact wires)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from hwmodel import chip
from hwmodel.aware import ChipTraining
from hwmodel.behavioural import circuits, fire
from hwmodel.config import HardwareConfig
from hwmodel.mapping import map_model
from infra.config import PRESETS_DIR, load_config
from tests.finite_diff import weight_differences
from training.config import ModelConfig
from training.leak_math import phi_np

MODEL = ModelConfig(layers=(12, 6, 3))
IDEAL = load_config(PRESETS_DIR / "hw" / "ideal.yaml", HardwareConfig, section="hw")


def _weights(seed=0, shapes=((12, 6), (6, 3))):
    rng = np.random.default_rng(seed)
    return [rng.normal(0.15, 0.4, s) for s in shapes]


def _loss(view, layers, gw, gl):
    return sum(float((gw[l] * layer.w).sum()) + (float((gl[l] * layer.lam).sum()) if layer.lam is not None else 0.0)
               for l, layer in enumerate(layers))


def test_the_ideal_integrator_is_the_model_itself_and_pulls_back_the_identity():
    w = _weights()
    view = ChipTraining(IDEAL, MODEL)
    for layers in (view.nominal(w), view.draw(w, 5)):
        for layer, wl in zip(layers, w):
            assert np.allclose(layer.w, wl, rtol=1e-12, atol=0) and layer.ideal and layer.delay == 0
        g = [np.random.default_rng(1).normal(size=x.shape) for x in w]
        for p, gl in zip(view.pull_back(w, layers, g, [None, None]), g):
            assert np.allclose(p, gl, rtol=1e-12, atol=1e-15)


def test_a_passive_layer_leaks_tau_g_tot_over_c_and_fires_when_the_behavioural_model_does():
    """Nominal layers against the design map_model writes: lam = tau G_tot / C_l, and the firing
    times of dv/dt = sum w - lam v (solved here independently, by root finding on the closed form)
    are the behavioural model's times / tau_s (delay included)."""
    hw = IDEAL.with_(neuron="passive", scale_by="capacitance", v_th_v=0.01, comparator_offset_v=0.001,
                     comparator_delay_s=2e-8, g_min_s=1e-8, g_max_s=1e-6, time_scale_s=1e-7)
    w = _weights(2)
    design = map_model(w, MODEL, hw)
    layers = ChipTraining(hw, MODEL).nominal(w)
    tau = hw.time_scale_s
    for l, layer in enumerate(layers):
        g_tot = (design.g_pos[l] + design.g_neg[l]).sum(axis=0)
        assert np.allclose(layer.lam, tau * g_tot / design.c_mem_f[l], rtol=1e-12)
        assert np.allclose(layer.v_th, MODEL.v_th * (1 + 0.001 / design.v_th_v[l]), rtol=1e-12)
        assert layer.delay == pytest.approx(0.2)
    t_in = np.random.default_rng(3).uniform(0, MODEL.t_in, (5, 12))
    t_in[:, :2] = np.inf
    circ = circuits(design)[0]
    t_hw = fire(circ, t_in * tau, design.t_end_s, hw.comparator_delay_s, seed=0) / tau
    layer = layers[0]
    fired = 0
    for b in range(5):
        for i in range(6):
            def v(t):
                arrived = t_in[b] < t
                return float((layer.w[arrived, i] * phi_np(layer.lam[i], t - t_in[b][arrived])).sum()) - layer.v_th[i]
            grid = np.linspace(0, MODEL.t_end - layer.delay, 4001)
            above = np.nonzero([v(t) > 0 for t in grid])[0]
            want = np.inf if not len(above) else brentq(v, grid[above[0] - 1], grid[above[0]], xtol=1e-14) + layer.delay
            fired += np.isfinite(want)
            assert (np.isinf(want) and np.isinf(t_hw[b, i])) or abs(want - t_hw[b, i]) < 1e-9, (b, i)
    assert 0 < fired < 30


SMOOTH = IDEAL.with_(neuron="passive", scale_by="capacitance", v_th_v=0.01, g_min_s=1e-8, g_max_s=1e-6,
                     time_scale_s=1e-7, full_scale_weight=0.6, clip_weights=True, prog_sigma=0.1,
                     read_noise_rel=0.05, comparator_offset_sigma_v=0.002)


@pytest.mark.parametrize("hw", [SMOOTH, SMOOTH.with_(neuron="integrator", scale_by="threshold", c_mem_f=1e-12, opamp_gain=50.0),
                                SMOOTH.with_(r_wire_row_ohm=2e4, r_wire_col_ohm=1e4, wire_model="first-order")],
                         ids=["passive", "finite-gain", "first-order-wires"])
def test_pull_back_is_the_gradient_of_the_drawn_chip(hw):
    """Fixed draws (one step), no quantisation or stuck cells: pull_back against central finite
    differences of sum(Gw * w_eff) + sum(Gl * lam), clipped weights (|w| > 0.6) included (0)."""
    w = _weights(4)
    assert (np.abs(w[0]) > 0.6).any()
    view = ChipTraining(hw, MODEL)
    rng = np.random.default_rng(5)
    gw = [rng.normal(size=x.shape) for x in w]
    gl = [rng.normal(size=x.shape[1]) for x in w]
    layers = view.draw(w, 7)
    got = view.pull_back(w, layers, gw, gl)
    f = lambda ws: _loss(view, view.draw(ws, 7), gw, gl)   # noqa: E731
    for l in range(2):
        flat = np.arange(w[l].size)
        fd = weight_differences(f, w, l, flat, 1e-6)
        assert np.allclose(got[l].ravel(), fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max()), l
        assert np.all(got[l][np.abs(w[l]) > 0.6] == 0)


def test_quantisation_is_straight_through_and_stuck_cells_pass_nothing():
    """With bits set the pull-back is the analog chain's (dq/dg := 1) for the same draws; a weight
    whose cell is stuck gets no gradient through it."""
    hw = SMOOTH.with_(read_noise_rel=0.0, stuck_on_fraction=0.2, stuck_off_fraction=0.2)
    w = _weights(6)
    gw = [np.ones_like(x) for x in w]
    gl = [np.full(x.shape[1], 0.3) for x in w]
    analog = ChipTraining(hw, MODEL)
    quant = ChipTraining(hw.with_(bits=3), MODEL)
    lq = quant.draw(w, 2)
    assert not np.allclose(lq[0].w, analog.draw(w, 2)[0].w)       # the levels are used forward
    ga, gq = analog.pull_back(w, analog.draw(w, 2), gw, gl), quant.pull_back(w, lq, gw, gl)
    for a, q in zip(ga, gq):
        assert np.allclose(a, q, rtol=1e-12, atol=0)
    mult, on, off = chip.cell_factors(w[0].shape, hw, chip.training_instance(2), 0)
    stuck = on | off
    dead = ((w[0] > 0) & stuck[0]) | ((w[0] < 0) & stuck[1])
    assert dead.any() and np.all(gq[0][dead] == 0) and np.all(gq[0][~dead & (np.abs(w[0]) <= 0.6)] != 0)


def test_steps_draw_fresh_chips_on_streams_no_evaluation_chip_uses():
    hw = SMOOTH.with_(stuck_on_fraction=0.01)
    w = _weights(7)
    view = ChipTraining(hw, MODEL)
    a, b, c = view.draw(w, 3), view.draw(w, 3), view.draw(w, 4)
    assert all(np.array_equal(x.w, y.w) and np.array_equal(x.v_th, y.v_th) for x, y in zip(a, b))
    assert not np.allclose(a[0].w, c[0].w) and not np.allclose(a[0].v_th, c[0].v_th)
    train = chip.cell_factors((12, 6), hw, chip.training_instance(3), 0)[0]
    for trial in range(4):
        assert not np.allclose(train, chip.cell_factors((12, 6), hw, trial, 0)[0])
    nominal = view.nominal(w)
    assert nominal[0].v_th is None and np.array_equal(nominal[0].w, view.nominal(w)[0].w)


def test_chip_draws_of_evaluation_trials_are_unchanged():
    """program / comparator_offsets draw exactly what they drew before training instances existed."""
    hw = SMOOTH.with_(stuck_on_fraction=0.05, stuck_off_fraction=0.05)
    g = np.random.default_rng(8).uniform(1e-8, 1e-6, (12, 6))
    for trial in (0, 3):
        for cell in (0, 1):
            ss = lambda p: np.random.default_rng(np.random.SeedSequence(hw.seed, spawn_key=(trial, 1, p)))  # noqa: E731
            want = g * np.exp(hw.prog_sigma * ss(0).standard_normal((2, 12, 6))[cell])
            u = ss(1).random((2, 12, 6))[cell]
            want = np.where(u < 0.05, hw.g_max_s, want)
            want = np.where((u >= 0.05) & (u < 0.1), hw.g_min_s, want)
            assert np.array_equal(chip.program(g, hw, trial, 1, cell), want)
        off = hw.comparator_offset_v + hw.comparator_offset_sigma_v * np.random.default_rng(
            np.random.SeedSequence(hw.seed, spawn_key=(trial, 1, 2))).standard_normal(6)
        assert np.array_equal(chip.comparator_offsets(6, hw, trial, 1), off)


def test_exact_wires_are_a_refreshed_ratio_used_straight_through():
    """With exact wires the nominal layer's drive is the exact wire model's (at the refresh), and the
    pull-back scales the wire-free one by the per-cell ratio."""
    hw = IDEAL.with_(r_wire_row_ohm=300.0, r_wire_col_ohm=300.0)
    w = _weights(9)
    view = ChipTraining(hw, MODEL)
    design = map_model(w, MODEL, hw)
    circ = circuits(design)
    layers = view.nominal(w)
    for l in range(2):
        want = MODEL.v_th * hw.time_scale_s * circ[l].drive_a / (design.c_mem_f[l] * design.v_th_v[l])
        assert np.allclose(layers[l].w, want, rtol=1e-10)
    assert not np.allclose(layers[0].w, w[0], rtol=1e-3)
    gw = [np.ones_like(x) for x in w]
    plain = ChipTraining(IDEAL, MODEL)
    g_wires = view.pull_back(w, layers, gw, [None, None])
    g_plain = plain.pull_back(w, plain.nominal(w), gw, [None, None])
    r_pos, r_neg, _ = view._wire_ratios[0]
    assert np.allclose(g_wires[0], np.where(w[0] > 0, r_pos, r_neg) * g_plain[0], rtol=1e-12)
    moved = [x + 0.3 * y for x, y in zip(w, _weights(10))]    # (a scaled copy maps to the same cells)
    before = view.nominal(moved)[0].w
    view.refresh(moved)
    assert not np.allclose(view.nominal(moved)[0].w, before, rtol=1e-9)


def test_the_passive_leak_is_the_threshold_fraction_of_v_read_times_the_column_weight():
    """lam_i = (V_th / V_read) (sum_j |w_ij| + 2 K k g_min) / v_th (docs/hwmodel.md, "Passive"),
    whatever the time scale and conductance window (they only set C)."""
    w = _weights(11)
    for tau, g_max in ((1e-7, 1e-6), (1e-5, 1e-4)):
        hw = IDEAL.with_(neuron="passive", scale_by="capacitance", v_th_v=0.01, time_scale_s=tau,
                         g_min_s=g_max / 100, g_max_s=g_max)
        layers = ChipTraining(hw, MODEL).nominal(w)
        for l, (x, layer) in enumerate(zip(w, layers)):
            k = np.abs(x).max() / (hw.g_max_s - hw.g_min_s)
            want = (0.01 / 0.2) * (np.abs(x).sum(axis=0) + 2 * x.shape[0] * k * hw.g_min_s) / MODEL.v_th
            assert np.allclose(layer.lam, want, rtol=1e-12)
