"""Passive columns coupled by exact wires (hwmodel.coupled, issue 17): against time stepping of the
full node equations of the literal tiled network, against the independent columns when nothing
couples them, a crossing that falls back inside one segment, ngspice, and the command line."""
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from hwmodel import coupled, kernels, kernels_ref
from hwmodel.behavioural import fire
from hwmodel.config import HardwareConfig
from hwmodel.neurons import layer_circuit
from netlists.circuit import make_circuit
from netlists.simulate import simulate_network
from netlists.writer import _crossbar_cells

from dense_nodes import dense_laplacian, netlist_resistors

REPO = Path(__file__).resolve().parents[1]
T_END = 4e-6
C_F, V_TH, V_READ = 1e-11, 0.02, 0.2


def _cells(n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(1e-6, 3e-5, (n_in, n_out)), rng.uniform(1e-6, 1e-5, (n_in, n_out)), rng


def _hw(r_ohm, tiles, **kw):
    return HardwareConfig(neuron="passive", scale_by="capacitance", v_th_v=V_TH, v_read_v=V_READ, r_wire_row_ohm=r_ohm,
                          r_wire_col_ohm=r_ohm, tile_rows=tiles[0], tile_cols=tiles[1], **kw)


def _times(rng, b, n_in):
    t = rng.uniform(0, 1e-6, (b, n_in))
    t[:, 1:4] = t[:, :1]                        # a tie group
    t[0, 5] = np.inf                            # an input that never spikes
    t[1, :] = np.where(rng.random(n_in) < 0.5, 1e-6, t[1])     # a final group: every input arrives
    return t


def _dense_reference(gp, gn, r_ohm, tiles, t_rows, theta):
    """First crossing of theta by every passive node, from solve_ivp on the literal network's node
    equations: the column nodes carry C, every wire node is solved by Kirchhoff's law at every
    right-hand-side call (a dense LU of the wire nodes' conductance matrix), the drivers at
    +-V_read from their row's spike on."""
    n_in, n_out = gp.shape
    circuit = make_circuit([gp], [gn], [C_F], [V_TH], neuron="passive", r_wire_row_ohm=r_ohm, r_wire_col_ohm=r_ohm,
                           tile_rows=tiles[0], tile_cols=tiles[1], t_end_s=T_END)
    out = io.StringIO()
    rows_p, rows_m = [f"vp{j}" for j in range(n_in)], [f"vm{j}" for j in range(n_in)]
    _crossbar_cells(out, 0, rows_p, rows_m, circuit)
    res = [(a, b, g) for _, a, b, g in netlist_resistors(out.getvalue())]
    cols = [f"c0_{i}" for i in range(n_out)]
    drivers = rows_p + rows_m
    wires = sorted({n for a, b, _ in res for n in (a, b)} - set(cols) - set(drivers))
    lap = dense_laplacian(res, cols + wires + drivers)
    c, w = slice(0, n_out), slice(n_out, n_out + len(wires))
    d = slice(n_out + len(wires), None)
    lu = scipy.linalg.lu_factor(lap[w, w])

    def rhs_for(v_drv):
        def rhs(_, v):
            u = scipy.linalg.lu_solve(lu, -(lap[w, c] @ v + lap[w, d] @ v_drv))
            return -(lap[c, c] @ v + lap[c, w] @ u + lap[c, d] @ v_drv) / C_F
        return rhs

    events = []
    for i in range(n_out):
        ev = (lambda k: lambda _, v: v[k] - theta[k])(i)
        ev.direction = 1
        events.append(ev)
    first = np.full(n_out, np.inf)
    edges = np.unique(np.concatenate([[0.0], t_rows[t_rows < T_END], [T_END]]))
    v = np.zeros(n_out)
    for t0, t1 in zip(edges[:-1], edges[1:]):
        on = (t_rows <= t0).astype(float) * V_READ
        sol = solve_ivp(rhs_for(np.concatenate([on, -on])), (t0, t1), v, method="DOP853", rtol=1e-12,
                        atol=1e-16, events=events, max_step=(t1 - t0) / 20)
        for i in range(n_out):
            if np.isinf(first[i]) and sol.t_events[i].size:
                first[i] = sol.t_events[i][0]
        v = sol.y[:, -1]
    return first


@pytest.mark.parametrize("tiles", [(8, 3), (None, None)], ids=["tiled", "one-tile"])
def test_coupled_firing_times_match_time_stepping_of_the_full_node_equations(tiles):
    """Firing times within 1e-6 of the window of solve_ivp on the unreduced network (its rtol 1e-12
    and the netlist's 9-digit resistor values leave errors of order 1e-9 of the window: 1e-6 is
    far below the coupling's effect, which is asserted too)."""
    gp, gn, rng = _cells(12, 6, 0)
    r = 2000.0
    circ = layer_circuit(gp, gn, np.zeros(6), C_F, V_TH, _hw(r, tiles))
    t = _times(rng, 3, 12)
    got = fire(circ, t, T_END, 0.0, seed=0)
    want = np.array([_dense_reference(gp, gn, r, tiles, t[b], circ.theta_v) for b in range(len(t))])
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    fired = np.isfinite(got)
    assert fired.sum() >= 10
    np.testing.assert_allclose(got[fired], want[fired], rtol=0, atol=1e-6 * T_END)
    # the coupling matters: the same columns without it (the diagonal of Y only) fire elsewhere
    alone = kernels.column_forward(t, circ.drive_a, circ.noise_a, circ.g_leak_s, circ.c_eff_f, circ.theta_v, T_END,
                                   np.uint64(0), 0)
    both = fired & np.isfinite(alone)
    assert np.abs(alone - got)[both].max() > 1e-3 * T_END


def _modes_of(circ):
    """The Modes of circ's columns with no coupling at all: Y = diag(g_leak), one group per neuron."""
    n = len(circ.g_leak_s)
    return coupled.modes(np.diag(circ.g_leak_s), circ.c_eff_f, [(i, i + 1) for i in range(n)])


@pytest.mark.parametrize("case", ["no-wires", "one-column-tiles"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_without_coupling_the_solver_is_the_independent_column_path(case, backend):
    """No wires (the passive path of today, column_forward) or wires with one column per tile (nothing
    couples two columns): the coupled solver gives column_forward's times to 1e-12 of the window,
    read noise included (the same draws)."""
    gp, gn, rng = _cells(20, 7, 1)
    hw = _hw(0.0 if case == "no-wires" else 500.0, (8, 1), read_noise_rel=0.05)
    circ = layer_circuit(gp, gn, np.linspace(-0.005, 0.08, 7), C_F, V_TH, hw)     # some never reach theta
    t = _times(rng, 6, 20)
    if case == "no-wires":
        assert circ.modes is None
        m = _modes_of(circ)
    else:
        m = circ.modes
        assert len(m.bounds) == 8
    fwd = coupled.coupled_forward if backend == "numba" else coupled.coupled_forward_ref
    col = kernels.column_forward if backend == "numba" else kernels_ref.column_forward
    got = fwd(t, circ.drive_a, circ.noise_a, m.e, m.lam_per_s, m.bounds, circ.theta_v, T_END, np.uint64(9), 3)
    want = col(t, circ.drive_a, circ.noise_a, circ.g_leak_s, circ.c_eff_f, circ.theta_v, T_END, np.uint64(9), 3)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    fired = np.isfinite(got)
    assert 5 <= fired.sum() < fired.size
    np.testing.assert_allclose(got[fired], want[fired], rtol=0, atol=1e-12 * T_END)


def test_numba_and_numpy_twins_agree_on_noisy_tiled_layers():
    gp, gn, rng = _cells(30, 10, 2)
    circ = layer_circuit(gp, gn, np.zeros(10), C_F, V_TH, _hw(1000.0, (16, 4), read_noise_rel=0.03))
    assert len(circ.modes.bounds) == 4            # three column-tile groups: 4, 4, 2
    t = _times(rng, 8, 30)
    got = fire(circ, t, T_END, 2e-9, seed=4, sample_offset=11)
    want = fire(circ, t, T_END, 2e-9, seed=4, sample_offset=11, backend="numpy")
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    fired = np.isfinite(got)
    assert fired.sum() >= 20
    np.testing.assert_allclose(got[fired], want[fired], rtol=0, atol=1e-12 * T_END)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_crossing_that_falls_back_inside_one_segment_is_found(backend):
    """Two strongly coupled nodes, node 0 driven up and node 1 harder down by one input: node 0 rises
    (the fast differential mode), then the slow common mode pulls it below 0, so it crosses theta
    and comes back down long before the window's end (its end value is far below theta). The
    solver finds the first crossing, the root of the exact solution (expm) to 1e-12 of the window."""
    g, k = 1e-3, 0.95e-3                            # S: Y = [[g, -k], [-k, g]]
    y = np.array([[g, -k], [-k, g]])
    m = coupled.modes(y, np.full(2, C_F), [(0, 2)])
    drive = np.array([[1e-4, -1.3e-4]])             # A per node once the input is driven
    t_in = np.array([[0.3e-6]])

    def v0(t):                                      # exact node 0 potential: V = (1 - e^{-Y t / C}) Y^-1 I
        return ((np.eye(2) - scipy.linalg.expm(-y * (t - t_in[0, 0]) / C_F)) @ np.linalg.solve(y, drive[0]))[0]

    ts = np.linspace(t_in[0, 0], T_END, 371)     # 10 ns apart: the peak is ~20 ns after the input
    vs = np.array([v0(t) for t in ts])
    peak = ts[np.argmax(vs)]
    theta = 0.8 * vs.max()
    assert vs[-1] < 0 < theta and peak < 0.5e-6
    want = brentq(lambda t: v0(t) - theta, t_in[0, 0], peak, xtol=1e-22)
    fwd = coupled.coupled_forward if backend == "numba" else coupled.coupled_forward_ref
    got = fwd(t_in, drive, np.zeros_like(drive), m.e, m.lam_per_s, m.bounds, np.array([theta, 1.0]), T_END,
              np.uint64(0), 0)
    assert np.isinf(got[0, 1])
    assert abs(got[0, 0] - want) <= 1e-12 * T_END


def test_behavioural_exact_wires_match_ngspice_where_first_order_does_not():
    """A tiled 24 x 8 passive layer at 300 ohm per pitch: behavioural exact within 0.1% of the window of
    ngspice (the reduced netlist: the same tiles' exact port equivalents; a 1e-4-window maximum step),
    first order wrong by more than that."""
    gp, gn, rng = _cells(24, 8, 3)
    r, tiles = 300.0, (16, 4)
    circuit = make_circuit([gp], [gn], [C_F], [V_TH], neuron="passive", r_wire_row_ohm=r, r_wire_col_ohm=r,
                           tile_rows=tiles[0], tile_cols=tiles[1], t_end_s=T_END, wire_netlist="reduced")
    t = _times(rng, 2, 24)
    exact = fire(layer_circuit(gp, gn, np.zeros(8), C_F, V_TH, _hw(r, tiles)), t, T_END, 0.0, seed=0)
    first = fire(layer_circuit(gp, gn, np.zeros(8), C_F, V_TH, _hw(r, tiles, wire_model="first-order")), t, T_END,
                 0.0, seed=0)
    spice = np.array([simulate_network(circuit, t[b], {"max_step_frac": 1e-4, "options": ""})[0]
                      for b in range(len(t))])
    np.testing.assert_array_equal(np.isfinite(exact), np.isfinite(spice))
    fired = np.isfinite(spice)
    assert fired.sum() >= 8
    err_exact = np.abs(exact - spice)[fired].max()
    assert err_exact <= 1e-3 * T_END
    both = fired & np.isfinite(first)
    err_first = np.abs(first - spice)[both].max() if both.any() else np.inf
    assert err_first > 1e-3 * T_END and err_first > 5 * err_exact, (err_exact, err_first)


def test_map_and_hw_eval_of_a_passive_design_with_exact_wires_from_the_command_line(run_dir, tmp_path):
    """`ttfs map` then `ttfs hw-eval` on a tiny passive design with exact tiled wires: it maps (no
    longer refused), evaluates, and its hidden spikes differ from first-order wires'."""
    design = tmp_path / "d"
    sets = ["--set", "hw.neuron=passive", "--set", "hw.scale_by=capacitance", "--set", "hw.v_th_v=0.05",
            "--set", "hw.c_mem_f=1e-11", "--set", "hw.r_wire_row_ohm=20", "--set", "hw.r_wire_col_ohm=20",
            "--set", "hw.tile_cols=4"]
    run = lambda *a: subprocess.run([sys.executable, "-m", "ttfs.cli", *a], cwd=REPO, capture_output=True, text=True,
                                    timeout=300)
    out = run("map", str(run_dir), "--hw", "configs/hw/default.yaml", "--out", str(design), *sets)
    assert out.returncode == 0, out.stderr
    res = {}
    for model in ("exact", "first-order"):
        out = run("hw-eval", str(design), "--limit", "40", "--json", "--set", f"hw.wire_model={model}")
        assert out.returncode == 0, out.stderr
        res[model] = json.loads(out.stdout)
    assert res["exact"]["n"] == 40 and 0 <= res["exact"]["accuracy"] <= 1
    assert res["exact"]["spikes_per_neuron_mean"] > 0
    assert res["exact"]["t_error_mean"] != res["first-order"]["t_error_mean"]
