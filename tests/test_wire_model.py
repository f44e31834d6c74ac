"""The tiled wire model of a layer (hwmodel/wire_model.py): exact against a dense solve of the tiled
network, first order converging to it, tiles without wires changing nothing, the per-chip cache, and
hw-eval with exact wires from the command line."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwmodel.behavioural import circuits, layer_times
from hwmodel.config import HardwareConfig
from hwmodel.design import load_design
from hwmodel.mapping import map_model
from hwmodel.neurons import layer_circuit
from hwmodel.wire_model import CACHE_DIR, chip_wires, layer_wires
from hwmodel.wire_network import laplacian, port_admittance
from training.checkpoint import load_model

from dense_nodes import currents_out, node_voltages

REPO = Path(__file__).resolve().parents[1]


def _cells(rng, n_in, n_out):
    return rng.uniform(1e-5, 1e-3, (n_in, n_out)), rng.uniform(1e-5, 1e-3, (n_in, n_out))


def _tile_resistors(phys, r0, r1, c0, c1, r_row, r_col):
    """The resistors of one tile, written out cell by cell: (node a, node b, conductance). Nodes:
    ("row", r) a physical row's driver, ("col", c) a physical column's neuron node, else wire nodes."""
    out = []
    for r in range(r0, r1):
        for c in range(c0, c1):
            out.append((("u", r, c), ("w", r, c), phys[r, c]))
            out.append((("row", r) if c == c0 else ("u", r, c - 1), ("u", r, c), 1.0 / r_row))
            out.append((("w", r, c), ("col", c) if r == r1 - 1 else ("w", r + 1, c), 1.0 / r_col))
    return out


def _dense_ports(resistors, volts):
    """Currents (A) into the network at each fixed node, for fixed node voltages `volts`."""
    return currents_out(resistors, node_voltages(resistors, volts), volts)


def _dense_tiled(g_pos, g_neg, scheme, r_row, r_col, tile_rows, tile_cols):
    """W (n_in, n_out) and the dual-rail neuron self-conductance by a dense solve of the whole tiled
    network (every tile's own drivers and wires, its column ends on the neuron nodes)."""
    n_in, n_out = g_pos.shape
    if scheme == "dual-rail":
        phys = np.stack([g_pos, g_neg], axis=1).reshape(2 * n_in, n_out)
    else:
        phys = np.stack([g_pos, g_neg], axis=2).reshape(n_in, 2 * n_out)
    n_r, n_c = phys.shape
    res = []
    for r0 in range(0, n_r, tile_rows or n_r):
        for c0 in range(0, n_c, tile_cols or n_c):
            res += _tile_resistors(phys, r0, min(n_r, r0 + (tile_rows or n_r)), c0,
                                   min(n_c, c0 + (tile_cols or n_c)), r_row, r_col)
    fixed = [("row", r) for r in range(n_r)] + [("col", c) for c in range(n_c)]
    w = np.zeros((n_in, n_out))
    for j in range(n_in):
        volts = {n: 0.0 for n in fixed}
        if scheme == "dual-rail":
            volts[("row", 2 * j)], volts[("row", 2 * j + 1)] = 1.0, -1.0
        else:
            volts[("row", j)] = 1.0
        into = _dense_ports(res, volts)       # current into the network; the neuron receives minus it
        for i in range(n_out):
            w[j, i] = -into[("col", i)] if scheme == "dual-rail" else -into[("col", 2 * i)] + into[("col", 2 * i + 1)]
    g_self = np.zeros(n_c)
    for c in range(n_c):
        volts = {n: 0.0 for n in fixed}
        volts[("col", c)] = 1.0
        g_self[c] = _dense_ports(res, volts)[("col", c)]
    return w, g_self


@pytest.mark.parametrize("scheme,tile_rows,tile_cols", [("dual-rail", 4, 2), ("dual-rail", None, 3),
                                                        ("differential", 2, 4), ("differential", 3, None)])
def test_exact_tiled_model_matches_a_dense_solve_of_the_tiled_network(scheme, tile_rows, tile_cols):
    """Drive (signed effective conductances) and the neuron's self-conductance (the finite-gain
    leak) equal a dense solve of every tile's resistors to 1e-9 relative, and the wires matter."""
    g_pos, g_neg = _cells(np.random.default_rng(5), 5, 3)
    hw = HardwareConfig(scheme=scheme, r_wire_row_ohm=40.0, r_wire_col_ohm=70.0, tile_rows=tile_rows,
                        tile_cols=tile_cols)
    got = layer_wires(g_pos, g_neg, hw)
    want_w, want_self = _dense_tiled(g_pos, g_neg, scheme, 40.0, 70.0, tile_rows, tile_cols)
    scale = np.abs(want_w).max()
    np.testing.assert_allclose(got.g_pos_s - got.g_neg_s, want_w, rtol=0, atol=1e-9 * scale)
    want_self = want_self if scheme == "dual-rail" else want_self[0::2] + want_self[1::2]
    np.testing.assert_allclose(got.g_self_s, want_self, rtol=1e-9)
    assert np.abs(want_w - (g_pos - g_neg)).max() > 1e-2 * scale
    circ = layer_circuit(g_pos, g_neg, np.zeros(3), 1e-10, 0.3, hw.with_(opamp_gain=1e3))
    np.testing.assert_allclose(circ.g_leak_s, want_self / 1e3, rtol=1e-9)


@pytest.mark.parametrize("tile_rows,tile_cols", [(None, None), (4, 3)])
def test_first_order_error_shrinks_with_r_for_the_tiled_model(tile_rows, tile_cols):
    rng = np.random.default_rng(2)
    g_pos, g_neg = rng.uniform(1e-6, 5e-5, (8, 6)), rng.uniform(1e-6, 5e-5, (8, 6))
    scale = np.abs(g_pos - g_neg).max()
    errors = []
    for r in (100.0, 10.0, 1.0, 0.1):
        hw = HardwareConfig(r_wire_row_ohm=r, r_wire_col_ohm=r, tile_rows=tile_rows, tile_cols=tile_cols)
        exact, first = layer_wires(g_pos, g_neg, hw), layer_wires(g_pos, g_neg, hw.with_(wire_model="first-order"))
        errors.append(np.abs((exact.g_pos_s - exact.g_neg_s) - (first.g_pos_s - first.g_neg_s)).max() / scale)
    assert errors[0] > 1e-4
    for big, small in zip(errors, errors[1:]):
        assert small < 0.25 * big


@pytest.mark.parametrize("scheme,tiles", [("dual-rail", (2, 1)), ("dual-rail", (4, None)),
                                          ("differential", (1, 2)), ("differential", (1, None))])
def test_tiles_without_wires_reproduce_the_wire_free_model(scheme, tiles):
    """r = 0: tiles of 1 (or 2) rows x n change nothing, exact or first order."""
    g_pos, g_neg = _cells(np.random.default_rng(1), 6, 4)
    base = layer_circuit(g_pos, g_neg, np.zeros(4), 1e-10, 0.3, HardwareConfig(scheme=scheme, opamp_gain=1e3))
    for model in ("exact", "first-order"):
        hw = HardwareConfig(scheme=scheme, opamp_gain=1e3, tile_rows=tiles[0], tile_cols=tiles[1], wire_model=model)
        circ = layer_circuit(g_pos, g_neg, np.zeros(4), 1e-10, 0.3, hw)
        assert np.array_equal(circ.drive_a, base.drive_a)
        np.testing.assert_allclose(circ.g_leak_s, base.g_leak_s, rtol=1e-15)
        np.testing.assert_allclose(circ.g_leak_s, (g_pos + g_neg).sum(axis=0) / 1e3, rtol=1e-15)


def test_boundary_schur_port_admittance_matches_dense_kron_reduction_on_a_dissected_grid():
    """An array big enough for the nested dissection to recurse: Y equals numpy's dense Kron reduction
    of the same Laplacian to 1e-9 relative."""
    g = np.random.default_rng(4).uniform(1e-6, 1e-4, (23, 14))
    lap, p = laplacian(g, 2.0, 3.0)
    dense = lap.toarray()
    want = dense[:p, :p] - dense[:p, p:] @ np.linalg.solve(dense[p:, p:], dense[p:, :p])
    got = port_admittance(g, 2.0, 3.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())


def test_passive_columns_with_exact_wires_are_coupled_and_first_order_ones_are_not():
    """Exact wires couple passive columns (hwmodel.coupled: issue 17); first order keeps them independent."""
    g = np.full((3, 2), 1e-5)
    hw = HardwareConfig(neuron="passive", scale_by="capacitance", v_th_v=0.1, r_wire_row_ohm=1.0, r_wire_col_ohm=1.0)
    assert layer_circuit(g, g, np.zeros(2), 1e-10, 0.1, hw).modes is not None
    assert layer_circuit(g, g, np.zeros(2), 1e-10, 0.1, hw.with_(wire_model="first-order")).modes is None


@pytest.fixture
def wired_design(run_dir, tmp_path):
    from hwmodel.design import save_design
    run = load_model(run_dir)
    hw = HardwareConfig(r_wire_row_ohm=2.0, r_wire_col_ohm=2.0, tile_rows=256, tile_cols=None, opamp_gain=1e4)
    save_design(map_model(run.weights, run.model, hw, str(run_dir)), tmp_path / "d")
    return tmp_path / "d"


def test_exact_wires_are_cached_per_chip_and_a_stale_or_corrupt_cache_is_recomputed(wired_design):
    design = load_design(wired_design)
    chip = design.stored_chip()
    fresh = [layer_wires(chip.g_pos[l], chip.g_neg[l], design.hw) for l in range(design.n_layers)]
    first = chip_wires(design, chip)
    path = wired_design / CACHE_DIR / "chip0.npz"
    assert path.is_file()
    for a, b in zip(first, fresh):
        assert np.array_equal(a.g_pos_s, b.g_pos_s) and np.array_equal(a.g_self_s, b.g_self_s)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    changed = {**arrays, "g_pos0": arrays["g_pos0"] * 2}     # values that are not the ones written
    np.savez(path, **changed)
    assert np.array_equal(chip_wires(design, chip)[0].g_pos_s, fresh[0].g_pos_s)
    np.savez(path, **{**arrays, "key": arrays["key"][::-1]})  # stale: another design's key
    assert np.array_equal(chip_wires(design, chip)[0].g_pos_s, fresh[0].g_pos_s)
    path.write_bytes(b"not a zip")                   # corrupt
    assert np.array_equal(chip_wires(design, chip)[0].g_pos_s, fresh[0].g_pos_s)
    assert np.array_equal(chip_wires(design, design.stored_chip())[1].g_neg_s, fresh[1].g_neg_s)


def test_the_energy_models_row_power_forms_share_the_per_chip_cache(wired_design, monkeypatch):
    """energy.model solves a design's row-power forms once per chip (DESIGN/wires-cache/energy-chip0.npz,
    hwmodel.wire_model.chip_cached) and serves the same arrays after; a corrupt file is recomputed."""
    import energy.model as em
    design = load_design(wired_design)
    calls = []
    solve = em._row_power_forms
    monkeypatch.setattr(em, "_row_power_forms", lambda chip, hw: calls.append(1) or solve(chip, hw))
    first = em.EnergyCircuit.from_design(design)
    path = wired_design / CACHE_DIR / "energy-chip0.npz"
    assert len(calls) == 1 and path.is_file()
    again = em.EnergyCircuit.from_design(load_design(wired_design))
    assert len(calls) == 1
    for a, b in zip(first.a_s + first.a_wire_s, again.a_s + again.a_wire_s):
        assert np.array_equal(a, b)
    path.write_bytes(b"not a zip")
    third = em.EnergyCircuit.from_design(load_design(wired_design))
    assert len(calls) == 2 and np.array_equal(third.a_s[0], first.a_s[0])


def test_exact_wires_change_the_firing_times_and_first_order_is_the_named_alternative(wired_design):
    design = load_design(wired_design)
    t = np.random.default_rng(0).uniform(0, 1e-6, (20, 784))
    exact = layer_times(design, t)[-1]
    first = layer_times(map_model(design.weights, design.model, design.hw.with_(wire_model="first-order")), t)[-1]
    none = layer_times(map_model(design.weights, design.model, design.hw.with_(r_wire_row_ohm=0.0,
                                                                                r_wire_col_ohm=0.0)), t)[-1]
    both = np.isfinite(exact) & np.isfinite(first) & np.isfinite(none)
    assert both.any()
    assert np.abs(exact - none)[both].max() > 0 and np.abs(exact - first)[both].max() > 0
    assert len(circuits(design)) == 2


def test_hw_eval_with_exact_tiled_wires_runs_from_the_command_line(wired_design):
    out = subprocess.run([sys.executable, "-m", "ttfs.cli", "hw-eval", str(wired_design), "--limit", "30", "--json",
                          "--set", "hw.tile_rows=128", "--set", "hw.tile_cols=4"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["n"] == 30 and 0 <= r["accuracy"] <= 1 and r["t_error_max"] > 0


@pytest.mark.parametrize("param, values", [("wire", ["0", "5"]), ("tile", ["64", "none"])])
def test_hw_sweep_wire_and_tile_report_both_wire_models(wired_design, tmp_path, param, values):
    import csv
    from ttfs.cli import main
    out = tmp_path / "sweep"
    assert main(["hw-sweep", str(wired_design), "--param", param, "--values", *values, "--limit", "40",
                 "--out", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader((out / f"sweep-{param}.csv").open()))
    assert [r["value"] for r in rows] == (["0.0", "5.0"] if param == "wire" else ["64", ""])
    for r in rows:
        assert r["wire_model"] == "exact" and r["accuracy"] == r["accuracy_exact"]
        assert 0 <= float(r["accuracy_first_order"]) <= 1
    if param == "wire":     # no wires: the two models are one
        assert rows[0]["accuracy_exact"] == rows[0]["accuracy_first_order"]
    assert (out / f"sweep-{param}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_passive_designs_with_exact_wires_map_and_sweep_both_wire_models(run_dir, tmp_path):
    """A passive design with exact wires maps (issue 17: no longer refused) and its wire sweep
    reports the exact and the first-order model side by side."""
    import csv
    from hwmodel.design import save_design
    from ttfs.cli import main
    run = load_model(run_dir)
    hw = HardwareConfig(neuron="passive", scale_by="capacitance", v_th_v=0.005, r_wire_row_ohm=1.0, r_wire_col_ohm=1.0)
    save_design(map_model(run.weights, run.model, hw, str(run_dir)), tmp_path / "d")
    out = tmp_path / "sweep"
    assert main(["hw-sweep", str(tmp_path / "d"), "--param", "wire", "--values", "0", "2", "100", "--limit", "20",
                 "--out", str(out), "--quiet"]) == 0
    rows = {float(r["value"]): r for r in csv.DictReader((out / "sweep-wire.csv").open())}
    assert rows[0.0]["accuracy_exact"] == rows[0.0]["accuracy_first_order"]     # no wires: one model
    assert all(0 <= float(r[k]) <= 1 for r in rows.values() for k in ("accuracy_exact", "accuracy_first_order"))
    assert rows[100.0]["accuracy_exact"] != rows[100.0]["accuracy_first_order"]   # both models ran (seeded)


def test_exact_wires_are_solved_once_per_chip_and_keyed_on_its_conductances(wired_design, monkeypatch):
    """hw-eval's batches share one solve per chip; a chip changed in memory is not served the
    stored chip's cached wires."""
    import dataclasses

    import hwmodel.wire_model as wm
    from hwmodel.behavioural import evaluate
    calls = []
    real = wm.exact_layer
    monkeypatch.setattr(wm, "exact_layer", lambda *a: calls.append(1) or real(*a))
    design = load_design(wired_design)
    design = dataclasses.replace(design, folder="")            # no cache: every solve is counted
    images = np.random.default_rng(1).integers(0, 256, (30, 784)).astype(np.uint8)
    evaluate(design, images, np.zeros(30, np.int64), trials=2, batch_size=10, progress=False)
    assert len(calls) == 2 * design.n_layers                   # 2 chips x layers, not x 3 batches
    stored = load_design(wired_design)
    chip = stored.stored_chip()
    chip_wires(stored, chip)                                   # writes the cache
    changed = dataclasses.replace(chip, g_pos=[g * 1.5 for g in chip.g_pos])
    assert not np.array_equal(chip_wires(stored, changed)[0].g_pos_s, chip_wires(stored, chip)[0].g_pos_s)
