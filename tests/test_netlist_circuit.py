"""ngspice circuit-level firing times against the behavioural model (hwmodel.behavioural).

A small random network (20-10-3) is mapped with hwmodel's own mapping; every neuron's firing time
from ngspice must match the exact behavioural model within 0.5% of the window, for both neuron
circuits and the non-idealities the circuit models exactly.
"""
import numpy as np
import pytest

from hwmodel.behavioural import layer_times
from hwmodel.config import HardwareConfig
from hwmodel.mapping import map_model
from netlists.circuit import circuit_from_design, make_circuit
from netlists.simulate import crossings, simulate_network
from netlists.writer import driver_groups, layer_netlist
from training.config import ModelConfig

TOL_WINDOW = 0.005          # 0.5% of the time window

HW_CASES = {
    "integrator-ideal": dict(),
    "passive": dict(neuron="passive", scale_by="capacitance", v_th_v=0.05),
    "integrator-gain-delay-offsets": dict(opamp_gain=1e3, comparator_delay_s=2e-9,
                                          comparator_offset_sigma_v=0.01),
    "integrator-differential": dict(scheme="differential", bits=4),
    "passive-offsets": dict(neuron="passive", scale_by="capacitance", v_th_v=0.05, comparator_offset_v=0.003,
                            prog_sigma=0.1),
}


def small_design(hw_kwargs, seed=1):
    rng = np.random.default_rng(seed)
    sizes = (20, 10, 3)
    w = [rng.normal(2.5 / 20, 0.6 / np.sqrt(20), (20, 10)), rng.normal(2.5 / 10, 0.8 / np.sqrt(10), (10, 3))]
    return map_model(w, ModelConfig(layers=sizes), HardwareConfig(**hw_kwargs))


@pytest.mark.parametrize("case", sorted(HW_CASES))
def test_ngspice_firing_times_match_behavioural_model(case):
    design = small_design(HW_CASES[case])
    circuit = circuit_from_design(design)
    rng = np.random.default_rng(7)
    t_input = rng.uniform(0, design.t_in_s, (3, 20))
    t_input[:, :3] = design.t_in_s            # some inputs share a driver (black pixels)
    behavioural = layer_times(design, t_input)
    n_fired = 0
    for k in range(len(t_input)):
        sim = simulate_network(circuit, t_input[k])
        for l, (c, b) in enumerate(zip(sim, behavioural)):
            b = b[k]
            # the same neurons fire ...
            np.testing.assert_array_equal(np.isfinite(c), np.isfinite(b), err_msg=f"layer {l} sample {k}")
            both = np.isfinite(c)
            n_fired += both.sum()
            # ... at the same times, within 0.5% of the window
            np.testing.assert_allclose(c[both], b[both], rtol=0, atol=TOL_WINDOW * design.t_end_s,
                                       err_msg=f"{case}: layer {l} sample {k}")
    assert n_fired >= 10, "the test network should fire"


def test_differences_are_detected():
    """Sanity of the comparison: a 2% conductance change moves firing times beyond the tolerance
    of the check above, so that check can fail."""
    design = small_design({})
    circuit = circuit_from_design(design)
    t_input = np.random.default_rng(3).uniform(0, design.t_in_s, (1, 20))
    ref = simulate_network(circuit, t_input[0])[0]
    scaled = make_circuit([g * 0.98 for g in circuit.g_pos], [g * 0.98 for g in circuit.g_neg],
                          circuit.c_mem_f, circuit.v_th_v, t_end_s=circuit.t_end_s,
                          time_scale_s=circuit.time_scale_s, v_read_v=circuit.v_read_v)
    moved = simulate_network(scaled, t_input[0])[0]
    fired = np.isfinite(ref) & np.isfinite(moved)
    assert fired.sum() >= 3
    assert np.max(np.abs(moved[fired] - ref[fired])) > 0.2 * TOL_WINDOW * design.t_end_s


def test_tiles_and_merged_cells_give_the_same_times_as_one_resistor_per_cell():
    """The runner's speed-ups (column tiles, merged parallel cells) do not change the circuit:
    a layer written with one resistor per cell (wire resistance 1e-9 ohm forces that layout)
    gives the same firing times."""
    design = small_design({})
    circuit = circuit_from_design(design)
    t_rows = np.random.default_rng(5).uniform(0, design.t_in_s, 20)
    t_rows[:6] = t_rows[0]
    fast = simulate_network(circuit, t_rows)[0]
    import dataclasses
    cells = dataclasses.replace(circuit, r_wire_row_ohm=1e-9, wire_netlist="literal")
    assert "R0_0p_0 " in layer_netlist(cells, 0, t_rows)        # per-cell layout indeed
    slow = simulate_network(cells, t_rows)[0]
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-6 * design.t_end_s)


def test_driver_groups_share_equal_times_and_drop_late_rows():
    times, group = driver_groups(np.array([3e-7, 1e-7, 3e-7, np.inf, 5e-6]), 4e-6)
    np.testing.assert_array_equal(times, [1e-7, 3e-7])
    np.testing.assert_array_equal(group, [1, 0, 1, -1, -1])


def test_crossing_interpolation_matches_exact_line():
    t = np.linspace(0, 1, 11)
    v = np.stack([2 * t, 3 * t - 1, 0 * t], axis=1)
    out = crossings(t, v, np.array([0.5, 0.5, 0.5]))
    np.testing.assert_allclose(out[:2], [0.25, 0.5])
    assert np.isinf(out[2])


@pytest.mark.parametrize("scheme", ["dual-rail", "differential"])
def test_wire_resistance_of_a_lone_cell_matches_its_series_path(scheme):
    """With one cell per row and per column (a diagonal array, only + cells), no wire segment is
    shared, so each cell sees exactly the series resistance of its path (row pitches from the
    driver plus column pitches to the neuron): the integrator ramps at v_read g / (1 + g R_path) / C.
    Checks the wire geometry of docs/netlists.md against this closed form."""
    g = np.diag([6e-5, 8e-5, 1e-4])
    r_row, r_col, c_f, thr, v_read = 200.0, 300.0, 1e-10, 0.3, 0.2
    circuit = make_circuit([g], [np.zeros_like(g)], [c_f], [thr], scheme=scheme, r_wire_row_ohm=r_row,
                           r_wire_col_ohm=r_col, v_read_v=v_read, t_end_s=4e-6, t_rise_s=1e-9)
    t0 = 2e-7
    got = simulate_network(circuit, np.full(3, t0))[0]
    i = np.arange(3)               # cell (i, i)
    if scheme == "dual-rail":      # + row of input i is physical row 2i of 6; column i at pitch i + 1
        r_path = r_row * (i + 1) + r_col * (6 - 2 * i)
    else:                          # row i of 3; neuron i's + column is physical column 2i
        r_path = r_row * (2 * i + 1) + r_col * (3 - i)
    g_eff = np.diag(g) / (1 + np.diag(g) * r_path)
    expected = t0 + circuit.t_rise_s / 2 + c_f * thr / (v_read * g_eff)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * circuit.t_end_s)
    # and the wires matter at this size: without them the times differ by far more than that
    assert np.all(np.abs(expected - (t0 + circuit.t_rise_s / 2 + c_f * thr / (v_read * np.diag(g))))
                  > 1e-3 * circuit.t_end_s)


def test_safe_retry_settings_run_and_agree_with_the_first_attempt():
    """The retry's solver options are accepted by ngspice and give the same firing times."""
    from netlists.simulate import FAST, SAFE
    design = small_design({})
    circuit = circuit_from_design(design)
    t_input = np.random.default_rng(11).uniform(0, design.t_in_s, 20)
    for fast, safe in zip(simulate_network(circuit, t_input, FAST), simulate_network(circuit, t_input, SAFE)):
        np.testing.assert_array_equal(np.isfinite(fast), np.isfinite(safe))
        np.testing.assert_allclose(fast, safe, rtol=0, atol=1e-4 * design.t_end_s)
