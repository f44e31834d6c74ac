"""The exact port equivalent of a layer's tiled crossbar with its wires (the reduced netlists and the
energy of the wires build on it).

Each tile (hwmodel.tiles.layer_tiles over the physical array of hwmodel.wire_network.physical_cells)
is an independent resistive network between its ports: its rows' drivers at its left edge and its
columns' ends at the neurons' summing nodes. hwmodel.wire_network.port_admittance gives its Kron
reduction Y (S; currents into the network = Y @ v_ports, rows first). A netlist of that tile with
its wire nodes eliminated is one conductance -Y_pq between every pair of ports with Y_pq < 0; the
tiles' conductances between the same two nodes add up.

Physical row r of a layer is input `row_input[r]` driven at sign `row_sign[r]` (dual-rail: + row,
- row; differential: one row); physical column c feeds neuron `col_neuron[c]` with sign
`col_sign[c]` (differential: + column, - column).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwmodel.tiles import layer_tiles
from hwmodel.wire_network import laplacian, physical_cells, port_admittance

# Port pairs whose coupling -Y_pq is below this fraction of the tile's largest port self-admittance
# are not written: the Kron reduction leaves rounding noise (and couplings of that size change no
# firing time or source energy by more than ~1e-9 relative: tests/test_netlist_wires.py).
DROP_REL = 1e-12


@dataclass(frozen=True)
class TilePorts:
    """One tile: its physical rows and columns (slices of the layer's array) and its port
    admittance y_s ((R + C) x (R + C), rows first), in siemens."""

    rows: slice
    cols: slice
    y_s: np.ndarray

    @property
    def n_rows(self) -> int:
        return self.rows.stop - self.rows.start


def physical_maps(n_in: int, n_out: int, scheme: str):
    """(row_input, row_sign, col_neuron, col_sign) of the physical array (module docstring)."""
    if scheme == "dual-rail":
        return (np.repeat(np.arange(n_in), 2), np.tile([1.0, -1.0], n_in),
                np.arange(n_out), np.ones(n_out))
    return np.arange(n_in), np.ones(n_in), np.repeat(np.arange(n_out), 2), np.tile([1.0, -1.0], n_out)


def layer_ports(g_pos_s, g_neg_s, scheme: str, r_row_ohm: float, r_col_ohm: float,
                tile_rows: int | None = None, tile_cols: int | None = None) -> list[TilePorts]:
    """Every tile's exact port admittance (hwmodel.wire_network.port_admittance of its cells)."""
    g = physical_cells(g_pos_s, g_neg_s, scheme)
    return [TilePorts(rs, cs, port_admittance(g[rs, cs], r_row_ohm, r_col_ohm))
            for rs, cs in layer_tiles(*g.shape, tile_rows, tile_cols)]


def couplings(y_s: np.ndarray) -> np.ndarray:
    """-Y with the diagonal, the non-negative entries and those below DROP_REL of the largest
    self-admittance set to 0: the conductances (S) of the reduced netlist between port pairs."""
    g = -np.asarray(y_s, dtype=np.float64).copy()
    np.fill_diagonal(g, 0.0)
    g[g <= DROP_REL * float(np.max(np.diag(y_s), initial=0.0))] = 0.0
    return g


def transfer_and_row_form(g_pos_s, g_neg_s, scheme: str, r_row_ohm: float, r_col_ohm: float,
                          tile_rows: int | None = None, tile_cols: int | None = None, wire_heat: bool = True):
    """What an ideal virtual-ground layer's energy needs, per input (n_in inputs, n_out neurons):

    - w_s (n_in, n_out): neuron i's input current is V sum_j w_s[j, i] u_j when the inputs u
      (1 = driven, 0 = idle) are driven at V (and -V on the - rows);
    - a_s (n_in, n_in): the row drivers deliver the power V^2 u^T a_s u, all of it heat in the
      cells and wires (columns at 0 V);
    - a_wire_s (n_in, n_in) (None unless `wire_heat`): the share of that heat in the wires,
      sum over wire segments of g (v_a - v_b)^2, from the solved node voltages.
    Without wires w_s = g_pos - g_neg, a_s = diag(row sums of g_pos + g_neg), a_wire_s = 0."""
    g_pos_s = np.asarray(g_pos_s, dtype=np.float64)
    n_in, n_out = g_pos_s.shape
    row_in, row_sign, col_n, col_sign = physical_maps(n_in, n_out, scheme)
    g_cells = physical_cells(g_pos_s, g_neg_s, scheme)
    rows_onehot = np.zeros((len(row_in), n_in))
    rows_onehot[np.arange(len(row_in)), row_in] = row_sign
    cols_onehot = np.zeros((len(col_n), n_out))
    cols_onehot[np.arange(len(col_n)), col_n] = col_sign
    w = np.zeros((n_in, n_out))
    a = np.zeros((n_in, n_in))
    a_wire = np.zeros((n_in, n_in)) if wire_heat else None
    for rs, cs in layer_tiles(*g_cells.shape, tile_rows, tile_cols):
        y = port_admittance(g_cells[rs, cs], r_row_ohm, r_col_ohm)
        n_r = rs.stop - rs.start
        u, v = rows_onehot[rs], cols_onehot[cs]
        w += u.T @ (-y[n_r:, :n_r]).T @ v
        a += u.T @ y[:n_r, :n_r] @ u
        if wire_heat:
            h = wire_heat_form(g_cells[rs, cs], r_row_ohm, r_col_ohm)
            a_wire += u.T @ h @ u
    return w, a, a_wire


def wire_heat_form(g_cells_s, r_row_ohm: float, r_col_ohm: float) -> np.ndarray:
    """(R, R), S: with the column ends at 0 V and row drivers v, the wires dissipate v^T H v.

    The node voltages are the ports' plus the internal x = -L_ii^-1 L_ip v (Kirchhoff at every wire
    node); the wires' own Laplacian (the array's with every cell open) gives their heat."""
    from scipy.sparse.linalg import splu
    lap, n_ports = laplacian(g_cells_s, r_row_ohm, r_col_ohm)
    n_r = np.asarray(g_cells_s).shape[0]
    if lap.shape[0] == n_ports:
        return np.zeros((n_r, n_r))
    lap_w, _ = laplacian(np.zeros_like(np.asarray(g_cells_s, dtype=np.float64)), r_row_ohm, r_col_ohm)
    x = np.zeros((lap.shape[0], n_r))
    x[:n_r] = np.eye(n_r)
    x[n_ports:] = -splu(lap[n_ports:, n_ports:].tocsc()).solve(lap[n_ports:, :n_r].toarray())
    return x.T @ (lap_w @ x)
