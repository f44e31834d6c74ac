"""The reported energy is the checked energy (issue 20): the netlists carry the integrator's output
clamp, gating and the energy model's supply terms; their bookkeeping draws nothing; energy-validate
checks the model's total. Brute-force expectations for the netlist side, the energy model
(energy.model, hwmodel.behavioural) for the comparisons."""
import dataclasses
import json
import re

import numpy as np
import pytest

from energy.config import EnergyConfig
from energy.validate import SOURCE_KINDS, measure_image, measure_layer, netlist_circuit, source_elements, \
    source_energy, validate
from hwmodel.behavioural import input_times_s
from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from infra.errors import ConfigError
from netlists.circuit import Supply, make_circuit
from netlists.ngspice import session
from netlists.writer import check_inert, layer_netlist, network_netlist
from training.config import ModelConfig
from ttfs.cli import main

V_READ = 0.2


def _design(seed=0, **hw):
    rng = np.random.default_rng(seed)
    model = ModelConfig(layers=(20, 6, 3), t_end=4.0)
    w = [rng.normal(0.15, 0.2, (20, 6)), rng.normal(0.5, 0.4, (6, 3))]
    return map_model(w, model, HardwareConfig(**hw)), rng


def _integral(t, y):
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(t)))


def test_the_clamp_holds_the_output_at_the_swing_and_the_opamp_delivers_capacitor_plus_clamp():
    """One integrator, a + row from 0 (I1 = g1 v_read) and a stronger - row from t2 (I2): the output
    ramps to Vs, is held there while the net current pushes it past, and comes off the clamp when the
    net current reverses at t2. Brute force: the op-amp output delivers 1/2 C y(T)^2 + Vs I1 (t2 - t_c)."""
    g1, g2, c, vs, t_end, t2 = 20e-6, 30e-6, 1e-11, 0.75, 4e-6, 2.5e-6
    g_pos = np.array([[g1], [0.0]])
    g_neg = np.array([[0.0], [g2]])
    circuit = make_circuit([g_pos], [g_neg], c, [0.5], t_end_s=t_end, v_swing_v=(vs,))
    t_rows = np.array([0.0, t2])
    out = {}

    def keep(netlist, vectors):
        out.update(vectors)
        out["netlist"] = netlist

    from netlists.simulate import simulate_layer
    simulate_layer(circuit, 0, t_rows, save="all", on_tile=keep)
    e = source_energy(out, source_elements(out["netlist"]))
    i1, i2 = g1 * V_READ, g2 * V_READ
    t_c = c * vs / i1
    y_end = vs - (i2 - i1) * (t_end - t2) / c
    assert t_c < t2 and 0 < y_end < vs
    assert np.max(out["p0_0"]) == pytest.approx(vs, rel=1e-4)       # held at the swing (no overshoot)
    assert out["p0_0"][-1] == pytest.approx(y_end, rel=1e-3)
    expected = 0.5 * c * y_end ** 2 + vs * i1 * (t2 - t_c)
    unclamped = 0.5 * c * ((i1 * t_end - i2 * (t_end - t2)) / c) ** 2
    assert e["opamp"] == pytest.approx(expected, rel=2e-3)
    assert abs(unclamped - expected) > 0.05 * expected                 # the clamp is what the test sees
    assert e["row"] == pytest.approx(V_READ ** 2 * (g1 * t_end + g2 * (t_end - t2)), rel=2e-3)


def test_the_clamp_is_one_sided_so_an_inhibited_membrane_fires_when_the_unclamped_one_does():
    """One integrator, a strong - row from 0 drives the membrane far below -Vs, a stronger + row
    from t2 brings it up through the threshold: the clamp (above the threshold only) moves no firing
    time, so ngspice fires at the unclamped crossing; a clamp at -Vs would have fired it earlier."""
    g1, g2, c, vs, th, t_end, t2 = 30e-6, 200e-6, 1e-11, 0.75, 0.5, 4e-6, 3e-6
    g_pos = np.array([[0.0], [g2]])
    g_neg = np.array([[g1], [0.0]])
    circuit = make_circuit([g_pos], [g_neg], c, [th], t_end_s=t_end, v_swing_v=(vs,))
    i1, i2 = g1 * V_READ, g2 * V_READ
    y2 = -i1 * t2 / c
    assert y2 < -2 * vs
    t_unclamped = t2 + (th - y2) * c / (i2 - i1)
    t_two_sided = t2 + (th + vs) * c / (i2 - i1)
    assert t_unclamped < t_end and t_unclamped - t_two_sided > 0.05 * t_end
    from netlists.simulate import simulate_layer
    t_fire = simulate_layer(circuit, 0, np.array([0.0, t2]))
    assert t_fire[0] == pytest.approx(t_unclamped, abs=5e-3 * t_end)


def test_the_layer_netlists_supply_terms_are_the_energy_models_constants():
    """Static bias (P x t_stop per neuron), comparator decisions (e per firing neuron) and row switching
    (per switched row e_row_driver_j + C_row v_read^2, half of it through the driver into the wire
    capacitance) measured in ngspice against the counts, with gating at a known t_stop."""
    rng = np.random.default_rng(3)
    gp, gn = rng.uniform(1e-6, 5e-5, (8, 4)), rng.uniform(0, 2e-5, (8, 4))
    sup = Supply(p_static_w=2e-6, e_comparator_j=5e-14, c_wire_per_cell_f=5e-15, e_row_driver_j=3e-15)
    for scheme in ("dual-rail", "differential"):
        circuit = make_circuit([gp], [gn], 1e-12, [0.5], scheme=scheme, gating="decision", supply=sup)
        t_rows = np.array([0.0, 0.0, 5e-7, 1e-6, 1e-6, 2e-6, 3.5e-6, np.inf])
        t_fire = np.array([1e-6, np.inf, 2e-6, 2.9e-6])
        t_stop = 3e-6
        _, e = measure_layer(circuit, 0, t_rows, t_stop_s=t_stop, t_fire_s=t_fire)
        rows, cells = (2, 4) if scheme == "dual-rail" else (1, 8)
        switched = int(np.sum(t_rows < t_stop))                        # 5: the 3.5 us row is after t_stop
        c_row = cells * sup.c_wire_per_cell_f
        assert e["static"] == pytest.approx(4 * sup.p_static_w * t_stop, rel=5e-4)
        assert e["comparator"] == pytest.approx(3 * sup.e_comparator_j, rel=1e-6)
        assert e["row_switching"] == pytest.approx(switched * rows * (sup.e_row_driver_j + 0.5 * c_row * V_READ ** 2),
                                                   rel=1e-6)
        g = gp + gn if scheme == "dual-rail" else np.concatenate([gp, gn], axis=1)
        g_row = g.sum(axis=1)
        conduction = V_READ ** 2 * np.sum(g_row * np.clip(t_stop - t_rows, 0, None))
        wires = switched * rows * 0.5 * c_row * V_READ ** 2
        assert e["row"] == pytest.approx(conduction + wires, rel=2e-3)
        assert e.get("bookkeeping", 0.0) == 0.0


@pytest.mark.parametrize("hw", [
    {"gating": "decision"},
    {"gating": "decision", "decision_guard_s": 3e-7, "comparator_delay_s": 1e-8},
    {"gating": "column", "decision_guard_s": 2e-7},
    {"gating": "column", "scheme": "differential", "opamp_gain": 300.0},
    {"gating": "decision", "opamp_gain": 1e3},     # after t_stop the capacitors leak into the (gated) op-amp
    {"gating": "decision", "neuron": "passive", "scale_by": "capacitance", "v_th_v": 0.05},
    {"gating": "column", "neuron": "passive", "scale_by": "capacitance", "v_th_v": 0.05},
], ids=["decision", "decision-guard-delay", "column", "column-differential-finite-gain", "decision-finite-gain",
        "passive-decision", "passive-column"])
def test_gated_model_total_matches_ngspice_and_never_exceeds_the_ungated(hw):
    design, rng = _design(**hw)
    images = rng.integers(0, 256, (2, 20)).astype(np.uint8)
    result = validate(design, images, progress=False)
    ungated = validate(dataclasses.replace(design, hw=dataclasses.replace(design.hw, gating="none")), images,
                       progress=False)
    assert result["gating"] == hw["gating"]
    for p, q in zip(result["images"], ungated["images"]):
        assert p["same_spikes_as_behavioural"]
        assert p["t_stop_s"] < design.t_end_s                          # the gate does end the inference
        assert abs(p["rel_error"]) < 5e-3, p
        assert abs(p["rel_error_at_circuit_times"]) < 5e-3, p
        assert p["measured_j"] < q["measured_j"] and p["model_j"] < q["model_j"]
        assert p["measured_bookkeeping_j"] == 0.0
    for k, err in result["mean_abs_rel_error_by_source"].items():
        assert err < 5e-3, (k, err)
    assert {"rows", "static", "comparator"} <= set(result["mean_abs_rel_error_by_source"])


def test_energy_validate_checks_the_clamped_total_not_the_unclamped():
    """The default energy config clamps at 1.5 x threshold: the checked total is the report's, and
    the clamp's heat is part of it (the op-amp source measures capacitor + clamp)."""
    design, rng = _design()
    images = rng.integers(0, 256, (2, 20)).astype(np.uint8)
    clamped = validate(design, images, progress=False)
    free = validate(design, images, EnergyConfig(swing_over_threshold=float("inf")), progress=False)
    assert clamped["swing_v"] is not None and free["swing_v"] is None
    for p, q in zip(clamped["images"], free["images"]):
        assert abs(p["rel_error"]) < 5e-3 and abs(q["rel_error"]) < 5e-3
        assert p["model_components_j"]["clamp"] > 0.1 * p["model_components_j"]["capacitor"]
        assert p["measured_by_source_j"]["opamp"] < 0.5 * q["measured_by_source_j"]["opamp"]
    assert clamped["mean_abs_rel_error_by_source"]["opamp"] < 5e-3


def _standalone(gating):
    design, rng = _design(gating=gating, decision_guard_s=2e-7)
    images = rng.integers(0, 256, (1, 20)).astype(np.uint8)
    cfg = EnergyConfig()
    circuit = netlist_circuit(design, cfg=cfg)
    net = network_netlist(circuit, input_times_s(design, images)[0])
    check_inert(net)
    return design, images, cfg, circuit, net


@pytest.mark.parametrize("gating", ["none", "decision", "column"])
def test_standalone_netlists_bookkeeping_draws_nothing_and_its_sources_sum_to_the_model(gating):
    """Every source of the exported netlist: the read-only signals (buffers, the gate, enables, input
    waveforms) deliver nothing; the latches and decision-time keepers (the only current-defined B
    sources besides switched cells and the clamp, which are loads) charge their own capacitors with < 1e-6 of the image's energy; the
    supply and driver sources sum to the model's total (comparator edges to ~half a step)."""
    design, images, cfg, circuit, net = _standalone(gating)
    vec = session().run(net).vectors
    e = source_energy(vec, source_elements(net))
    assert set(e) <= set(SOURCE_KINDS)
    total = sum(e.values())
    # current-defined B elements: switched cells (BR...) and the clamp (Bcl) are loads; the rest keep time
    i_sources = {m.group(1) for m in re.finditer(r"^(B\w+) \S+ \S+ I =", net, re.M) if not m.group(1).startswith("BR")}
    assert i_sources == {"Bset", "Btc", "Bcl"}
    assert re.search(r"^Cq q 0 1e-18$", net, re.M) and re.search(r"^Ctc tc 0 \{1e-15 \* ts\}$", net, re.M)
    latches = sum(0.5 * 1e-18 * vec[f"q{l}_{i}"][-1] ** 2 + 0.5 * 1e-15 * circuit.time_scale_s * vec[f"tc{l}_{i}"][-1] ** 2
                  for l in range(circuit.n_layers) for i in range(circuit.g_pos[l].shape[1]))
    assert abs(e.get("bookkeeping", 0.0)) < 1e-6 * total
    assert 0 < latches < 1e-6 * total
    model = validate(design, images, cfg, progress=False)["images"][0]["model_j"]
    assert total == pytest.approx(model, rel=1e-2)
    if gating != "none":
        assert "Brun run 0 V =" in net and vec["run"][-1] == pytest.approx(0.0, abs=1e-9)


def test_circuit_refuses_a_swing_below_threshold_and_column_gating_with_wires():
    g = [np.full((3, 2), 1e-5)]
    with pytest.raises(ConfigError, match="output swing"):
        make_circuit(g, g, 1e-12, [0.5], v_swing_v=(0.4,))
    with pytest.raises(ConfigError, match="hw.gating"):
        make_circuit(g, g, 1e-12, [0.5], gating="column", r_wire_row_ohm=1.0)
    with pytest.raises(ConfigError, match="supply p_static_w"):
        Supply(p_static_w=-1.0)
    plain = layer_netlist(make_circuit(g, g, 1e-12, [0.5]), 0, np.zeros(3))
    assert "Bcl" not in plain and "Vdd" not in plain and "Vpc" not in plain     # nothing asked, nothing written


def test_energy_validate_cli_with_gating_and_export_netlist_carries_it(tmp_path, capsys):
    rng = np.random.default_rng(1)
    model = ModelConfig(layers=(784, 4, 2), t_end=4.0)
    w = [rng.normal(3.0 / 784, 0.02, (784, 4)), rng.normal(0.6, 0.3, (4, 2))]
    hw = HardwareConfig(gating="column", decision_guard_s=1e-7)
    save_design(map_model(w, model, hw, "", "mnist"), tmp_path / "d")
    assert main(["energy-validate", str(tmp_path / "d"), "--limit", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gating"] == "column" and len(out["images"]) == 2
    assert out["mean_abs_rel_error"] < 5e-3 and out["max_bookkeeping_share"] == 0.0
    assert all(p["t_stop_s"] < 4e-6 for p in out["images"] if p["model_components_j"]["comparator"] > 0)
    assert main(["energy-validate", str(tmp_path / "d"), "--limit", "1"]) == 0
    assert "gating column" in capsys.readouterr().out
    cir = tmp_path / "n.cir"
    assert main(["export-netlist", str(tmp_path / "d"), "--out", str(cir)]) == 0
    text = cir.read_text()
    assert "Brun run 0 V" in text and "Bcl in out I" in text and "Vdd vdd 0" not in text and "Bdd vdd 0" in text
    assert "Ben en 0 V" in text and "BR0_" in text


def test_simulate_network_gates_the_firing_times_like_the_behavioural_model():
    """`ttfs simulate`'s path: ngspice's times with gating are the behavioural model's gated times
    (neurons after t_stop silent, the rest unchanged)."""
    from hwmodel.behavioural import layer_times
    from netlists.circuit import circuit_from_design
    from netlists.simulate import simulate_network
    design, rng = _design(gating="decision")
    ungated = dataclasses.replace(design, hw=dataclasses.replace(design.hw, gating="none"))
    t_in = input_times_s(design, rng.integers(0, 256, (2, 20)).astype(np.uint8))
    beh, free = layer_times(design, t_in), layer_times(ungated, t_in)
    circuit = circuit_from_design(design)
    silenced = 0
    for b in range(2):
        sim = simulate_network(circuit, t_in[b])
        for l in range(design.n_layers):
            assert np.array_equal(np.isfinite(sim[l]), np.isfinite(beh[l][b]))
            fired = np.isfinite(sim[l])
            assert np.max(np.abs(sim[l][fired] - beh[l][b][fired]), initial=0.0) < 5e-3 * design.t_end_s
            silenced += int(np.isfinite(free[l][b]).sum() - fired.sum())
    assert silenced > 0                     # the gate silences late neurons here
