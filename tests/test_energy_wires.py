"""Energy with wires: the row drivers' power form and the wires' heat from the solved network
(netlists.ports) against a dense solve of the literal netlist, its kernel against the numpy twin,
and the model against the energy ngspice measures (energy-validate) and the heat in the literal
netlist's wire resistors."""
import dataclasses
import io
import json

import numpy as np
import pytest

from energy import kernels, kernels_ref
from energy.config import EnergyConfig
from energy.model import EnergyCircuit, conduction_exact, energy_per_image
from energy.validate import netlist_circuit, validate
from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from hwmodel.wire_network import port_admittance
from netlists.circuit import make_circuit
from netlists.ports import row_drive_solution, transfer_and_row_form
from netlists.simulate import simulate_layer
from netlists.writer import _crossbar_cells
from training.config import ModelConfig
from ttfs.cli import main

from dense_nodes import currents_out, netlist_resistors, node_voltages


def test_quadratic_kernel_matches_its_twin_and_the_per_row_form_without_coupling():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1e-6, 1e-6, (9, 9))
    a = a + a.T + np.diag(rng.uniform(1e-5, 2e-5, 9))
    rem = rng.uniform(0, 1e-6, (6, 9))
    rem[rng.random((6, 9)) < 0.4] = 0.0
    rem[0, :3] = rem[0, 3]                               # ties: rows fired together
    np.testing.assert_allclose(kernels.quadratic_row_energy(rem, a), kernels_ref.quadratic_row_energy(rem, a),
                               rtol=1e-12)
    g = np.diag(a).copy()
    t = np.where(rem > 0, 1e-6 - rem, np.inf)
    np.testing.assert_allclose(0.04 * kernels.quadratic_row_energy(rem, np.diag(g)),
                               conduction_exact(t, g, 0.2, 1e-6), rtol=1e-12)


def _literal_resistors(g_pos, g_neg, scheme, r, tiles):
    n_in, n_out = g_pos.shape
    circuit = make_circuit([g_pos], [g_neg], [1e-10], [0.3], scheme=scheme, r_wire_row_ohm=r,
                           r_wire_col_ohm=r, tile_rows=tiles[0], tile_cols=tiles[1])
    out = io.StringIO()
    rows_m = [f"vm{j}" for j in range(n_in)] if scheme == "dual-rail" else [f"vp{j}" for j in range(n_in)]
    _crossbar_cells(out, 0, [f"vp{j}" for j in range(n_in)], rows_m, circuit)
    return netlist_resistors(out.getvalue())


@pytest.mark.parametrize("scheme,tiles", [("dual-rail", (4, 2)), ("differential", (None, 4)), ("dual-rail", (None, None))])
def test_power_form_and_wire_heat_equal_a_dense_solve_of_the_literal_netlist(scheme, tiles):
    """For random driven sets u, a dense nodal solve of the literal netlist's resistors gives the
    drivers' power V^2 u^T A u, the wires' heat V^2 u^T A_wire u and the neurons' currents V u W."""
    rng = np.random.default_rng(4)
    n_in, n_out, r = 5, 3, 2000.0
    g_pos, g_neg = rng.uniform(1e-6, 3e-5, (2, n_in, n_out))
    w, a, a_wire = transfer_and_row_form(g_pos, g_neg, scheme, r, r, *tiles)
    res = _literal_resistors(g_pos, g_neg, scheme, r, tiles)
    plus = [f"c0_{i}" for i in range(n_out)]
    minus = [f"c0_{i}n" for i in range(n_out)] if scheme == "differential" else []
    fixed = {f"vp{j}" for j in range(n_in)} | {f"vm{j}" for j in range(n_in)} | set(plus) | set(minus)
    triples = [(x, y, g) for _, x, y, g in res]
    for _ in range(4):
        u = (rng.random(n_in) < 0.6).astype(float)
        volts = {n: 0.0 for n in fixed}
        for j in range(n_in):
            volts[f"vp{j}"], volts[f"vm{j}"] = 0.2 * u[j], -0.2 * u[j]
        v = node_voltages(triples, volts)
        heat = sum(g * (v(x) - v(y)) ** 2 for _, x, y, g in res)
        wire = sum(g * (v(x) - v(y)) ** 2 for name, x, y, g in res if name.startswith("Rw"))
        into = {n: -i for n, i in currents_out(triples, v, plus + minus).items()}
        current = np.array([into[plus[i]] - (into[minus[i]] if minus else 0.0) for i in range(n_out)])
        np.testing.assert_allclose(0.04 * u @ a @ u, heat, rtol=1e-7)
        np.testing.assert_allclose(0.04 * u @ a_wire @ u, wire, rtol=1e-7)
        np.testing.assert_allclose(0.2 * u @ w, current, rtol=0, atol=1e-7 * np.abs(current).max())
        assert wire > 1e-3 * heat                  # the wires' share matters at these values


def test_row_drive_solution_is_the_port_admittance_row_block():
    g = np.random.default_rng(2).uniform(1e-6, 3e-5, (8, 6))
    y_r, h = row_drive_solution(g, 100.0, 300.0)
    y = port_admittance(g, 100.0, 300.0)
    np.testing.assert_allclose(y_r, y[:, :8], rtol=0, atol=1e-10 * np.abs(y).max())
    assert np.linalg.eigvalsh(h).min() > -1e-12 * np.abs(h).max()          # heat is never negative
    assert np.linalg.eigvalsh(y[:8, :8] - h).min() > 0                       # the cells heat too


def _design(**hw):
    rng = np.random.default_rng(0)
    model = ModelConfig(layers=(24, 8, 3), t_end=4.0)
    w = [rng.normal(0.15, 0.2, (24, 8)), rng.normal(0.5, 0.4, (8, 3))]
    return map_model(w, model, HardwareConfig(**hw)), rng


WIRES = dict(r_wire_row_ohm=300.0, r_wire_col_ohm=300.0, tile_rows=16, tile_cols=4)


@pytest.mark.parametrize("form,gain", [("reduced", None), ("literal", None), ("reduced", 1e3), ("literal", 1e3)])
def test_energy_validate_with_wires_matches_ngspice_and_the_wires_matter(form, gain):
    """energy-validate on a tiled design with wires: the model at the circuit's firing times within
    0.1% of ngspice's source energy (the drivers' 1 ns edges), with literal and reduced netlists, an
    ideal op-amp or a finite gain; a model that leaves the wires' heat out (the wire-free energy at
    the same times) is off by more."""
    design, rng = _design(**WIRES, opamp_gain=gain)
    images = rng.integers(0, 256, (2, 24)).astype(np.uint8)
    result = validate(design, images, progress=False, wires=form)
    assert result["wires"]["energy_model"] == "exact" and result["wires"]["netlist"] == form
    for p in result["images"]:
        assert p["measured_j"] > 0
        assert abs(p["rel_error_at_circuit_times"]) < 1e-3, p        # measured 1e-4 to 2.8e-4
        assert p["model_wire_heat_j"] > 0.05 * p["model_conduction_j"]
        assert p["model_wire_heat_j"] / p["measured_j"] > 2e-2          # 20x the tolerance


def test_model_wire_heat_equals_the_heat_in_the_literal_netlists_wire_resistors():
    """The heat ngspice puts in the literal netlist's wire segments (integrated from every node
    voltage) equals the model's wires' share of layer 0, at the circuit's firing times."""
    design, rng = _design(**WIRES)
    circuit = netlist_circuit(design, "literal")
    from hwmodel.behavioural import input_times_s
    t_in = input_times_s(design, rng.integers(0, 256, (1, 24)).astype(np.uint8))
    heat = []

    def add(netlist, vectors):
        t = vectors["time"]
        zero = np.zeros_like(t)
        for line in netlist.splitlines():
            if line.startswith("Rw"):
                _, a, b, r_ohm = line.split()
                p = (vectors.get(a.lower(), zero) - vectors.get(b.lower(), zero)) ** 2 / float(r_ohm)
                heat.append(float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(t))))

    t0 = simulate_layer(circuit, 0, t_in[0], save="all", on_tile=add)
    t1 = simulate_layer(dataclasses.replace(circuit), 1, t0)
    cfg = dataclasses.replace(EnergyConfig(), v_swing_v=None, swing_over_threshold=np.inf)
    model = energy_per_image(EnergyCircuit.from_design(design), cfg, t_in, [t0[None], t1[None]])
    assert sum(heat) > 0
    np.testing.assert_allclose(model.wire_heat_j[0, 0], sum(heat), rtol=5e-3)


def test_energy_validate_cli_with_wires_reports_the_wire_heat(tmp_path, capsys):
    rng = np.random.default_rng(1)
    model = ModelConfig(layers=(784, 4, 2), t_end=4.0)
    w = [rng.normal(3.0 / 784, 0.02, (784, 4)), rng.normal(0.6, 0.3, (4, 2))]
    hw = HardwareConfig(r_wire_row_ohm=1.0, r_wire_col_ohm=1.0, tile_rows=128, tile_cols=128)
    save_design(map_model(w, model, hw, "", "mnist"), tmp_path / "d")
    assert main(["energy-validate", str(tmp_path / "d"), "--limit", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["wires"]["energy_model"] == "exact" and out["wires"]["netlist"] == "reduced"
    assert abs(out["images"][0]["rel_error_at_circuit_times"]) < 5e-3
    assert out["images"][0]["model_wire_heat_j"] > 0


PASSIVE = dict(neuron="passive", scale_by="capacitance", v_th_v=0.05)


def test_passive_energy_with_exact_wires_matches_ngspice_where_first_order_does_not():
    """Passive columns coupled through their wires (energy.model in the behavioural model's modes):
    energy-validate within 0.05% of ngspice's source energy at the circuit's firing times, with
    literal and reduced netlists; the first-order wire energy of the same design is off by more."""
    wires = dict(WIRES, r_wire_row_ohm=30.0, r_wire_col_ohm=30.0)
    errors = {}
    for model in ("exact", "first-order"):
        design, rng = _design(**wires, **PASSIVE, wire_model=model)
        images = rng.integers(0, 256, (2, 24)).astype(np.uint8)
        for form in ("reduced", "literal") if model == "exact" else ("reduced",):
            result = validate(design, images, progress=False, wires=form)
            assert result["wires"]["energy_model"] == model
            errors[model, form] = max(abs(p["rel_error_at_circuit_times"]) for p in result["images"])
            assert all(p["model_wire_heat_j"] is None for p in result["images"])   # not split out (passive)
    assert errors["exact", "reduced"] < 5e-4 and errors["exact", "literal"] < 5e-4, errors   # measured 1.9e-4
    assert errors["first-order", "reduced"] > 2 * errors["exact", "reduced"], errors


def test_passive_modal_energy_without_coupling_is_the_independent_columns_energy():
    """Modes of uncoupled nodes (E = C^-1/2, lam = g/C) through the modal path give the passive
    kernel's energy and capacitor terms exactly: the change of variables alone, to 1e-12."""
    import dataclasses
    from energy.config import EnergyConfig
    from energy.model import energy_per_image
    from hwmodel.coupled import Modes
    rng = np.random.default_rng(4)
    k, n = 12, 5
    gp, gn = rng.uniform(1e-6, 3e-5, (k, n)), rng.uniform(1e-6, 2e-5, (k, n))
    c = np.full(n, 2e-11)
    base = EnergyCircuit(neuron="passive", scheme="dual-rail", v_read_v=0.2, t_end_s=4e-6, c_mem_f=(2e-11,),
                         g_pos=[gp], g_neg=[gn])
    g_tot = (gp + gn).sum(axis=0)
    modes = Modes(np.diag(1 / np.sqrt(c)), g_tot / c, np.array([0, n]))
    coupled = dataclasses.replace(base, a_s=[np.diag((gp + gn).sum(axis=1))], w_s=[gp - gn], modes=[modes])
    t_in = rng.uniform(0, 3e-6, (3, k))
    t_in[0, :3] = np.inf
    t_out = [np.full((3, n), np.inf)]
    a, b = (energy_per_image(circ, EnergyConfig(), t_in, t_out) for circ in (base, coupled))
    np.testing.assert_allclose(b.energy_j, a.energy_j, rtol=1e-12, atol=1e-30)
