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

Equations: every row driver and every column end is a port (R row ports, then C column ports);
the wire nodes u_rc (row r at column c; the row port itself when r_row_ohm = 0) and w_rc (column c at
row r; the column port when r_col_ohm = 0) are internal. The network's conductance Laplacian L, split
into ports p and internal nodes i, reduces exactly (Kron reduction, Kirchhoff's current law at every
internal node) to the port admittance Y = L_pp - L_pi L_ii^-1 L_ip: the currents into the network at
its ports are Y @ v_ports. L_ii is symmetric positive definite (every internal node reaches a port),
so one sparse LU of it and one solve per port asked for, in blocks, give the blocks of Y needed.
Virtual-ground columns (v_c = 0) take I_col = T @ V_row with T = -Y_cr: the column solves only.

With wires on both rows and columns the array is a 2-D grid, and solving per port is slow (the
factor is big and every solve sweeps all of it). Ports touch only the boundary nodes B (each row's
node at column 0, each column's node at the last row), so Y = L_pp - L_pB S^-1 L_Bp with S the
Schur complement of L_ii onto B. Ordering the other internal nodes by nested dissection of the grid
(recursive bisection along the longer side; separators are lines of cells) and B last, one LU of
L_ii in that order, with no pivoting (L_ii is symmetric positive definite), holds S = L22 U22 in its
trailing block: one factorisation and no solves give all of Y (`_boundary_schur`).
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


def physical_maps(n_in: int, n_out: int, scheme: str):
    """(row_input, row_sign, col_neuron, col_sign) of the physical array `physical_cells` lays out:
    physical row r is input row_input[r] driven at sign row_sign[r] (dual-rail: + row, - row;
    differential: one row), physical column c feeds neuron col_neuron[c] with sign col_sign[c]
    (differential: + column, - column)."""
    if scheme == "dual-rail":
        return (np.repeat(np.arange(n_in), 2), np.tile([1.0, -1.0], n_in),
                np.arange(n_out), np.ones(n_out))
    return np.arange(n_in), np.ones(n_in), np.repeat(np.arange(n_out), 2), np.tile([1.0, -1.0], n_out)


def _check(g, r_row_ohm, r_col_ohm):
    if g.ndim != 2 or np.any(~np.isfinite(g)) or np.any(g < 0):
        raise ValueError("g_cells_s: expected a 2-D array of finite, non-negative conductances (S)")
    if not (np.isfinite(r_row_ohm) and np.isfinite(r_col_ohm) and r_row_ohm >= 0 and r_col_ohm >= 0):
        raise ValueError(f"wire resistances must be finite and >= 0 (got {r_row_ohm}, {r_col_ohm})")


def laplacian(g_cells_s, r_row_ohm: float, r_col_ohm: float):
    """(L, n_ports): the conductance Laplacian (S, sparse CSC) of one physical array with its wires,
    node order: R row ports, C column ports, then the internal wire nodes (module docstring)."""
    g = np.asarray(g_cells_s, dtype=np.float64)
    _check(g, r_row_ohm, r_col_ohm)
    n_r, n_c = g.shape
    n_ports = n_r + n_c
    row_free, col_free = r_row_ohm > 0, r_col_ohm > 0
    cell = np.arange(n_r * n_c).reshape(n_r, n_c)
    next_node = n_ports
    if row_free:
        u, next_node = next_node + cell, next_node + n_r * n_c
    else:
        u = np.broadcast_to(np.arange(n_r)[:, None], (n_r, n_c))
    if col_free:
        w, next_node = next_node + cell, next_node + n_r * n_c
    else:
        w = np.broadcast_to(n_r + np.arange(n_c)[None, :], (n_r, n_c))
    ia, ib, gab = [u.ravel()], [w.ravel()], [g.ravel()]     # the cells
    if row_free:                                            # driver segment, then one per pitch
        ia += [np.arange(n_r), u[:, :-1].ravel()]
        ib += [u[:, 0], u[:, 1:].ravel()]
        gab += [np.full(n_r + n_r * (n_c - 1), 1.0 / r_row_ohm)]
    if col_free:                                            # one per pitch, then the segment to the neuron
        ia += [w[:-1, :].ravel(), w[-1, :]]
        ib += [w[1:, :].ravel(), n_r + np.arange(n_c)]
        gab += [np.full(n_c * (n_r - 1) + n_c, 1.0 / r_col_ohm)]
    ia, ib, gab = np.concatenate(ia), np.concatenate(ib), np.concatenate(gab)
    diag = np.bincount(ia, gab, next_node) + np.bincount(ib, gab, next_node)
    lap = sp.coo_matrix((np.concatenate([diag, -gab, -gab]),
                         (np.concatenate([np.arange(next_node), ia, ib]),
                          np.concatenate([np.arange(next_node), ib, ia]))), shape=(next_node, next_node))
    return lap.tocsc(), n_ports


def port_admittance(g_cells_s, r_row_ohm: float, r_col_ohm: float, ports=None, block: int = 64) -> np.ndarray:
    """Y[:, ports] (all R + C ports, len(ports)), in S: column k is the current into the network at
    every port when port ports[k] is at 1 V and every other port at 0 V (rows first, then columns).
    `ports` None: all of them (Y is symmetric)."""
    lap, n_ports = laplacian(g_cells_s, r_row_ohm, r_col_ohm)
    ports = np.arange(n_ports) if ports is None else np.asarray(ports, dtype=np.int64)
    if r_row_ohm > 0 and r_col_ohm > 0:
        return _boundary_schur(lap, *np.shape(g_cells_s))[:, ports]
    y = lap[:n_ports, :][:, ports].toarray()
    if lap.shape[0] == n_ports:
        return y
    l_ii = lap[n_ports:, n_ports:].tocsc()
    l_ip = lap[n_ports:, :n_ports].tocsc()
    l_pi = l_ip.T.tocsr()
    lu = splu(l_ii)
    for start in range(0, len(ports), block):
        stop = min(start + block, len(ports))
        x = lu.solve(l_ip[:, ports[start:stop]].toarray())
        y[:, start:stop] -= l_pi @ x
    return y


def _dissection(r0: int, r1: int, c0: int, c1: int, out: list, leaf: int = 64) -> None:
    """Append the cell rectangles (r0, r1, c0, c1) of a nested-dissection order of the grid: each
    half before the line of cells that separates them, small pieces whole."""
    h, w = r1 - r0, c1 - c0
    if h <= 0 or w <= 0:
        return
    if h * w <= leaf:
        out.append((r0, r1, c0, c1))
    elif h >= w:
        m = (r0 + r1) // 2
        _dissection(r0, m, c0, c1, out, leaf)
        _dissection(m + 1, r1, c0, c1, out, leaf)
        out.append((m, m + 1, c0, c1))
    else:
        m = (c0 + c1) // 2
        _dissection(r0, r1, c0, m, out, leaf)
        _dissection(r0, r1, m + 1, c1, out, leaf)
        out.append((r0, r1, m, m + 1))


def _boundary_schur(lap, n_r: int, n_c: int) -> np.ndarray:
    """The whole port admittance Y (ports, ports) of an array with row and column wires (both r > 0),
    by one ordered LU of L_ii whose trailing block is the Schur complement onto the boundary nodes
    (module docstring)."""
    n_ports = n_r + n_c
    cell = np.arange(n_r * n_c).reshape(n_r, n_c)
    u, w = cell, n_r * n_c + cell                   # internal indices (laplacian's order less the ports)
    boundary = np.concatenate([u[:, 0], w[-1, :]])
    rects: list = []
    _dissection(0, n_r, 0, n_c, rects)
    inner = np.concatenate([np.concatenate([u[a:b, c:d].ravel(), w[a:b, c:d].ravel()]) for a, b, c, d in rects])
    on_boundary = np.zeros(2 * n_r * n_c, dtype=bool)
    on_boundary[boundary] = True
    order = np.concatenate([inner[~on_boundary[inner]], boundary])
    l_ii = lap[n_ports:, n_ports:].tocsr()[order][:, order].tocsc()
    lu = splu(l_ii, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    n, m = len(order), len(boundary)
    if not (np.array_equal(lu.perm_c[n - m:], np.arange(n - m, n)) and np.array_equal(lu.perm_r, np.arange(n))):
        raise RuntimeError("wire_network: SuperLU reordered the boundary block; cannot read its Schur complement")
    schur = lu.L[n - m:, n - m:].toarray() @ lu.U[n - m:, n - m:].toarray()
    del lu
    l_bp = lap[n_ports:, :n_ports].tocsr()[boundary].toarray()
    y = lap[:n_ports, :n_ports].toarray() - l_bp.T @ np.linalg.solve(schur, l_bp)
    return 0.5 * (y + y.T)


def column_transfer(g_cells_s, r_row_ohm: float, r_col_ohm: float, block_cols: int = 64) -> np.ndarray:
    """T (physical columns, physical rows), in A/V: the current into each column's virtual ground
    is T @ V_row for row driver voltages V_row (every column port at 0 V): T = -Y_cr."""
    g = np.asarray(g_cells_s, dtype=np.float64)
    n_r, n_c = g.shape
    if r_row_ohm == 0 and r_col_ohm == 0:
        _check(g, r_row_ohm, r_col_ohm)
        return g.T.copy()
    y = port_admittance(g, r_row_ohm, r_col_ohm, ports=n_r + np.arange(n_c), block=block_cols)
    return -y[:n_r].T


def transfer_matrix(g_pos_s, g_neg_s, r_row_ohm: float, r_col_ohm: float, scheme: str, **kwargs) -> np.ndarray:
    """Signed effective conductances (S), (n_in, n_out): neuron i's input current is
    sum_j W[j, i] V_j when input j drives +V_j (and -V_j on its - row, dual-rail). Without wires
    W = g_pos - g_neg; with them, the exact network's map (column_transfer in the writer's geometry)."""
    t = column_transfer(physical_cells(g_pos_s, g_neg_s, scheme), r_row_ohm, r_col_ohm, **kwargs)
    if scheme == "dual-rail":
        return (t[:, 0::2] - t[:, 1::2]).T
    return (t[0::2, :] - t[1::2, :]).T
