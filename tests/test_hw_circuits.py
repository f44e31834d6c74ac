"""Behavioural neuron circuits against a brute-force ODE solution of the circuit equations.

The reference integrates each neuron's node equation, written from Kirchhoff's current law for
the dual-rail crossbar (rows at +V_read / -V_read from their input's spike on, 0 V before), with
scipy's solve_ivp at tight tolerances and event detection of the comparator threshold, segment
by segment between input events. Tolerance: 1e-9 of the window on every firing time.
"""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from hwmodel.behavioural import layer_times
from hwmodel.config import HardwareConfig
from hwmodel.mapping import map_model
from training.config import ModelConfig

MODEL = ModelConfig(layers=(12, 6, 3), v_th=1.0, t_in=1.0, t_end=4.0)


def _weights(seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(0.35, 0.35, (12, 6)), rng.normal(0.5, 0.5, (6, 3))]


def _inputs(design, seed, n=4):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, (n, 12)) * design.t_in_s
    t[:, :3] = design.t_in_s            # a tie group
    t[0, 4] = np.inf                    # an input that never spikes
    return t


def _ode_neuron(t_in, gp, gn, c, design, theta, kind, gain):
    """First time y reaches theta on [0, t_end - delay), by solve_ivp, plus the delay; inf if never."""
    v = design.v_read_v
    t_lim = design.t_end_s - design.hw.comparator_delay_s
    events = np.unique(np.concatenate([[0.0], t_in[t_in < t_lim], [t_lim]]))

    def rhs_factory(t0):
        on = t_in <= t0                               # rows driven during this segment
        v_pos, v_neg = np.where(on, v, 0.0), np.where(on, -v, 0.0)
        if kind == "passive":                         # node = y on a grounded C
            return lambda t, x: [(gp @ (v_pos - x[0]) + gn @ (v_neg - x[0])) / c]
        # finite-gain integrator: node x = V-, output V_o = -A x, C d(x - V_o)/dt = KCL currents
        return lambda t, x: [(gp @ (v_pos - x[0]) + gn @ (v_neg - x[0])) / (c * (1.0 + gain))]

    out_scale = 1.0 if kind == "passive" else gain    # comparator input y = -V_o = A x
    event = lambda t, x: out_scale * x[0] - theta
    event.terminal, event.direction = True, 1
    x = [0.0]
    for t0, t1 in zip(events[:-1], events[1:]):
        if t1 <= t0:
            continue
        sol = solve_ivp(rhs_factory(t0), (t0, t1), x, method="DOP853", rtol=1e-13, atol=1e-18,
                        events=event)
        if sol.t_events[0].size:
            return sol.t_events[0][0] + design.hw.comparator_delay_s
        x = sol.y[:, -1]
    return np.inf


def _ode_network(design, t_input, kind, gain=None):
    out, t = [], t_input
    for l in range(design.n_layers):
        theta = design.v_th_v[l] + design.offset_v[l]
        gp, gn = design.g_pos[l], design.g_neg[l]
        t = np.array([[_ode_neuron(t[b], gp[:, i], gn[:, i], design.c_mem_f[l], design, theta[i], kind, gain)
                       for i in range(gp.shape[1])] for b in range(len(t))])
        out.append(t)
    return out


def _compare(got, want, t_end_s):
    for l, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(np.isfinite(g), np.isfinite(w), err_msg=f"layer {l} firing pattern")
        f = np.isfinite(g)
        np.testing.assert_allclose(g[f], w[f], rtol=0, atol=1e-9 * t_end_s, err_msg=f"layer {l} times")


HW_COMMON = dict(prog_sigma=0.05, comparator_offset_sigma_v=0.003, comparator_delay_s=2e-8, seed=5)


def test_passive_neuron_matches_ode_with_event_detection():
    hw = HardwareConfig(neuron="passive", scale_by="capacitance", v_th_v=0.15, **HW_COMMON)
    design = map_model(_weights(0), MODEL, hw)
    t_in = _inputs(design, 1)
    got = layer_times(design, t_in)
    want = _ode_network(design, t_in, "passive")
    fired = np.isfinite(got[0]).mean()
    assert 0.2 < fired < 1.0, f"test case should mix firing and silent neurons (fired {fired})"
    assert np.isfinite(got[1]).any()
    _compare(got, want, design.t_end_s)
    # the passive column is far from the ideal integrator here: the comparison is not vacuous
    ideal = layer_times(map_model(_weights(0), MODEL, hw.with_(neuron="integrator")), t_in)
    both = np.isfinite(ideal[0]) & np.isfinite(got[0])
    assert not np.array_equal(np.isfinite(ideal[0]), np.isfinite(got[0])) or \
        np.max(np.abs(ideal[0][both] - got[0][both])) > 0.01 * design.t_end_s


@pytest.mark.parametrize("gain", [20.0, 300.0])
def test_finite_gain_integrator_matches_ode_of_the_miller_integrator(gain):
    hw = HardwareConfig(neuron="integrator", opamp_gain=gain, **HW_COMMON)
    design = map_model(_weights(2), MODEL, hw)
    t_in = _inputs(design, 3)
    got = layer_times(design, t_in)
    want = _ode_network(design, t_in, "integrator", gain)
    assert 0.2 < np.isfinite(got[0]).mean() <= 1.0
    _compare(got, want, design.t_end_s)
    ideal = layer_times(map_model(_weights(2), MODEL, hw.with_(opamp_gain=None)), t_in)
    both = np.isfinite(ideal[0]) & np.isfinite(got[0])
    assert np.max(np.abs(ideal[0][both] - got[0][both])) > 1e-5 * design.t_end_s   # the leak shows


def test_comparator_delay_shifts_spikes_and_offset_shifts_threshold():
    base = HardwareConfig()
    design = map_model(_weights(4), MODEL, base)
    t_in = _inputs(design, 5, n=6)
    t0 = layer_times(design, t_in)[0]
    delayed = layer_times(map_model(_weights(4), MODEL, base.with_(comparator_delay_s=3e-8)), t_in)[0]
    f = np.isfinite(t0) & (t0 + 3e-8 < design.t_end_s)
    np.testing.assert_allclose(delayed[f], t0[f] + 3e-8, rtol=1e-12)
    # a systematic offset dv is a threshold V_th + dv: the same as mapping with a scaled threshold
    dv = 0.01
    off = layer_times(map_model(_weights(4), MODEL, base.with_(comparator_offset_v=dv)), t_in)[0]
    v_th = design.v_th_v[0]
    scaled_model = ModelConfig(layers=MODEL.layers, v_th=MODEL.v_th, t_in=MODEL.t_in, t_end=MODEL.t_end)
    w_scaled = [_weights(4)[0] * v_th / (v_th + dv), _weights(4)[1]]
    ref = layer_times(map_model(w_scaled, scaled_model, base), t_in)[0]
    g = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(off), g)
    np.testing.assert_allclose(off[g], ref[g], rtol=1e-9)
    assert np.all(off[g] >= t0[g] - 1e-18) and np.any(off[g] > t0[g])
