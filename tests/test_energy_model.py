"""The energy model: hand-computed tiny networks, the passive kernel against time stepping,
the exact and spike-count conduction forms, and monotonicity in the spikes."""
import dataclasses

import numpy as np
import pytest

from energy import kernels, kernels_ref
from energy.config import EnergyConfig
from infra.errors import ConfigError
from energy.model import (COMPONENTS, EnergyCircuit, conduction_exact, conduction_spike_count,
                          energy_per_image)

INF = np.inf
US = 1e-6


def _tiny(neuron="integrator", scheme="dual-rail"):
    """2-2-1: input -> 2 neurons -> 1 neuron, conductances in uS."""
    gp0 = np.array([[10.0, 20.0], [30.0, 5.0]]) * US
    gn0 = np.array([[2.0, 1.0], [4.0, 8.0]]) * US
    gp1 = np.array([[50.0], [7.0]]) * US
    gn1 = np.array([[3.0], [60.0]]) * US
    return EnergyCircuit(neuron=neuron, scheme=scheme, v_read_v=0.2, t_end_s=4 * US, c_mem_f=(1e-10, 2e-10),
                         g_pos=[gp0, gp1], g_neg=[gn0, gn1])


CFG = EnergyConfig(e_comparator_j=50e-15, p_comparator_static_w=1e-6, p_opamp_static_w=10e-6, e_row_driver_j=1e-15,
                   c_wire_per_m_f=0.2e-9, cell_pitch_m=1e-6, v_swing_v=None, swing_over_threshold=np.inf)


@pytest.mark.parametrize("scheme", ["dual-rail", "differential"])
def test_tiny_integrator_network_matches_hand_computation(scheme):
    circ = _tiny(scheme=scheme)
    t_in = np.array([[1 * US, 2 * US]])
    t_l0 = np.array([[2.5 * US, INF]])   # neuron 0 fires, neuron 1 silent
    t_l1 = np.array([[3 * US]])
    r = energy_per_image(circ, CFG, t_in, [t_l0, t_l1])
    V, T, c_cell = 0.2, 4 * US, 0.2e-15
    e = {g: dict.fromkeys(COMPONENTS, 0.0) for g in ("input", "layer0", "layer1")}
    # input: both inputs switch; dual-rail 2 rows x 2 cells each, differential 1 row x 4 cells
    rows, cells = (2, 2) if scheme == "dual-rail" else (1, 4)
    e["input"]["row_switching"] = 2 * rows * (cells * c_cell * V ** 2 + 1e-15)
    e["input"]["conduction"] = V ** 2 * ((10 + 20 + 2 + 1) * US * (T - 1 * US) + (30 + 5 + 4 + 8) * US * (T - 2 * US))
    # layer0: one decision; its spike switches layer 1's row(s) (1 neuron: 1 cell/row dual-rail, 2 differential)
    rows1, cells1 = (2, 1) if scheme == "dual-rail" else (1, 2)
    e["layer0"]["comparator"] = 50e-15
    e["layer0"]["row_switching"] = rows1 * (cells1 * c_cell * V ** 2 + 1e-15)
    e["layer0"]["conduction"] = V ** 2 * (50 + 3) * US * (T - 2.5 * US)
    v0 = V / 1e-10 * ((10 - 2) * US * 3 * US + (30 - 4) * US * 2 * US)
    v1 = V / 1e-10 * ((20 - 1) * US * 3 * US + (5 - 8) * US * 2 * US)
    e["layer0"]["capacitor"] = 0.5 * 1e-10 * (v0 ** 2 + v1 ** 2)
    e["layer0"]["static"] = 2 * 11e-6 * T
    e["layer1"]["comparator"] = 50e-15
    e["layer1"]["capacitor"] = 0.5 * 2e-10 * (V / 2e-10 * (50 - 3) * US * 1.5 * US) ** 2
    e["layer1"]["static"] = 1 * 11e-6 * T
    want = np.array([[e[g][c] for c in COMPONENTS] for g in ("input", "layer0", "layer1")])
    np.testing.assert_allclose(r.energy_j[0], want, rtol=1e-12, atol=1e-30)
    np.testing.assert_array_equal(r.spikes[0], [2, 1, 1])
    assert r.delay_s[0] == 3 * US and r.output_fired[0]


def test_swing_clamps_the_capacitor_energy_and_silent_output_delay_is_the_window():
    """Monotone ramps: the clamped end voltage is the swing (the clamp's own energy: test below)."""
    circ = _tiny()
    cfg = EnergyConfig(v_swing_v=0.1)
    r = energy_per_image(circ, cfg, np.array([[0.0, 0.0]]), [np.array([[INF, INF]]), np.array([[INF]])])
    cap = r.energy_j[0, :, COMPONENTS.index("capacitor")]
    # layer0: unclamped, the membranes would reach 0.2 V / 1e-10 F x (8 + 26, 19 - 3) uS x 4 us =
    # 0.272 V and 0.128 V by T, both beyond 0.1 V -> clamped
    np.testing.assert_allclose(cap[1], 2 * 0.5 * 1e-10 * 0.1 ** 2, rtol=1e-12)
    assert cap[2] == 0.0                      # no input to layer1 ever switched
    assert r.delay_s[0] == 4 * US and not r.output_fired[0]
    assert r.energy_j[0, 1, COMPONENTS.index("comparator")] == 0.0
    # the default swing is derived per layer: 1.5 x the layer's threshold (0.06 V here: 0.09 V)
    derived = dataclasses.replace(circ, v_th_v=(0.06, 0.5))
    r = energy_per_image(derived, EnergyConfig(), np.array([[0.0, 0.0]]), [np.array([[INF, INF]]), np.array([[INF]])])
    np.testing.assert_allclose(r.energy_j[0, 1, COMPONENTS.index("capacitor")], 2 * 0.5 * 1e-10 * 0.09 ** 2,
                               rtol=1e-12)
    with pytest.raises(ConfigError, match="energy.v_swing_v"):
        energy_per_image(circ, EnergyConfig(), np.array([[0.0, 0.0]]), [np.array([[INF, INF]]), np.array([[INF]])])


def test_the_clamp_holds_the_output_and_the_capacitor_keeps_its_end_voltage():
    """One integrator: +1.8 uA from 0 (clamped at Vs = 0.1 V from 0.556 us), -1 uA net from 3 us: it
    comes off the clamp and ends at 0 V. The op-amp output delivered Vs x 1.8 uA x (3 us - 0.556 us)
    into the clamp and left nothing in the capacitor (clipping the unclamped end, 0.62 V, would say
    1/2 C Vs^2 and no clamp)."""
    circ = EnergyCircuit("integrator", "dual-rail", 0.2, 4 * US, (1e-11,), [np.array([[10.0], [1.0]]) * US],
                         [np.array([[1.0], [15.0]]) * US])
    r = energy_per_image(circ, EnergyConfig(v_swing_v=0.1), np.array([[0.0, 3 * US]]), [np.array([[INF]])])
    t_hit = 0.1 * 1e-11 / 1.8e-6
    np.testing.assert_allclose(r.energy_j[0, 1, COMPONENTS.index("clamp")], 0.1 * 1.8e-6 * (3 * US - t_hit),
                               rtol=1e-12)
    assert abs(r.energy_j[0, 1, COMPONENTS.index("capacitor")]) < 1e-12 * 0.5 * 1e-11 * 0.1 ** 2
    # the clamp does not change the conduction: the summing node stays at virtual ground
    np.testing.assert_allclose(r.energy_j[0, 0, COMPONENTS.index("conduction")],
                               0.04 * (11 * US * 4 * US + 16 * US * 1 * US), rtol=1e-12)


def _passive_by_time_stepping(t_rows, gp, gn, c_f, v_read, t_end, steps=40000):
    """Independent check: RK4 on C dV/dt = sum_j gp (Vp_j - V) + gn (Vm_j - V) with the row voltages
    switching on the grid, and the drivers' power sum_j Vp_j gp (Vp_j - V) + Vm_j gn (Vm_j - V)."""
    dt = t_end / steps
    n = gp.shape[1]
    v = np.zeros(n)
    e = 0.0

    def rows_at(t):
        on = (t_rows <= t + 1e-18).astype(float)
        return v_read * on, -v_read * on

    def dv(v, vp, vm):
        return ((gp * (vp[:, None] - v[None, :])).sum(0) + (gn * (vm[:, None] - v[None, :])).sum(0)) / c_f

    def power(v, vp, vm):
        return float((vp[:, None] * gp * (vp[:, None] - v[None, :])).sum()
                     + (vm[:, None] * gn * (vm[:, None] - v[None, :])).sum())

    for k in range(steps):
        vp, vm = rows_at(k * dt)
        k1 = dv(v, vp, vm)
        k2 = dv(v + 0.5 * dt * k1, vp, vm)
        k3 = dv(v + 0.5 * dt * k2, vp, vm)
        k4 = dv(v + dt * k3, vp, vm)
        v_new = v + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        # Simpson's rule on the power, which is linear in V (V is smooth within a step)
        e += dt / 6 * (power(v, vp, vm) + 4 * power(0.5 * (v + v_new), vp, vm) + power(v_new, vp, vm))
        v = v_new
    return e, v


def test_passive_row_energy_matches_time_stepping_of_the_circuit():
    rng = np.random.default_rng(3)
    k_in, n = 5, 3
    gp = rng.uniform(1e-6, 1e-4, (k_in, n))
    gn = rng.uniform(1e-6, 1e-4, (k_in, n))
    t_end, steps = 4e-6, 4000
    dt = t_end / steps
    t_rows = np.array([0.0, 40 * dt, 1200 * dt, 3000 * dt, np.inf])   # on the grid; one never fires
    c_f = np.full(n, 5e-11)
    e, v_end = kernels.passive_row_energy(t_rows[None, :], np.ascontiguousarray(0.2 * (gp - gn)),
                                          (gp + gn).sum(1), (gp + gn).sum(0), c_f, 0.2, t_end)
    e_ref, v_ref = _passive_by_time_stepping(t_rows, gp, gn, c_f, 0.2, t_end, steps)
    np.testing.assert_allclose(v_end[0], v_ref, rtol=1e-6)
    np.testing.assert_allclose(e[0], e_ref, rtol=1e-5)


def test_passive_kernel_numba_and_numpy_twins_agree():
    rng = np.random.default_rng(4)
    k_in, n, b = 30, 7, 6
    gp = rng.uniform(0, 1e-4, (k_in, n))
    gn = rng.uniform(0, 1e-4, (k_in, n))
    gn[:, 0] = 0.0
    gp[:, 0] = 0.0          # a column with no conductance at all: the linear branch
    t = rng.uniform(0, 5e-6, (b, k_in))
    t[rng.random((b, k_in)) < 0.2] = np.inf
    t[0, :10] = 1e-6        # ties
    for node_scale in (1.0, 1e-3):
        args = (np.ascontiguousarray(0.2 * (gp - gn)), (gp + gn).sum(1), (gp + gn).sum(0) * node_scale,
                np.full(n, 1e-10), 0.2, 4e-6, node_scale)
        e1, v1 = kernels.passive_row_energy(t, *args)
        e2, v2 = kernels_ref.passive_row_energy(t, *args)
        np.testing.assert_allclose(e1, e2, rtol=1e-10)
        np.testing.assert_allclose(v1, v2, rtol=1e-10, atol=1e-15)


def test_passive_circuit_splits_row_energy_into_heat_and_capacitor_without_loss():
    circ = _tiny(neuron="passive")
    rng = np.random.default_rng(5)
    t_in = rng.uniform(0, 1 * US, (4, 2))
    t_l0 = np.array([[2 * US, INF], [INF, INF], [1.5 * US, 3 * US], [INF, 0.5 * US]])
    r = energy_per_image(circ, CFG, t_in, [t_l0, np.full((4, 1), INF)])
    cond, cap = COMPONENTS.index("conduction"), COMPONENTS.index("capacitor")
    gp, gn = circ.g_pos[0], circ.g_neg[0]
    row_e, _ = kernels_ref.passive_row_energy(t_in, 0.2 * (gp - gn), (gp + gn).sum(1), (gp + gn).sum(0),
                                              np.full(2, 1e-10), 0.2, 4 * US)
    np.testing.assert_allclose(r.energy_j[:, 0, cond] + r.energy_j[:, 1, cap], row_e, rtol=1e-12)
    assert np.all(r.energy_j[:, :, cond] >= 0)      # heat in resistors is never negative
    assert r.energy_j[:, :, COMPONENTS.index("static")].sum() == pytest.approx(
        4 * 3 * CFG.p_comparator_static_w * 4 * US)   # no op-amp in a passive neuron


def test_finite_gain_integrator_tends_to_the_ideal_one():
    circ = _tiny()
    rng = np.random.default_rng(8)
    t_in = rng.uniform(0, 1 * US, (3, 2))
    t_l0 = np.where(rng.random((3, 2)) < 0.7, rng.uniform(1 * US, 3 * US, (3, 2)), INF)
    ideal = energy_per_image(circ, CFG, t_in, [t_l0, np.full((3, 1), INF)])
    for a, tol in ((1e4, 2e-3), (1e8, 1e-6)):
        r = energy_per_image(dataclasses.replace(circ, opamp_gain=a), CFG, t_in, [t_l0, np.full((3, 1), INF)])
        np.testing.assert_allclose(r.energy_j, ideal.energy_j, rtol=tol, atol=1e-30)
    r = energy_per_image(dataclasses.replace(circ, opamp_gain=1e2), CFG, t_in, [t_l0, np.full((3, 1), INF)])
    cap = COMPONENTS.index("capacitor")
    assert np.all(r.energy_j[:, 1, cap] < ideal.energy_j[:, 1, cap])   # the leak lowers the membrane


def test_exact_and_spike_count_forms_agree_when_rows_fire_together_or_conduct_alike():
    rng = np.random.default_rng(6)
    g_row = rng.uniform(1e-5, 1e-3, 50)
    together = np.full((3, 50), 1.3 * US)
    np.testing.assert_allclose(conduction_exact(together, g_row, 0.2, 4 * US),
                               conduction_spike_count(together, g_row, 0.2, 4 * US), rtol=1e-12)
    uniform = np.full(50, 3e-4)
    t = rng.uniform(0, 4 * US, (3, 50))
    t[rng.random((3, 50)) < 0.4] = INF
    np.testing.assert_allclose(conduction_exact(t, uniform, 0.2, 4 * US),
                               conduction_spike_count(t, uniform, 0.2, 4 * US), rtol=1e-12)
    # and they do differ in general (otherwise the checks above would be empty)
    assert not np.allclose(conduction_exact(t, g_row, 0.2, 4 * US), conduction_spike_count(t, g_row, 0.2, 4 * US),
                           rtol=1e-4, atol=0)


@pytest.mark.parametrize("scheme", ["dual-rail", "differential"])
def test_fewer_spikes_never_report_more_spike_energy(scheme):
    rng = np.random.default_rng(7)
    sizes = [12, 9, 6, 3]
    gp = [rng.uniform(1e-6, 1e-4, (a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    gn = [rng.uniform(1e-6, 1e-4, (a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    circ = EnergyCircuit("integrator", scheme, 0.2, 4 * US, (1e-10,) * 3, gp, gn, v_th_v=(0.3, 0.3, 0.3))
    for form in ("exact", "spike-count"):
        cfg = EnergyConfig(conduction_form=form)
        for trial in range(30):
            t_in = rng.uniform(0, 1 * US, (1, sizes[0]))
            layers = [np.where(rng.random((1, n)) < 0.6, rng.uniform(0, 4 * US, (1, n)), INF) for n in sizes[1:]]
            fewer = [np.where(rng.random(t.shape) < 0.5, INF, t) for t in layers]
            e_all = energy_per_image(circ, cfg, t_in, layers)
            e_few = energy_per_image(circ, cfg, t_in, fewer)
            assert e_few.spike_energy_j[0] <= e_all.spike_energy_j[0] * (1 + 1e-12)
            idx = [COMPONENTS.index(c) for c in ("comparator", "row_switching", "conduction")]
            assert np.all(e_few.energy_j[0][:, idx] <= e_all.energy_j[0][:, idx] * (1 + 1e-12) + 1e-30)
            # later spikes (same count) never cost more conduction in the exact form
            later = [np.where(np.isfinite(t), t + rng.uniform(0, 1 * US, t.shape), INF) for t in layers]
            e_late = energy_per_image(circ, cfg, t_in, later)
            assert e_late.spike_energy_j[0] <= e_all.spike_energy_j[0] * (1 + 1e-12)
