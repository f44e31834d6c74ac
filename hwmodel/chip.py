"""One fabricated chip: a Monte-Carlo draw of a design's random non-idealities.

From the nominal (quantised) conductances, a chip draws, per cell, programming variation
(lognormal, median = nominal), stuck-at-on (g_max_s) and stuck-at-off (g_min_s) cells, and per
comparator a random offset. Trial k draws from `SeedSequence(hw.seed, spawn_key=(k, layer,
purpose))`: each non-ideality has its own stream, so turning one on or changing its size leaves
the others' draws unchanged (common random numbers across a sweep). Trial 0 is the chip stored
in design.npz. Read noise is drawn per inference, inside the kernel, keyed by `noise_seed`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwmodel.config import HardwareConfig

_PROG, _STUCK, _OFFSET, _NOISE = 0, 1, 2, 3


def _rng(hw: HardwareConfig, trial: int, layer: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(hw.seed, spawn_key=(trial, layer, purpose)))


@dataclass(frozen=True)
class Chip:
    """The physical values of one chip instance, per layer."""

    g_pos: list          # (n_in, n_out) siemens
    g_neg: list
    offset_v: list       # (n_out,) comparator offset of each neuron (systematic + random), volts
    noise_seed: int      # keys the per-inference read-noise draws
    trial: int


def program(g_nominal: np.ndarray, hw: HardwareConfig, trial: int, layer: int, cell: int) -> np.ndarray:
    """Programmed conductances of one array of cells (cell: 0 for g_pos, 1 for g_neg)."""
    g = np.array(g_nominal, dtype=np.float64)
    if hw.prog_sigma > 0:
        eps = _rng(hw, trial, layer, _PROG).standard_normal((2,) + g.shape)[cell]
        g = g * np.exp(hw.prog_sigma * eps)
    if hw.stuck_on_fraction > 0 or hw.stuck_off_fraction > 0:
        u = _rng(hw, trial, layer, _STUCK).random((2,) + g.shape)[cell]
        g = np.where(u < hw.stuck_on_fraction, hw.g_max_s, g)
        g = np.where((u >= hw.stuck_on_fraction) & (u < hw.stuck_on_fraction + hw.stuck_off_fraction),
                     hw.g_min_s, g)
    return g


def comparator_offsets(n_out: int, hw: HardwareConfig, trial: int, layer: int) -> np.ndarray:
    off = np.full(n_out, hw.comparator_offset_v)
    if hw.comparator_offset_sigma_v > 0:
        off = off + hw.comparator_offset_sigma_v * _rng(hw, trial, layer, _OFFSET).standard_normal(n_out)
    return off


def noise_seed(hw: HardwareConfig, trial: int) -> int:
    return int(np.random.SeedSequence(hw.seed, spawn_key=(trial, 0, _NOISE)).generate_state(1, np.uint64)[0])


def draw_chip(g_pos_nominal, g_neg_nominal, hw: HardwareConfig, trial: int) -> Chip:
    """Chip instance `trial` of a design with these nominal conductances."""
    return Chip(
        g_pos=[program(g, hw, trial, l, 0) for l, g in enumerate(g_pos_nominal)],
        g_neg=[program(g, hw, trial, l, 1) for l, g in enumerate(g_neg_nominal)],
        offset_v=[comparator_offsets(g.shape[1], hw, trial, l) for l, g in enumerate(g_pos_nominal)],
        noise_seed=noise_seed(hw, trial),
        trial=trial,
    )
