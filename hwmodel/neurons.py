"""Behavioural parameters of one layer of neuron circuits, from its cells' conductances.

Every neuron is a column whose output y obeys, between input events (docs/hwmodel.md derives it)

    c_eff dy/dt = sum_j v_read (g_pos_ij - g_neg_ij) [t >= t_j] - g_leak y,

and fires (its comparator switches) when y reaches theta = V_th + offset. With kT/C noise on
(`hw.ktc_noise_temperature_k`) each inference starts y at a sampled N(0, k_B T / c_eff) volts.

- integrator, ideal op-amp: c_eff = C, g_leak = 0 (the training model, linear ramps).
- integrator, open-loop gain A: the inverting node sits at -y/A instead of 0, so every cell of the
  column (G_tot = sum_j g_pos + g_neg, driven or grounded) leaks y/A: c_eff = C (1 + 1/A),
  g_leak = G_tot / A.
- passive: the column node itself is y, on a grounded C: c_eff = C, g_leak = G_tot.

Wires (hwmodel/wire_model.py, per tile): the drive and the noise use the effective cell
conductances of `LayerWires` (exact by default, or first order), G_tot is the neuron's summing-node
self-admittance g_self. Passive columns with exact wires are coupled through the row wires: their
nodes obey C dV/dt = I(t) - Y_g V per column-tile group (`LayerWires.y_cols_s`), solved in modal
form by hwmodel.coupled (`LayerCircuit.modes`; g_leak then holds diag(Y_g)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.constants import Boltzmann as BOLTZMANN_J_PER_K

from hwmodel.config import HardwareConfig
from hwmodel.coupled import Modes, modes
from hwmodel.tiles import tile_bounds
from hwmodel.wire_model import LayerWires, effective_conductances, layer_wires, wire_paths

__all__ = ["LayerCircuit", "layer_circuit", "effective_conductances", "wire_paths"]   # first order: wire_model


@dataclass(frozen=True)
class LayerCircuit:
    """What the kernels need for one layer: all arrays per neuron (n,) or per cell (K, n)."""

    drive_a: np.ndarray      # (K, n) signed current of input j into neuron i once j's row is driven
    noise_a: np.ndarray      # (K, n) std of that current's read noise
    g_leak_s: np.ndarray     # (n,)
    c_eff_f: np.ndarray      # (n,)
    theta_v: np.ndarray      # (n,) threshold including comparator offset
    ideal: bool              # linear ramps and no noise: the training sweep applies
    modes: Modes | None = None   # passive nodes coupled by exact wires (hwmodel.coupled), else None
    ktc_rms_v: np.ndarray | None = None   # (n,) rms kT/C reset voltage sqrt(k_B T / c_eff); None: off


def layer_circuit(g_pos, g_neg, offset_v, c_mem_f: float, v_th_v: float, hw: HardwareConfig,
                  wires: LayerWires | None = None) -> LayerCircuit:
    """One layer's circuit from its cells (S); `wires`: their LayerWires if already computed (cache)."""
    wires = wires if wires is not None else layer_wires(g_pos, g_neg, hw)
    gp, gn = wires.g_pos_s, wires.g_neg_s
    drive = hw.v_read_v * (gp - gn)
    noise = hw.read_noise_rel * hw.v_read_v * np.sqrt(gp * gp + gn * gn) if hw.read_noise_rel > 0 \
        else np.zeros_like(drive)
    g_tot = wires.g_self_s
    n = drive.shape[1]
    if hw.neuron == "passive":
        g_leak, c_eff = g_tot, np.full(n, c_mem_f)
    elif hw.opamp_gain is None:
        g_leak, c_eff = np.zeros(n), np.full(n, c_mem_f)
    else:
        a = hw.opamp_gain
        g_leak, c_eff = g_tot / a, np.full(n, c_mem_f * (1.0 + 1.0 / a))
    ktc = None if hw.ktc_noise_temperature_k is None else np.sqrt(BOLTZMANN_J_PER_K * hw.ktc_noise_temperature_k / c_eff)
    ideal = hw.neuron == "integrator" and hw.opamp_gain is None and hw.read_noise_rel == 0 and ktc is None
    coupled = None
    if hw.neuron == "passive" and wires.y_cols_s is not None:     # dual-rail: physical column i = neuron i
        coupled = modes(wires.y_cols_s, c_eff, tile_bounds(n, hw.tile_cols))
    return LayerCircuit(drive, noise, np.ascontiguousarray(g_leak, dtype=np.float64), c_eff,
                        v_th_v + np.asarray(offset_v, dtype=np.float64), ideal, coupled, ktc)
