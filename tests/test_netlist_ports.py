"""The reduced netlists' tile ports and couplings: solved once per design (DESIGN/wires-cache/ports.npz,
read again by a second load, recomputed when corrupt, stale or of a re-mapped design), and the
per-circuit couplings writing the same resistors as a dense Kron reduction of each tile."""
import dataclasses

import numpy as np
import pytest

import netlists.ports as ports_mod
import netlists.runner as runner
from hwmodel.design import load_design, save_design
from hwmodel.mapping import map_model
from hwmodel.tiles import layer_tiles
from hwmodel.wire_model import CACHE_DIR
from hwmodel.wire_network import physical_cells
from netlists.circuit import make_circuit
from netlists.ports import DROP_REL
from netlists.writer import layer_netlist
from training.checkpoint import load_model

from dense_nodes import dense_laplacian, netlist_resistors
from test_wire_model import _tile_resistors, wired_design  # noqa: F401  (fixture: a tiled 784-8-10 design)


def _solved(circuit):
    return [ports_mod.layer_ports(circuit.g_pos[l], circuit.g_neg[l], circuit.scheme, circuit.r_wire_row_ohm,
                                  circuit.r_wire_col_ohm, circuit.tile_rows, circuit.tile_cols)
            for l in range(circuit.n_layers)]


def _same_ports(circuit, expected):
    for l, tiles in enumerate(expected):
        got = circuit.ports(l)
        assert [(t.rows, t.cols) for t in got] == [(t.rows, t.cols) for t in tiles]
        assert all(np.array_equal(a.y_s, b.y_s) for a, b in zip(got, tiles))


def test_reduced_ports_are_solved_once_per_design_and_a_bad_or_stale_cache_is_recomputed(wired_design, monkeypatch):
    """runner.load solves the tiles' ports once and writes DESIGN/wires-cache/ports.npz; another
    process (a fresh per-process cache) reads them; a corrupt file, tampered values, or a design
    re-mapped in place into the folder are solved again (and give the new design's ports)."""
    calls = []
    solve = ports_mod.layer_ports
    monkeypatch.setattr(ports_mod, "layer_ports", lambda *a: calls.append(1) or solve(*a))
    monkeypatch.setattr(runner, "_CACHE", {})
    _, circuit = runner.load(str(wired_design))
    n = circuit.n_layers
    path = wired_design / CACHE_DIR / "ports.npz"
    assert len(calls) == n and path.is_file()
    expected = _solved(circuit)
    calls.clear()

    def reload():
        monkeypatch.setattr(runner, "_CACHE", {})     # as a new worker process
        return runner.load(str(wired_design))[1]

    _same_ports(reload(), expected)
    assert calls == []                                # read, not solved
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(path, **{**arrays, "y0_0": arrays["y0_0"] * 2})     # values that are not the ones written
    _same_ports(reload(), expected)
    assert len(calls) == n
    path.write_bytes(b"not a zip")
    _same_ports(reload(), expected)
    assert len(calls) == 2 * n
    reload()
    assert len(calls) == 2 * n                        # the rewritten cache is read again

    design = load_design(wired_design)                # re-mapped in place: other conductances
    run = load_model(design.source_run)
    save_design(map_model(run.weights, run.model, design.hw.with_(g_max_s=0.5 * design.hw.g_max_s), design.source_run),
                wired_design)
    remapped = reload()
    assert len(calls) == 3 * n
    new = _solved(remapped)
    _same_ports(remapped, new)
    assert not np.array_equal(new[0][0].y_s, expected[0][0].y_s)


def _dense_ports(g_phys, rs, cs, r_row, r_col):
    """One tile's port admittance (S; rows first) by a dense Kron reduction of its resistors."""
    res = _tile_resistors(g_phys, rs.start, rs.stop, cs.start, cs.stop, r_row, r_col)
    ports = [("row", r) for r in range(rs.start, rs.stop)] + [("col", c) for c in range(cs.start, cs.stop)]
    inner = sorted({n for a, b, _ in res for n in (a, b)} - set(ports))
    lap = dense_laplacian(res, ports + inner)
    p = len(ports)
    return lap[:p, :p] - lap[:p, p:] @ np.linalg.solve(lap[p:, p:], lap[p:, :p])


def _expected_pairs(circuit, group, cols, row_row):
    """{frozenset(node a, node b): conductance} of a reduced layer netlist of neurons `cols`, built
    from every tile's dense port admittance: row-column couplings of the written columns summed over
    the rows sharing a driver; each integrator column's couplings to the other columns to ground;
    with `row_row`, the couplings between different driver nodes."""
    n_in, n_out = circuit.g_pos[0].shape
    dual = circuit.scheme == "dual-rail"
    drv = [f"d0_{k}" if k >= 0 else "0" for k in group]
    drv_m = [f"d0_{k}m" if k >= 0 else "0" for k in group]
    row_node = [n for j in range(n_in) for n in (drv[j], drv_m[j])] if dual else drv
    col_node = [f"c0_{i}" for i in range(n_out)] if dual else [n for i in range(n_out) for n in (f"c0_{i}", f"c0_{i}n")]
    col_neuron = list(range(n_out)) if dual else [i for i in range(n_out) for _ in (0, 1)]
    phys = physical_cells(circuit.g_pos[0], circuit.g_neg[0], circuit.scheme)
    pairs = {}

    def add(a, b, g):
        if a != b:
            pairs[frozenset((a, b))] = pairs.get(frozenset((a, b)), 0.0) + g

    for rs, cs in layer_tiles(*phys.shape, circuit.tile_rows, circuit.tile_cols):
        y = _dense_ports(phys, rs, cs, circuit.r_wire_row_ohm, circuit.r_wire_col_ohm)
        g = -y
        g[g <= DROP_REL * np.max(np.diag(y))] = 0.0
        np.fill_diagonal(g, 0.0)
        rows, pcols = list(range(rs.start, rs.stop)), list(range(cs.start, cs.stop))
        n_r = len(rows)
        for b, c in enumerate(pcols):
            if col_neuron[c] not in cols:
                continue
            for a, r in enumerate(rows):
                add(row_node[r], col_node[c], g[a, n_r + b])
            add(col_node[c], "0", g[n_r + b, n_r:].sum())
        if row_row:
            for a, r in enumerate(rows):
                for a2, r2 in enumerate(rows[a + 1:], a + 1):
                    add(row_node[r], row_node[r2], g[a, a2])
    return {k: v for k, v in pairs.items() if v > 0}


@pytest.mark.parametrize("scheme", ["dual-rail", "differential"])
def test_reduced_layer_netlists_of_column_runs_are_the_tiles_dense_port_equivalents(scheme):
    """Per run of columns (not aligned with the tiles), the reduced netlist's resistors are those of
    a dense Kron reduction of every tile (9-digit values); one circuit writing a second image gives
    the text a fresh circuit writes (the per-circuit couplings hold nothing of an image)."""
    from netlists.writer import driver_groups
    rng = np.random.default_rng(3)
    n_in, n_out = 10, 7
    circuit = make_circuit([rng.uniform(1e-6, 3e-5, (n_in, n_out))], [rng.uniform(1e-6, 1e-5, (n_in, n_out))],
                           [1e-10], [0.3], scheme=scheme, r_wire_row_ohm=150.0, r_wire_col_ohm=90.0,
                           tile_rows=6, tile_cols=3, wire_netlist="reduced", t_end_s=4e-6)
    images = []
    for _ in range(2):
        t = rng.choice([0.1e-6, 0.4e-6, 0.7e-6, np.inf], n_in)
        t[:3] = 0.25e-6                                # rows sharing a driver
        images.append(t)
    for t in images:
        _, group = driver_groups(t, circuit.t_end_s)
        for cols, save_all in ((range(0, 3), True), (range(0, 3), False), (range(3, 5), False), (range(5, 7), False)):
            text = layer_netlist(circuit, 0, t, cols=cols, save_all=save_all)
            got = {}
            for name, a, b, g in netlist_resistors(text):
                assert name.startswith("Ry0_")
                key = frozenset((a, b))
                got[key] = got.get(key, 0.0) + g
            expected = _expected_pairs(circuit, group, cols, row_row=save_all)
            assert got.keys() == expected.keys()
            for key, g in expected.items():
                assert got[key] == pytest.approx(g, rel=2e-8), key
            fresh = dataclasses.replace(circuit)
            assert layer_netlist(fresh, 0, t, cols=cols, save_all=save_all) == text


def test_a_circuit_with_other_terms_keeps_its_solved_ports(wired_design, monkeypatch):
    """Circuit.with_terms (the energy config's clamp and supply: energy.validate.with_energy) keeps the
    tiles' ports and couplings, so export-netlist and energy-validate neither solve nor read them
    again; a change of the crossbars themselves is refused."""
    monkeypatch.setattr(runner, "_CACHE", {})
    _, circuit = runner.load(str(wired_design))
    couplings = circuit.couplings(0)
    monkeypatch.setattr(ports_mod, "layer_ports", lambda *a: pytest.fail("ports solved again"))
    monkeypatch.setattr(ports_mod, "design_ports", lambda *a: pytest.fail("ports read again"))
    other = circuit.with_terms(v_swing_v=tuple(2.0 * float(np.max(v)) for v in circuit.v_th_v))
    assert other.v_swing_v != circuit.v_swing_v and other.couplings(0) is couplings
    _same_ports(other, [circuit.ports(l) for l in range(circuit.n_layers)])
    with pytest.raises(ValueError, match="r_wire_row_ohm"):
        circuit.with_terms(r_wire_row_ohm=2.0)
