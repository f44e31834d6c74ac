"""Gating (hw.gating decision / column) and the integrator's output clamp.

The behavioural model: firing times up to t_stop and predictions are the ungated ones (integrator
and passive, both schemes, read noise, first-order wires). The energy model: gated never above
ungated per image, column never above decision; its gated terms and the clamp against brute-force
time stepping of the column currents and voltages; numba against the numpy twin; gating none and an
unclamped op-amp leave the ungated formulas bit for bit; column gating with exact wires is refused.
"""
import dataclasses

import numpy as np
import pytest

from energy import kernels, kernels_ref
from energy.config import EnergyConfig
from energy.model import (COMPONENTS, EnergyCircuit, conduction_exact, design_energy, energy_per_image,
                          remaining_time)
from hwmodel import behavioural
from hwmodel.config import HardwareConfig
from hwmodel.mapping import map_model
from infra.config import load_config
from infra.errors import ConfigError
from training.config import ModelConfig
from training.network import predict

INF = np.inf
US = 1e-6


def _design(preset, gating="none", guard_s=0.0, **hw):
    """A 60-12-5 design with random weights on a preset chip (read noise on, first-order wires)."""
    changes = {"wire_model": "first-order", "read_noise_rel": 0.05, **hw}
    hw = load_config(preset, HardwareConfig, section="hw").with_(gating=gating, decision_guard_s=guard_s, **changes)
    rng = np.random.default_rng(3)
    w = [rng.normal(2.5 / 60, 0.05, (60, 12)), rng.normal(0.3, 0.3, (12, 5))]
    return map_model(w, ModelConfig(layers=(60, 12, 5)), hw)


def _inputs(design, n=60, seed=4):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, (n, 60))
    t[t > 0.85] = INF
    return t * design.time_scale_s


CHIPS = [("default", {}), ("default", {"scheme": "differential"}), ("passive", {})]


@pytest.mark.parametrize("preset,extra", CHIPS)
@pytest.mark.parametrize("gating", ["decision", "column"])
def test_firing_times_up_to_t_stop_and_predictions_are_the_ungated_ones(preset, extra, gating):
    ungated_design = _design(preset, **extra)
    t_in = _inputs(ungated_design)
    ungated = behavioural.layer_times(ungated_design, t_in)
    silenced = 0
    for guard in (0.0, 0.3 * ungated_design.time_scale_s):
        design = _design(preset, gating, guard, **extra)
        gated = behavioural.layer_times(design, t_in)
        first = ungated[-1].min(axis=1)
        assert np.isfinite(first).mean() > 0.5, "the case must decide on most images"
        t_stop = np.minimum(design.t_end_s, first + guard)
        for u, g in zip(ungated, gated):
            np.testing.assert_array_equal(g, np.where(u > t_stop[:, None], INF, u))
            silenced += int((np.isfinite(u) & ~np.isfinite(g)).sum())
        np.testing.assert_array_equal(predict(gated[-1]), predict(ungated[-1]))
    assert silenced > 0, "gating must silence some late neurons here, or the test shows nothing"


@pytest.mark.parametrize("preset,extra", CHIPS)
def test_hw_eval_accuracy_is_unchanged_by_gating(preset, extra, monkeypatch):
    """evaluate() on byte images: the same accuracy and agreement with the model, fewer spikes."""
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (80, 60)).astype(np.uint8)
    labels = rng.integers(0, 5, 80)
    out = {g: behavioural.evaluate(_design(preset, g, **extra), images, labels, progress=False)
           for g in ("none", "decision", "column")}
    for g in ("decision", "column"):
        assert out[g]["accuracy"] == out["none"]["accuracy"]
        assert out[g]["agreement_with_model"] == out["none"]["agreement_with_model"]
        assert out[g]["spikes_per_neuron_mean"] <= out["none"]["spikes_per_neuron_mean"]


def test_gating_none_returns_the_times_unchanged():
    rng = np.random.default_rng(1)
    times = [rng.uniform(0, 4e-6, (5, 3)), rng.uniform(0, 4e-6, (5, 2))]
    got, t_stop = behavioural.gate_times(times, 4e-6, "none", 1e-7)
    assert all(a is b for a, b in zip(got, times))
    np.testing.assert_array_equal(t_stop, 4e-6)
    got, t_stop = behavioural.gate_times(times, 4e-6, "decision", 1e-7)
    np.testing.assert_array_equal(t_stop, np.minimum(4e-6, times[-1].min(axis=1) + 1e-7))
    again, _ = behavioural.gate_times(got, 4e-6, "decision", 1e-7)     # idempotent
    for a, b in zip(again, got):
        np.testing.assert_array_equal(a, b)


def test_column_gating_with_exact_wires_is_refused_naming_the_key():
    hw = HardwareConfig(r_wire_row_ohm=1.0, wire_model="exact")
    with pytest.raises(ConfigError, match=r"hw\.gating.*first-order.*decision"):
        hw.with_(gating="column")
    for ok in ({"wire_model": "first-order"}, {"r_wire_row_ohm": 0.0}):
        assert hw.with_(gating="column", **ok).gating == "column"
    assert hw.with_(gating="decision").gating == "decision"
    with pytest.raises(ConfigError, match="hw.gating"):
        HardwareConfig(gating="sometimes")


# -- energy ---------------------------------------------------------------------------------------

def _totals(design, cfg, images):
    res, pred = design_energy(design, cfg, images, progress=False)
    return res, pred


@pytest.mark.parametrize("preset,extra", CHIPS + [("default", {"wire_model": "exact", "r_wire_row_ohm": 1.2}),
                                                   ("passive", {"wire_model": "exact", "r_wire_row_ohm": 1.2})])
def test_gated_energy_never_exceeds_ungated_and_column_never_exceeds_decision(preset, extra):
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, (40, 60)).astype(np.uint8)
    exact = extra.get("wire_model") == "exact"
    gatings = ("none", "decision") if exact else ("none", "decision", "column")
    res = {}
    for g in gatings:
        hw = dict(extra, read_noise_rel=0.0) if exact else extra
        res[g] = _totals(_design(preset, g, **hw), EnergyConfig(), images)
    for g in gatings[1:]:
        np.testing.assert_array_equal(res[g][1], res["none"][1])      # the predictions
        decided = res["none"][0].output_fired
        assert decided.mean() > 0.5
        assert np.all(res[g][0].t_stop_s[decided] < res["none"][0].t_stop_s[decided])
    assert np.all(res["decision"][0].total_j <= res["none"][0].total_j * (1 + 1e-12))
    assert res["decision"][0].total_j.sum() < 0.95 * res["none"][0].total_j.sum()
    if "column" in res:
        assert np.all(res["column"][0].total_j <= res["decision"][0].total_j * (1 + 1e-12))
        assert res["column"][0].total_j.sum() < res["decision"][0].total_j.sum()


def test_a_guard_beyond_the_window_is_no_gating():
    """decision gating with t_stop = t_end for every image reports what gating none does (through the
    gated kernels: the passive and finite-gain paths are checked against the ungated ones)."""
    rng = np.random.default_rng(9)
    images = rng.integers(0, 256, (20, 60)).astype(np.uint8)
    for preset, extra in CHIPS:
        d_none = _design(preset, **extra)
        d_late = _design(preset, "decision", 2 * d_none.t_end_s, **extra)
        for cfg in (EnergyConfig(swing_over_threshold=np.inf), EnergyConfig()):
            a, _ = _totals(d_none, cfg, images)
            b, _ = _totals(d_late, cfg, images)
            np.testing.assert_allclose(b.energy_j, a.energy_j, rtol=1e-9, atol=1e-24)
            np.testing.assert_allclose(b.conduction_spike_count_j, a.conduction_spike_count_j, rtol=1e-12)


def _circuit(neuron="integrator", gain=None, gating="decision", guard_s=0.0, k=5, n=3, seed=0):
    rng = np.random.default_rng(seed)
    gp0, gn0 = rng.uniform(1e-6, 1e-4, (k, n)), rng.uniform(1e-6, 1e-4, (k, n))
    gp1, gn1 = rng.uniform(1e-6, 1e-4, (n, 2)), rng.uniform(1e-6, 1e-4, (n, 2))
    return EnergyCircuit(neuron, "dual-rail", 0.2, 4 * US, (1e-11, 2e-11), [gp0, gp1], [gn0, gn1],
                         v_th_v=(0.05, 0.05), opamp_gain=gain, gating=gating, decision_guard_s=guard_s)


def _step_layer(t_rows, gp, gn, c, v_read, t_col, swing, gain, passive, steps=25_000):
    """Brute force: Euler steps of one layer's columns, cell (j, i) conducting from t_j to t_col_i.
    Integrator: c_f dy/dt = S - (G/A) y with the summing node at y/A, any charge that would carry |y|
    past +swing goes into the clamp at the swing (one-sided: unbounded below); passive: C dV/dt = sum g (V_row - V). Returns the
    rows' energy, the state at t_col and the clamp energy."""
    t_last = float(np.max(t_col))
    dt = t_last / steps
    n = gp.shape[1]
    d = v_read * (gp - gn)
    g_cell = gp + gn
    a = np.inf if gain is None else gain
    c_f = c * (1 + 1 / a) if not passive else c
    node = 1.0 if passive else 1 / a
    y = np.zeros(n)
    e_rows, e_clamp = 0.0, 0.0
    for m in range(steps):
        t = (m + 0.5) * dt
        on = (t_rows[:, None] <= t) & (t < t_col[None, :])          # (K, n) conducting cells
        live = t < t_col
        s = (d * on).sum(axis=0)
        g_leak = g_cell.sum(axis=0) * node      # every cell of a connected column, idle rows at 0 V too
        e_rows += dt * float((v_read ** 2 * g_cell * on).sum() - (node * d * on * y[None, :]).sum())
        y_new = np.where(live, y + dt * (s - g_leak * y) / c_f, y)
        over = y_new - swing                    # one-sided: held at +swing, unbounded below
        excess = np.where(over > 0, over, 0.0)
        e_clamp += float((swing * c_f * excess)[excess > 0].sum()) if np.isfinite(swing) else 0.0
        y = np.where(over > 0, swing, y_new)
    return e_rows, y, e_clamp


@pytest.mark.parametrize("case", ["ideal-clamped", "finite-gain-clamped", "passive"])
@pytest.mark.parametrize("gating", ["decision", "column"])
def test_gated_terms_and_the_clamp_match_time_stepping(case, gating):
    """One layer, one image: conduction, capacitor and clamp (energy_per_image, numba) against Euler
    steps of the circuit at dt = t_stop / 2.5e4; tolerance 1e-3 relative (first order in dt: about 1e-5 here)."""
    passive = case == "passive"
    gain = 30.0 if case == "finite-gain-clamped" else None
    circ = _circuit("passive" if passive else "integrator", gain, gating, guard_s=0.2 * US)
    cfg = EnergyConfig(swing_over_threshold=5.0)      # Vs = 0.25 V: some columns clamp, some do not
    t_in = np.array([[0.0, 0.3 * US, 0.7 * US, 1.5 * US, INF]])
    t_l0 = np.array([[1.0 * US, INF, 2.5 * US]])
    t_l1 = np.array([[2.0 * US, INF]])
    r = energy_per_image(circ, cfg, t_in, [t_l0, t_l1])
    t_stop = 2.0 * US + 0.2 * US
    assert r.t_stop_s[0] == pytest.approx(t_stop, rel=1e-15)
    t_col = np.minimum(t_l0[0], t_stop) if gating == "column" else np.full(3, t_stop)
    swing = INF if passive else 5.0 * 0.05
    e_rows, y, e_clamp = _step_layer(t_in[0], circ.g_pos[0], circ.g_neg[0], 1e-11, 0.2, t_col, swing, gain, passive)
    c_f = 1e-11 * (1 + 1 / gain) if gain else 1e-11
    cap = 0.5 * c_f * (y ** 2).sum()
    cond = e_rows - cap if passive else e_rows
    comp = {c: r.energy_j[0, 1, COMPONENTS.index(c)] for c in ("capacitor", "clamp")}
    np.testing.assert_allclose(r.energy_j[0, 0, COMPONENTS.index("conduction")], cond, rtol=1e-3)
    np.testing.assert_allclose(comp["capacitor"], cap, rtol=1e-3)
    if passive:
        assert comp["clamp"] == 0.0
    else:
        assert e_clamp > 0.05 * cap and np.any(y < 0.99 * swing) and np.any(y >= swing), "some columns clamp, some not"
        np.testing.assert_allclose(comp["clamp"], e_clamp, rtol=1e-3)
    # the static power stops at t_stop; the late neuron (2.5 us) does not fire, the output's second neuron never
    p = 1e-6 + (0.0 if passive else 10e-6)
    np.testing.assert_allclose(r.energy_j[0, 1, COMPONENTS.index("static")], p * 3 * t_stop, rtol=1e-14)
    np.testing.assert_array_equal(r.spikes[0], [4, 1, 1])


def test_the_clamp_comes_off_when_the_current_reverses_and_leaves_the_membrane_unbounded_below():
    """One neuron: +I for 1 us (clamped at +Vs), then -I: y comes off the clamp and falls through 0
    and past -Vs unclamped (the clamp is one-sided), then a third row drives it back up onto +Vs."""
    gp = np.array([[4e-5], [1e-6], [2e-4]])
    gn = np.array([[1e-6], [9e-5], [1e-6]])
    c, v = 1e-11, 0.2
    t = np.array([[0.0, 1 * US, 3 * US]])
    swing = np.array([0.06])
    e, y, clamp, _ = kernels.column_energy(t, v * (gp - gn), gp + gn, np.zeros(1), np.full(1, c), v,
                                           np.full((1, 1), 4 * US), 0.0, swing)
    i1 = v * (gp[0, 0] - gn[0, 0])
    i2 = i1 + v * (gp[1, 0] - gn[1, 0])
    i3 = i2 + v * (gp[2, 0] - gn[2, 0])
    assert i1 > 0 > i2 and i3 > 0
    t_hit1 = swing[0] * c / i1
    y3 = swing[0] + i2 * 2 * US / c                 # at 3 us, well below -Vs: not held there
    assert y3 < -2 * swing[0]
    t_hit3 = (swing[0] - y3) * c / i3
    assert t_hit3 < 1 * US
    want = swing[0] * (i1 * (1 * US - t_hit1) + i3 * (1 * US - t_hit3))
    assert y[0, 0] == pytest.approx(0.06, rel=1e-14)
    np.testing.assert_allclose(clamp[0], want, rtol=1e-12)
    e_ref, y_ref, clamp_ref, _ = kernels_ref.column_energy(t, v * (gp - gn), gp + gn, np.zeros(1), np.full(1, c), v,
                                                           np.full((1, 1), 4 * US), 0.0, swing)
    np.testing.assert_allclose([e[0], y[0, 0], clamp[0]], [e_ref[0], y_ref[0, 0], clamp_ref[0]], rtol=1e-12)


def _random_case(seed, n_img=6, k=9, n=5):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 4 * US, (n_img, k))
    t[rng.random(t.shape) < 0.2] = INF
    t[:, 1] = t[:, 0]                       # ties
    gp, gn = rng.uniform(1e-6, 1e-4, (k, n)), rng.uniform(1e-6, 1e-4, (k, n))
    t_col = np.minimum(rng.uniform(0.5 * US, 5 * US, (n_img, n)), 4 * US)
    return t, gp, gn, t_col


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("mode", ["ideal", "finite", "passive"])
def test_column_kernel_numba_equals_numpy_twin(seed, mode):
    t, gp, gn, t_col = _random_case(seed)
    n = gp.shape[1]
    g_leak = {"ideal": np.zeros(n), "finite": (gp + gn).sum(0) / 50, "passive": (gp + gn).sum(0)}[mode]
    node = {"ideal": 0.0, "finite": 1 / 50, "passive": 1.0}[mode]
    swing = np.full(n, INF) if mode == "passive" else np.full(n, 0.02)
    args = (t, 0.2 * (gp - gn), gp + gn, g_leak, np.full(n, 1e-11), 0.2, t_col, node, swing)
    got, want = kernels.column_energy(*args), kernels_ref.column_energy(*args)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-30)
    if mode != "passive":
        assert np.all(got[2] > 0)


@pytest.mark.parametrize("gating", ["decision", "column"])
@pytest.mark.parametrize("neuron,gain", [("integrator", None), ("integrator", 40.0), ("passive", None)])
def test_energy_per_image_numba_equals_numpy_with_gating(gating, neuron, gain):
    circ = _circuit(neuron, gain, gating, guard_s=0.1 * US, k=9, n=5, seed=2)
    t, _, _, _ = _random_case(4, k=9)
    rng = np.random.default_rng(5)
    layers = [np.where(rng.random((6, 5)) < 0.7, rng.uniform(0, 4 * US, (6, 5)), INF),
              np.where(rng.random((6, 2)) < 0.7, rng.uniform(0, 4 * US, (6, 2)), INF)]
    cfg = EnergyConfig(swing_over_threshold=1.2)
    a = energy_per_image(circ, cfg, t, layers, "numba")
    b = energy_per_image(circ, cfg, t, layers, "numpy")
    np.testing.assert_allclose(a.energy_j, b.energy_j, rtol=1e-10, atol=1e-30)
    np.testing.assert_allclose(a.conduction_spike_count_j, b.conduction_spike_count_j, rtol=1e-10, atol=1e-30)


@pytest.mark.parametrize("neuron,gain", [("integrator", None), ("integrator", 40.0), ("passive", None)])
def test_gating_none_and_no_clamp_are_the_ungated_formulas_bit_for_bit(neuron, gain):
    """gating none, swing .inf: every term is what the ungated model's own formulas give, bit for bit
    (conduction_exact, the passive kernel to the window end, 1/2 C V(T)^2, static x T), clamp 0."""
    circ = _circuit(neuron, gain, "none", k=9, n=5, seed=2)
    t, _, _, _ = _random_case(4, k=9)
    rng = np.random.default_rng(5)
    layers = [np.where(rng.random((6, 5)) < 0.7, rng.uniform(0, 4 * US, (6, 5)), INF),
              np.where(rng.random((6, 2)) < 0.7, rng.uniform(0, 4 * US, (6, 2)), INF)]
    cfg = EnergyConfig(swing_over_threshold=np.inf)
    r = energy_per_image(circ, cfg, t, layers)
    T, v = 4 * US, 0.2
    drivers = [t] + layers
    idx = COMPONENTS.index
    p = 1e-6 + (10e-6 if neuron == "integrator" else 0.0)
    for g in range(2):
        gp, gn, c = circ.g_pos[g], circ.g_neg[g], circ.c_mem_f[g]
        g_row = (gp + gn).sum(axis=1)
        if neuron == "integrator" and gain is None:
            cond = conduction_exact(drivers[g], g_row, v, T)
            cap = 0.5 * c * ((remaining_time(drivers[g], T) @ (gp - gn) * (v / c)) ** 2).sum(axis=1)
        elif neuron == "integrator":
            cond, y = kernels.passive_row_energy(drivers[g], v * (gp - gn), g_row, (gp + gn).sum(axis=0) / gain,
                                                 np.full(gp.shape[1], c * (1 + 1 / gain)), v, T, 1.0 / gain)
            cap = 0.5 * c * (1 + 1 / gain) * (y ** 2).sum(axis=1)
        else:
            row_e, vv = kernels.passive_row_energy(drivers[g], v * (gp - gn), g_row, (gp + gn).sum(axis=0),
                                                   np.full(gp.shape[1], c), v, T)
            cap = 0.5 * c * (vv ** 2).sum(axis=1)
            cond = row_e - cap
        np.testing.assert_array_equal(r.energy_j[:, g, idx("conduction")], cond)
        np.testing.assert_array_equal(r.energy_j[:, g + 1, idx("capacitor")], cap)
        np.testing.assert_array_equal(r.energy_j[:, g + 1, idx("static")], p * gp.shape[1] * T)
    assert np.all(r.energy_j[:, :, idx("clamp")] == 0.0)
    np.testing.assert_array_equal(r.t_stop_s, T)
