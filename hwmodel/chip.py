"""One fabricated chip: a Monte-Carlo draw of a design's random non-idealities.

From the nominal (quantised) conductances, a chip draws, per cell, programming variation
(lognormal, median = nominal), stuck-at-on (g_max_s) and stuck-at-off (g_min_s) cells, and per
comparator a random offset. Trial k draws from `SeedSequence(hw.seed, spawn_key=(k, layer,
purpose))`: each non-ideality has its own stream, so turning one on or changing its size leaves
the others' draws unchanged (common random numbers across a sweep). Trial 0 is the chip stored
in design.npz. Read noise is drawn per inference, inside the kernel, keyed by `noise_seed`; the
membranes' kT/C reset noise per inference too, keyed by `ktc_seed` (its own stream).
Training for the chip (hwmodel.aware) draws a chip per optimiser step s with the same functions on
the instance key `training_instance(s)`, streams no trial's draws share.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwmodel.config import HardwareConfig

_PROG, _STUCK, _OFFSET, _NOISE, _KTC = 0, 1, 2, 3, 4
# First word of a training step's spawn key (TRAINING_STREAM, step, layer, purpose): four words, where
# a chip trial's (trial, layer, purpose) has three, so no trial below 2**32 shares a stream with it.
TRAINING_STREAM = 2 ** 32 - 1
Instance = int | tuple        # a chip trial k, or a training step's key `training_instance(step)`


def training_instance(step: int) -> tuple:
    """The instance key of the chip drawn for training step `step` (hwmodel.aware)."""
    return (TRAINING_STREAM, int(step))


def _rng(hw: HardwareConfig, trial: Instance, layer: int, purpose: int) -> np.random.Generator:
    key = tuple(trial) if isinstance(trial, tuple) else (trial,)
    return np.random.default_rng(np.random.SeedSequence(hw.seed, spawn_key=key + (layer, purpose)))


def cell_factors(shape, hw: HardwareConfig, trial: Instance, layer: int):
    """The draws of one layer's + and - cells (arrays (2,) + shape, index 0: g_pos, 1: g_neg):
    (multiplier of the nominal conductance or None, stuck_on mask or None, stuck_off mask or None)."""
    shape = (2,) + tuple(shape)
    mult = on = off = None
    if hw.prog_sigma > 0:
        mult = _rng(hw, trial, layer, _PROG).standard_normal(shape)
        mult *= hw.prog_sigma
        np.exp(mult, out=mult)          # in place: exp(sigma N(0, 1)), one (2,) + shape array
    if hw.stuck_on_fraction > 0 or hw.stuck_off_fraction > 0:
        u = _rng(hw, trial, layer, _STUCK).random(shape)
        on = u < hw.stuck_on_fraction
        off = (u < hw.stuck_on_fraction + hw.stuck_off_fraction) & ~on
    return mult, on, off


def apply_factors(g_nominal: np.ndarray, hw: HardwareConfig, mult, on, off) -> np.ndarray:
    """Programmed conductances from nominal ones and one cell array's `cell_factors` (or None)."""
    g = np.array(g_nominal, dtype=np.float64)
    if mult is not None:
        g = g * mult
    if on is not None:
        g = np.where(on, hw.g_max_s, g)
        g = np.where(off, hw.g_min_s, g)
    return g


@dataclass(frozen=True)
class Chip:
    """The physical values of one chip instance, per layer."""

    g_pos: list          # (n_in, n_out) siemens
    g_neg: list
    offset_v: list       # (n_out,) comparator offset of each neuron (systematic + random), volts
    noise_seed: int      # keys the per-inference read-noise draws
    trial: int


def program(g_nominal: np.ndarray, hw: HardwareConfig, trial: Instance, layer: int, cell: int) -> np.ndarray:
    """Programmed conductances of one array of cells (cell: 0 for g_pos, 1 for g_neg)."""
    factors = cell_factors(np.shape(g_nominal), hw, trial, layer)
    return apply_factors(g_nominal, hw, *(f if f is None else f[cell] for f in factors))


def comparator_offsets(n_out: int, hw: HardwareConfig, trial: Instance, layer: int) -> np.ndarray:
    off = np.full(n_out, hw.comparator_offset_v)
    if hw.comparator_offset_sigma_v > 0:
        off = off + hw.comparator_offset_sigma_v * _rng(hw, trial, layer, _OFFSET).standard_normal(n_out)
    return off


def read_noise_draws(shape, hw: HardwareConfig, trial: Instance, layer: int) -> np.ndarray:
    """Standard normals, one per cell pair (the drive of input j into neuron i), for read noise held
    over a whole batch (training for the chip); evaluation draws per inference in the kernels."""
    return _rng(hw, trial, layer, _NOISE).standard_normal(tuple(shape))


def noise_seed(hw: HardwareConfig, trial: int) -> int:
    return int(np.random.SeedSequence(hw.seed, spawn_key=(trial, 0, _NOISE)).generate_state(1, np.uint64)[0])


def ktc_seed(hw: HardwareConfig, trial: int) -> int:
    """Keys chip `trial`'s per-inference kT/C reset-noise draws (`hwmodel.kernels.reset_normals`)."""
    return int(np.random.SeedSequence(hw.seed, spawn_key=(trial, 0, _KTC)).generate_state(1, np.uint64)[0])


def draw_chip(g_pos_nominal, g_neg_nominal, hw: HardwareConfig, trial: int) -> Chip:
    """Chip instance `trial` of a design with these nominal conductances."""
    return Chip(
        g_pos=[program(g, hw, trial, l, 0) for l, g in enumerate(g_pos_nominal)],
        g_neg=[program(g, hw, trial, l, 1) for l, g in enumerate(g_neg_nominal)],
        offset_v=[comparator_offsets(g.shape[1], hw, trial, l) for l, g in enumerate(g_pos_nominal)],
        noise_seed=noise_seed(hw, trial),
        trial=trial,
    )
