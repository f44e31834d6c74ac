"""The exact port equivalent of a layer's tiled crossbar with its wires (the reduced netlists and the
energy of the wires build on it).

Each tile (hwmodel.tiles.layer_tiles over the physical array of hwmodel.wire_network.physical_cells)
is an independent resistive network between its ports: its rows' drivers at its left edge and its
columns' ends at the neurons' summing nodes. hwmodel.wire_network.port_admittance gives its Kron
reduction Y (S; currents into the network = Y @ v_ports, rows first). A netlist of that tile with
its wire nodes eliminated is one conductance -Y_pq between every pair of ports with Y_pq < 0; the
tiles' conductances between the same two nodes add up (netlists.writer writes an integrator
column's couplings to other columns as one conductance to ground: both sit at virtual ground).

Physical row r of a layer is input `row_input[r]` driven at sign `row_sign[r]`; physical column c
feeds neuron `col_neuron[c]` with sign `col_sign[c]` (hwmodel.wire_network.physical_maps).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwmodel.tiles import layer_tiles
from hwmodel.wire_model import tile_admittances
from hwmodel.wire_network import laplacian, physical_cells, physical_maps

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


def layer_ports(g_pos_s, g_neg_s, scheme: str, r_row_ohm: float, r_col_ohm: float,
                tile_rows: int | None = None, tile_cols: int | None = None) -> list[TilePorts]:
    """Every tile's exact port admittance (hwmodel.wire_model.tile_admittances)."""
    return [TilePorts(rs, cs, y) for rs, cs, y in
            tile_admittances(g_pos_s, g_neg_s, scheme, r_row_ohm, r_col_ohm, tile_rows, tile_cols)]


def design_ports(design, circuit) -> dict:
    """{layer: `layer_ports`} of a circuit built from `design` (netlists.circuit.circuit_from_design:
    the nominal design's programmed conductances), solved once per design: cached in
    DESIGN/wires-cache/ports.npz (hwmodel.wire_model.design_cached, keyed by the design's content,
    the conductances, the wires and the tiles), so worker processes and reruns read it."""
    from hwmodel.wire_model import cache_key, design_cached
    c = circuit
    tiles, shapes = {}, {}
    for l in range(c.n_layers):
        n_in, n_out = c.g_pos[l].shape
        rows, _, cols, _ = physical_maps(n_in, n_out, c.scheme)
        tiles[l] = layer_tiles(len(rows), len(cols), c.tile_rows, c.tile_cols)
        for t, (rs, cs) in enumerate(tiles[l]):
            n = (rs.stop - rs.start) + (cs.stop - cs.start)
            shapes[f"y{l}_{t}"] = (n, n)

    def compute() -> dict:
        return {f"y{l}_{t}": tile.y_s for l in range(c.n_layers) for t, tile in enumerate(
            layer_ports(c.g_pos[l], c.g_neg[l], c.scheme, c.r_wire_row_ohm, c.r_wire_col_ohm, c.tile_rows,
                        c.tile_cols))}

    key = cache_key(design, "ports", c.scheme, c.r_wire_row_ohm, c.r_wire_col_ohm, c.tile_rows, c.tile_cols,
                    *c.g_pos, *c.g_neg)
    arrays = design_cached(design, "ports", key, compute, shapes)
    return {l: [TilePorts(rs, cs, arrays[f"y{l}_{t}"]) for t, (rs, cs) in enumerate(tiles[l])]
            for l in range(c.n_layers)}


def with_design_ports(design, circuit):
    """`circuit` (built from `design`) with its tiles' ports from `design_ports` if its crossbars are
    written reduced (else unchanged): every command that writes a design's netlists reads one solve."""
    if circuit.reduced:
        circuit.set_ports(design_ports(design, circuit))
    return circuit


def couplings(y_s: np.ndarray) -> np.ndarray:
    """-Y with the diagonal, the non-negative entries and those below DROP_REL of the largest
    self-admittance set to 0: the conductances (S) of the reduced netlist between port pairs."""
    g = -np.asarray(y_s, dtype=np.float64).copy()
    np.fill_diagonal(g, 0.0)
    g[g <= DROP_REL * float(np.max(np.diag(y_s), initial=0.0))] = 0.0
    return g


@dataclass(frozen=True)
class LayerCouplings:
    """A layer's reduced-netlist conductances (S) that no input changes (`layer_couplings`): per tile
    its `couplings` between row ports and column ports (g_rc, R x C) and between row ports (g_rr,
    R x R); between physical columns g_cc summed over the tiles, and its row sums g_cc_sum (what an
    integrator column's couplings to the other columns are written as, netlists.writer)."""

    tiles: tuple            # ((rows, cols, g_rc, g_rr), ...) in the tiles' order
    g_cc: np.ndarray        # (physical columns,) * 2
    g_cc_sum: np.ndarray    # (physical columns,)


def layer_couplings(tiles: list, n_cols: int) -> LayerCouplings:
    """`LayerCouplings` of a layer's tiles (`layer_ports`) with `n_cols` physical columns."""
    blocks, g_cc = [], np.zeros((n_cols, n_cols))
    for tile in tiles:
        g = couplings(tile.y_s)
        n_r = tile.n_rows
        blocks.append((tile.rows, tile.cols, g[:n_r, n_r:], g[:n_r, :n_r]))
        g_cc[tile.cols, tile.cols] += g[n_r:, n_r:]
    return LayerCouplings(tuple(blocks), g_cc, np.array([g_cc[c].sum() for c in range(n_cols)]))


def transfer_and_row_form(g_pos_s, g_neg_s, scheme: str, r_row_ohm: float, r_col_ohm: float,
                          tile_rows: int | None = None, tile_cols: int | None = None):
    """What an ideal virtual-ground layer's energy needs, per input (n_in inputs, n_out neurons):

    - w_s (n_in, n_out): neuron i's input current is V sum_j w_s[j, i] u_j when the inputs u
      (1 = driven, 0 = idle) are driven at V (and -V on the - rows);
    - a_s (n_in, n_in): the row drivers deliver the power V^2 u^T a_s u, all of it heat in the
      cells and wires (columns at 0 V);
    - a_wire_s (n_in, n_in): the share of that heat in the wires, sum over wire segments of
      g (v_a - v_b)^2, from the solved node voltages.
    Without wires w_s = g_pos - g_neg, a_s = diag(row sums of g_pos + g_neg), a_wire_s = 0."""
    g_pos_s = np.asarray(g_pos_s, dtype=np.float64)
    n_in, n_out = g_pos_s.shape
    row_in, row_sign, col_n, col_sign = physical_maps(n_in, n_out, scheme)
    g_cells = physical_cells(g_pos_s, g_neg_s, scheme)
    rows_onehot = np.zeros((len(row_in), n_in))
    rows_onehot[np.arange(len(row_in)), row_in] = row_sign
    cols_onehot = np.zeros((len(col_n), n_out))
    cols_onehot[np.arange(len(col_n)), col_n] = col_sign
    w, a, a_wire = np.zeros((n_in, n_out)), np.zeros((n_in, n_in)), np.zeros((n_in, n_in))
    for rs, cs in layer_tiles(*g_cells.shape, tile_rows, tile_cols):
        y_r, h = row_drive_solution(g_cells[rs, cs], r_row_ohm, r_col_ohm)
        n_r = rs.stop - rs.start
        u, v = rows_onehot[rs], cols_onehot[cs]
        w += u.T @ (-y_r[n_r:]).T @ v
        a += u.T @ y_r[:n_r] @ u
        a_wire += u.T @ h @ u
    return w, a, a_wire


def row_drive_solution(g_cells_s, r_row_ohm: float, r_col_ohm: float):
    """(Y[:, rows] ((R + C), R), H (R, R)), in S, of one tile with its column ends at 0 V: Y's row-port
    columns (hwmodel.wire_network.port_admittance's, from the same Laplacian) and the wires' heat
    form, v^T H v for row drivers v. One sparse LU; the node voltages X = -L_ii^-1 L_ir (one column
    per row driven at 1 V; Kirchhoff at every wire node) give both: Y[:, rows] = L_p. X, and
    H = X^T L_w X with L_w the wires' own Laplacian (the tile's with every cell open). Holds X
    (nodes x R): meant for tiles."""
    from scipy.sparse.linalg import splu
    g = np.asarray(g_cells_s, dtype=np.float64)
    lap, n_ports = laplacian(g, r_row_ohm, r_col_ohm)
    n_r = g.shape[0]
    if lap.shape[0] == n_ports:
        return lap[:n_ports, :n_r].toarray(), np.zeros((n_r, n_r))
    lap_w, _ = laplacian(np.zeros_like(g), r_row_ohm, r_col_ohm)
    lu = splu(lap[n_ports:, n_ports:].tocsc(), permc_spec="MMD_AT_PLUS_A")   # L_ii is symmetric
    x = np.zeros((lap.shape[0], n_r))
    x[:n_r] = np.eye(n_r)
    x[n_ports:] = -lu.solve(lap[n_ports:, :n_r].toarray())
    return lap[:n_ports].tocsr() @ x, x.T @ (lap_w.tocsr() @ x)
