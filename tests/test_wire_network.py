"""The exact wire network (hwmodel.wire_network) against an independent dense solve of the netlist
writer's own crossbar, against the wire-free and first-order models, and against ngspice."""
import io

import numpy as np
import pytest

from hwmodel.config import HardwareConfig
from hwmodel.neurons import effective_conductances
from hwmodel.wire_network import transfer_matrix
from netlists.circuit import make_circuit
from netlists.writer import _crossbar_cells

from dense_nodes import currents_out, dense_laplacian, netlist_resistors, node_voltages


def _cells(rng, n_in, n_out):
    """Conductances 1/R with integer R (ohm), so the writer's 9-digit resistances are exact; some cells off."""
    g_pos = 1.0 / rng.integers(20_000, 500_000, (n_in, n_out))
    g_neg = 1.0 / rng.integers(20_000, 500_000, (n_in, n_out))
    g_pos[rng.random((n_in, n_out)) < 0.2] = 0.0
    g_neg[rng.random((n_in, n_out)) < 0.2] = 0.0
    return g_pos, g_neg


def _writer_crossbar(g_pos, g_neg, scheme, r_row, r_col):
    """The writer's crossbar lines (layer 0, drivers vp{j} / vm{j}) and its neuron column nodes."""
    n_in, n_out = g_pos.shape
    circuit = make_circuit([g_pos], [g_neg], [1e-10], [0.3], scheme=scheme, r_wire_row_ohm=r_row,
                           r_wire_col_ohm=r_col)
    out = io.StringIO()
    _crossbar_cells(out, 0, [f"vp{j}" for j in range(n_in)], [f"vm{j}" for j in range(n_in)], circuit)
    plus = [f"c0_{i}" for i in range(n_out)]
    minus = [f"c0_{i}n" for i in range(n_out)] if scheme == "differential" else None
    return out.getvalue(), plus, minus


def _dense_solve(g_pos, g_neg, scheme, r_row, r_col):
    """W (n_in, n_out) by numpy.linalg.solve of the full nodal matrix of the writer's resistors, one
    input at a time driven at +1 V (-1 V on its - row), columns at 0 V."""
    n_in, n_out = g_pos.shape
    text, plus, minus = _writer_crossbar(g_pos, g_neg, scheme, r_row, r_col)
    res = [(a, b, g) for _, a, b, g in netlist_resistors(text)]
    fixed = {f"vp{j}" for j in range(n_in)} | {f"vm{j}" for j in range(n_in)} | set(plus) | set(minus or [])
    w = np.zeros((n_in, n_out))
    for j in range(n_in):
        volts = {n: 0.0 for n in fixed}
        volts[f"vp{j}"] = 1.0
        volts[f"vm{j}"] = -1.0 if scheme == "dual-rail" else 0.0
        out = currents_out(res, node_voltages(res, volts), plus + (minus or []))
        into = {n: -i for n, i in out.items()}      # into the column from the network
        w[j] = [into[plus[i]] - (into[minus[i]] if minus else 0.0) for i in range(n_out)]
    return w


@pytest.mark.parametrize("scheme,n_in,n_out,r_row,r_col", [
    ("dual-rail", 5, 3, 2000.0, 3000.0),
    ("dual-rail", 8, 4, 500.0, 0.0),
    ("differential", 5, 3, 2000.0, 3000.0),
    ("differential", 8, 4, 0.0, 700.0),
])
def test_exact_map_matches_a_dense_solve_of_the_writers_netlist(scheme, n_in, n_out, r_row, r_col):
    """The sparse port model equals a dense nodal solve of the resistors the netlist writer writes
    (so the geometry is the writer's) to 1e-9 relative, and the wires matter at these values."""
    g_pos, g_neg = _cells(np.random.default_rng(n_in + n_out), n_in, n_out)
    exact = transfer_matrix(g_pos, g_neg, r_row, r_col, scheme)
    dense = _dense_solve(g_pos, g_neg, scheme, r_row, r_col)
    scale = np.abs(dense).max()
    np.testing.assert_allclose(exact, dense, rtol=0, atol=1e-9 * scale)
    assert np.abs(dense - (g_pos - g_neg)).max() > 1e-3 * scale


@pytest.mark.parametrize("scheme", ["dual-rail", "differential"])
def test_small_wires_give_the_wire_free_map_and_first_order_error_shrinks(scheme):
    """r -> 0: the exact map tends to g_pos - g_neg, and the first-order model (hwmodel.neurons,
    g / (1 + g r_path) per cell) converges to the exact one, its error falling about in step with r."""
    rng = np.random.default_rng(3)
    g_pos, g_neg = rng.uniform(1e-6, 5e-5, (12, 6)), rng.uniform(1e-6, 5e-5, (12, 6))
    ideal = g_pos - g_neg
    scale = np.abs(ideal).max()
    np.testing.assert_allclose(transfer_matrix(g_pos, g_neg, 1e-12, 1e-12, scheme), ideal, rtol=0,
                               atol=1e-12 * scale)
    errors = []
    for r in (100.0, 10.0, 1.0, 0.1):
        exact = transfer_matrix(g_pos, g_neg, r, r, scheme)
        hw = HardwareConfig(scheme=scheme, r_wire_row_ohm=r, r_wire_col_ohm=r)
        gp, gn = effective_conductances(g_pos, g_neg, hw)
        errors.append(np.abs((gp - gn) - exact).max() / scale)
    assert errors[0] > 1e-4                                     # first order is visibly off at 100 ohm
    for big, small in zip(errors, errors[1:]):
        assert small < 0.25 * big


def test_exact_map_matches_ngspice_operating_point():
    """The writer's crossbar in ngspice, DC row voltages, columns held at 0 V by sense sources:
    the column currents equal the exact map's to 1e-6 relative."""
    from netlists.ngspice import session
    rng = np.random.default_rng(11)
    n_in, n_out, scheme = 6, 3, "dual-rail"
    g_pos, g_neg = _cells(rng, n_in, n_out)
    v_in = rng.uniform(-0.3, 0.3, n_in)
    text, plus, _ = _writer_crossbar(g_pos, g_neg, scheme, 5000.0, 8000.0)
    lines = ["* wire network check"]
    lines += [f"Vp{j} vp{j} 0 {v_in[j]:.12g}" for j in range(n_in)]
    lines += [f"Vm{j} vm{j} 0 {-v_in[j]:.12g}" for j in range(n_in)]
    lines += [text.rstrip("\n")]
    lines += [f"Vs{i} {plus[i]} 0 0" for i in range(n_out)]
    lines += [".save all", ".tran 1e-9 2e-9", ".end", ""]
    vectors = session().run("\n".join(lines)).vectors
    got = np.array([vectors[f"vs{i}#branch"][-1] for i in range(n_out)])   # + node to - node: into the column
    expected = v_in @ transfer_matrix(g_pos, g_neg, 5000.0, 8000.0, scheme)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
    assert np.abs(expected - v_in @ (g_pos - g_neg)).max() > 1e-3 * np.abs(expected).max()


@pytest.mark.parametrize("scheme,r_row,r_col", [("dual-rail", 2000.0, 3000.0), ("differential", 0.0, 700.0),
                                                 ("dual-rail", 500.0, 0.0)])
def test_port_admittance_is_the_dense_kron_reduction_of_the_writers_resistors(scheme, r_row, r_col):
    """Y (every driver and column end a port) equals numpy's Kron reduction of the dense Laplacian of
    the writer's own resistors to 1e-9 relative; it is symmetric and its rows sum to zero (no path to
    ground inside the array)."""
    from hwmodel.wire_network import physical_cells, port_admittance
    n_in, n_out = 5, 3
    g_pos, g_neg = _cells(np.random.default_rng(7), n_in, n_out)
    text, plus, minus = _writer_crossbar(g_pos, g_neg, scheme, r_row, r_col)
    rows = [n for j in range(n_in) for n in ((f"vp{j}", f"vm{j}") if scheme == "dual-rail" else (f"vp{j}",))]
    cols = [n for i in range(n_out) for n in ((plus[i], minus[i]) if minus else (plus[i],))]
    res = [(a, b, g) for _, a, b, g in netlist_resistors(text)]
    names = rows + cols + sorted({n for a, b, _ in res for n in (a, b)} - set(rows) - set(cols))
    lap = dense_laplacian(res, names)
    p = len(rows) + len(cols)
    dense = lap[:p, :p] - lap[:p, p:] @ np.linalg.solve(lap[p:, p:], lap[p:, :p])
    y = port_admittance(physical_cells(g_pos, g_neg, scheme), r_row, r_col)
    scale = np.abs(dense).max()
    np.testing.assert_allclose(y, dense, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(y, y.T, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(y.sum(axis=1), 0.0, rtol=0, atol=1e-12 * scale)
