"""Exact row-to-column transfer of a crossbar with wire resistance (building block, not yet the default).

With ideal row drivers and every column held at virtual ground (ideal integrator op-amps), the
crossbar with its wire segments is a linear resistive network, so the column currents are an exact
linear map of the row driver voltages: I_col = T @ V_row. This module computes T by nodal analysis.

Geometry (the netlist writer's, netlists/writer.py `_crossbar_cells`, and hwmodel/neurons.py
`wire_paths`): physical row r (0..R-1) is driven at its left end; one segment r_row_ohm joins the
driver to the row's node at column 0 and one joins the nodes at columns c-1 and c. Physical column c
(0..C-1) has its neuron (virtual ground, 0 V) at its bottom end: one segment r_col_ohm joins the
column's nodes at rows r-1 and r and one joins the node at row R-1 to the neuron; the column's top
end (row 0) is open. Cell (r, c), conductance g_rc, joins row node (r, c) to column node (r, c).
dual-rail: physical row 2j is input j's + row (g_pos, driven at +V), row 2j+1 its - row (g_neg,
driven at -V), column i is neuron i. differential: row j is input j, column 2i neuron i's + column
(g_pos), column 2i+1 its - column (g_neg), the neuron sums I(+) - I(-).

Equations: the unknowns x are the row-wire node voltages u_rc (if r_row_ohm > 0; else u_rc = V_r)
and the column-wire node voltages w_rc (if r_col_ohm > 0; else w_rc = 0). Kirchhoff's current law
at every unknown node gives A x = B V with A the (symmetric, positive definite) node-conductance
matrix and B the drivers' injections (1/r_row_ohm into u_r0); the column currents are I = C x + D V
(C: 1/r_col_ohm from w_(R-1)c, or the cells' g_rc u_rc without column wires; D the wire-free terms).
So T = C A^-1 B + D = (A^-1 C^T)^T B + D: one sparse LU of A (2 R C unknowns) and C solves, one per
column (A = A^T), in blocks of columns to bound the memory (block x 2 R C doubles).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu


def physical_cells(g_pos_s, g_neg_s, scheme: str) -> np.ndarray:
    """Cell conductances (S) of the one physical array, (physical rows, physical columns), in the
    writer's order: dual-rail (2 n_in, n_out) rows +, -, ...; differential (n_in, 2 n_out) columns +, -, ..."""
    g_pos_s, g_neg_s = np.asarray(g_pos_s, dtype=np.float64), np.asarray(g_neg_s, dtype=np.float64)
    n_in, n_out = g_pos_s.shape
    if scheme == "dual-rail":
        return np.stack([g_pos_s, g_neg_s], axis=1).reshape(2 * n_in, n_out)
    if scheme == "differential":
        return np.stack([g_pos_s, g_neg_s], axis=2).reshape(n_in, 2 * n_out)
    raise ValueError(f"scheme {scheme!r}: expected 'dual-rail' or 'differential'")


def column_transfer(g_cells_s, r_row_ohm: float, r_col_ohm: float, block_cols: int = 64) -> np.ndarray:
    """T (physical columns, physical rows), in A/V: the current into each column's virtual ground
    is T @ V_row for row driver voltages V_row. See the module docstring for geometry and equations."""
    g = np.asarray(g_cells_s, dtype=np.float64)
    if g.ndim != 2 or np.any(~np.isfinite(g)) or np.any(g < 0):
        raise ValueError("g_cells_s: expected a 2-D array of finite, non-negative conductances (S)")
    if not (np.isfinite(r_row_ohm) and np.isfinite(r_col_ohm) and r_row_ohm >= 0 and r_col_ohm >= 0):
        raise ValueError(f"wire resistances must be finite and >= 0 (got {r_row_ohm}, {r_col_ohm})")
    n_r, n_c = g.shape
    row_free, col_free = r_row_ohm > 0, r_col_ohm > 0
    if not (row_free or col_free):
        return g.T.copy()
    cell = np.arange(n_r * n_c).reshape(n_r, n_c)          # index of cell (r, c)
    u = cell if row_free else None                          # unknown index of row node (r, c)
    w = (cell + (n_r * n_c if row_free else 0)) if col_free else None
    n = n_r * n_c * (int(row_free) + int(col_free))
    ia, ib, gab = [], [], []                                # conductances between two unknowns
    diag = np.zeros(n)                                      # conductance from an unknown to a fixed node
    b_rows, b_cols, b_vals = [], [], []                     # B: injection from driver r into unknowns

    def link(a, b, gv):
        ia.append(a.ravel()), ib.append(b.ravel()), gab.append(np.broadcast_to(gv, a.shape).ravel())

    g_r = 1.0 / r_row_ohm if row_free else 0.0
    g_c = 1.0 / r_col_ohm if col_free else 0.0
    if row_free:
        link(u[:, :-1], u[:, 1:], g_r)
        np.add.at(diag, u[:, 0], g_r)                       # driver segment
        b_rows.append(u[:, 0]), b_cols.append(np.arange(n_r)), b_vals.append(np.full(n_r, g_r))
    if col_free:
        link(w[:-1, :], w[1:, :], g_c)
        np.add.at(diag, w[-1, :], g_c)                      # segment to the virtual ground
    if row_free and col_free:
        link(u, w, g)
    elif row_free:                                          # column nodes at 0 V
        np.add.at(diag, u.ravel(), g.ravel())
    else:                                                   # row nodes at V_r
        np.add.at(diag, w.ravel(), g.ravel())
        b_rows.append(w.ravel()), b_cols.append(np.repeat(np.arange(n_r), n_c)), b_vals.append(g.ravel())
    ia, ib, gab = np.concatenate(ia), np.concatenate(ib), np.concatenate(gab)
    np.add.at(diag, ia, gab)
    np.add.at(diag, ib, gab)
    a = sp.coo_matrix((np.concatenate([diag, -gab, -gab]),
                       (np.concatenate([np.arange(n), ia, ib]), np.concatenate([np.arange(n), ib, ia]))),
                      shape=(n, n)).tocsc()
    b = sp.coo_matrix((np.concatenate(b_vals), (np.concatenate(b_rows), np.concatenate(b_cols))),
                      shape=(n, n_r)).tocsr()
    if col_free:                                            # I_c = g_c w_(R-1)c
        c_mat = sp.coo_matrix((np.full(n_c, g_c), (np.arange(n_c), w[-1, :])), shape=(n_c, n))
    else:                                                   # I_c = sum_r g_rc u_rc
        c_mat = sp.coo_matrix((g.ravel(), (np.tile(np.arange(n_c), n_r), u.ravel())), shape=(n_c, n))
    c_t = c_mat.T.tocsc()
    lu = splu(a)
    t = np.empty((n_c, n_r))
    for start in range(0, n_c, block_cols):
        stop = min(start + block_cols, n_c)
        y = lu.solve(c_t[:, start:stop].toarray())          # A^-1 C^T, block of columns
        t[start:stop] = (b.T @ y).T
    return t


def transfer_matrix(g_pos_s, g_neg_s, r_row_ohm: float, r_col_ohm: float, scheme: str, **kwargs) -> np.ndarray:
    """Signed effective conductances (S), (n_in, n_out): neuron i's input current is
    sum_j W[j, i] V_j when input j drives +V_j (and -V_j on its - row, dual-rail). Without wires
    W = g_pos - g_neg; with them, the exact network's map (column_transfer in the writer's geometry)."""
    t = column_transfer(physical_cells(g_pos_s, g_neg_s, scheme), r_row_ohm, r_col_ohm, **kwargs)
    if scheme == "dual-rail":
        return (t[:, 0::2] - t[:, 1::2]).T
    return (t[0::2, :] - t[1::2, :]).T
