"""Behavioural parameters of one layer of neuron circuits, from its cells' conductances.

Every neuron is a column whose output y obeys, between input events (docs/hwmodel.md derives it)

    c_eff dy/dt = sum_j v_read (g_pos_ij - g_neg_ij) [t >= t_j] - g_leak y,

and fires (its comparator switches) when y reaches theta = V_th + offset.

- integrator, ideal op-amp: c_eff = C, g_leak = 0 (the training model, linear ramps).
- integrator, open-loop gain A: the inverting node sits at -y/A instead of 0, so every cell of the
  column (G_tot = sum_j g_pos + g_neg, driven or grounded) leaks y/A: c_eff = C (1 + 1/A),
  g_leak = G_tot / A.
- passive: the column node itself is y, on a grounded C: c_eff = C, g_leak = G_tot.

Wires (first order): a cell's current also flows through the row wire from its driver and the
column wire to its neuron, in series; with r_row, r_col per cell pitch the cell behaves as
g / (1 + g R_path), R_path = r_row (cells between driver and cell) + r_col (cells between cell and
neuron). This ignores the sharing of the wires by the other cells' currents (it underestimates
the IR drop of large, busy arrays); the netlist stage models the wires exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwmodel.config import HardwareConfig


@dataclass(frozen=True)
class LayerCircuit:
    """What the kernels need for one layer: all arrays per neuron (n,) or per cell (K, n)."""

    drive_a: np.ndarray      # (K, n) signed current of input j into neuron i once j's row is driven
    noise_a: np.ndarray      # (K, n) std of that current's read noise
    g_leak_s: np.ndarray     # (n,)
    c_eff_f: np.ndarray      # (n,)
    theta_v: np.ndarray      # (n,) threshold including comparator offset
    ideal: bool              # linear ramps and no noise: the training sweep applies


def wire_paths(n_in: int, n_out: int, hw: HardwareConfig):
    """Series wire resistance (ohm) of every + cell and - cell, each (n_in, n_out).

    dual-rail: rows 2j (+) and 2j+1 (-), driven from the left, neuron i's column at position i,
    neuron at the bottom of 2 n_in rows. differential: row j, columns 2i (+) and 2i+1 (-) of 2 n_out,
    neuron at the bottom of n_in rows.
    """
    j = np.arange(n_in)[:, None]
    i = np.arange(n_out)[None, :]
    if hw.scheme == "dual-rail":
        rows = 2 * n_in
        r_pos = hw.r_wire_row_ohm * (i + 1) + hw.r_wire_col_ohm * (rows - 2 * j)
        r_neg = hw.r_wire_row_ohm * (i + 1) + hw.r_wire_col_ohm * (rows - 2 * j - 1)
    else:
        r_pos = hw.r_wire_row_ohm * (2 * i + 1) + hw.r_wire_col_ohm * (n_in - j)
        r_neg = hw.r_wire_row_ohm * (2 * i + 2) + hw.r_wire_col_ohm * (n_in - j)
    return r_pos.astype(np.float64), r_neg.astype(np.float64)


def effective_conductances(g_pos, g_neg, hw: HardwareConfig):
    if hw.r_wire_row_ohm == 0 and hw.r_wire_col_ohm == 0:
        return g_pos, g_neg
    r_pos, r_neg = wire_paths(*g_pos.shape, hw)
    return g_pos / (1.0 + g_pos * r_pos), g_neg / (1.0 + g_neg * r_neg)


def layer_circuit(g_pos, g_neg, offset_v, c_mem_f: float, v_th_v: float, hw: HardwareConfig) -> LayerCircuit:
    gp, gn = effective_conductances(g_pos, g_neg, hw)
    drive = hw.v_read_v * (gp - gn)
    noise = hw.read_noise_rel * hw.v_read_v * np.sqrt(gp * gp + gn * gn) if hw.read_noise_rel > 0 \
        else np.zeros_like(drive)
    g_tot = (gp + gn).sum(axis=0)
    n = drive.shape[1]
    if hw.neuron == "passive":
        g_leak, c_eff = g_tot, np.full(n, c_mem_f)
    elif hw.opamp_gain is None:
        g_leak, c_eff = np.zeros(n), np.full(n, c_mem_f)
    else:
        a = hw.opamp_gain
        g_leak, c_eff = g_tot / a, np.full(n, c_mem_f * (1.0 + 1.0 / a))
    ideal = hw.neuron == "integrator" and hw.opamp_gain is None and hw.read_noise_rel == 0
    return LayerCircuit(drive, noise, np.ascontiguousarray(g_leak, dtype=np.float64), c_eff,
                        v_th_v + np.asarray(offset_v, dtype=np.float64), ideal)
