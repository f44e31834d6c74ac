"""The wires of one layer as its neurons see them, per tile: exact (the default) or first order.

A layer's physical array (`hwmodel.wire_network.physical_cells`) is cut into tiles
(`hwmodel.tiles.layer_tiles`, hw.tile_rows x hw.tile_cols). Each tile has its own row drivers at its
left edge and its own column wires; a tile column's bottom end joins its neuron's summing node
(the op-amp's virtual ground, or the passive node) directly, so a neuron's current is the sum of
its tiles' column currents. The summing wire from the tile edges to the neuron is not modelled
(it carries the whole column current; docs/hwmodel.md, "Tiles").

What the neuron circuits need from the wires (`LayerWires`):
- g_pos_s, g_neg_s (n_in, n_out): the effective conductance from input j's + (and -) row driver to
  neuron i's summing node at 0 V, every other driver at 0 V (dual-rail: + row at +V, - row at -V;
  differential: the + and - columns' currents from input j's row). Exact: the entries of the
  tile's column transfer T = -Y_cr (wire_network), so I_i = V_read sum_j (g_pos - g_neg)_ji over
  the driven inputs holds exactly for virtual-ground columns. First order: g / (1 + g R_path),
  R_path the wire from the tile's driver to the cell and from the cell to the tile's column end.
- g_self_s (n_out,): the conductance the summing node sees to the (driven or grounded) rows, the
  sum over the neuron's tile columns of the exact column self-admittance diag(Y_cc); first order
  and wire-free, the sum of the (effective) cell conductances (G_tot).
- y_cols_s (physical columns, physical columns), exact only: the column ports' admittance Y_cc
  summed over the row tiles, block-diagonal by tile column range (columns of different tiles share
  no wire). Passive columns are coupled through it (hwmodel.coupled); off its diagonal it is
  what a virtual ground ignores.

Exact models are cached per chip in the design folder (`chip_wires`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwmodel.config import HardwareConfig
from hwmodel.tiles import layer_tiles
from hwmodel.wire_network import physical_cells, port_admittance
from infra import atomic_io
from infra.errors import CheckpointError
from infra.fingerprint import arrays_digest, digest

CACHE_DIR = "wires-cache"       # DESIGN/wires-cache/{chip,energy-chip}{trial}.npz, ports.npz (`design_cached`)
_CACHE_VERSION = 2              # bump when the exact model changes: older caches are recomputed


@dataclass(frozen=True)
class LayerWires:
    """Effective conductances (S) of one layer with its wires (module docstring)."""

    g_pos_s: np.ndarray      # (n_in, n_out)
    g_neg_s: np.ndarray      # (n_in, n_out)
    g_self_s: np.ndarray     # (n_out,)
    y_cols_s: np.ndarray | None = None     # (physical columns,) * 2, exact wires only


def has_wires(hw: HardwareConfig) -> bool:
    return hw.r_wire_row_ohm > 0 or hw.r_wire_col_ohm > 0


def _tiles(n_r: int, n_c: int, hw: HardwareConfig):
    return layer_tiles(n_r, n_c, hw.tile_rows, hw.tile_cols)


def _neuron_cells(phys: np.ndarray, scheme: str):
    """(per-input + and - arrays (n_in, n_out)) from a (physical rows, physical columns) array."""
    if scheme == "dual-rail":
        return phys[0::2, :], phys[1::2, :]
    return phys[:, 0::2], phys[:, 1::2]


def _neuron_sum(per_column: np.ndarray, scheme: str) -> np.ndarray:
    return per_column if scheme == "dual-rail" else per_column[0::2] + per_column[1::2]


def physical_wire_paths(n_r: int, n_c: int, hw: HardwareConfig) -> np.ndarray:
    """Series wire resistance (ohm) of every physical cell, (n_r, n_c), first order and per tile:
    r_row per pitch from the tile's driver (one segment before its first column) to the cell, and
    r_col per pitch from the cell to the tile's column end (one segment after its last row)."""
    r = np.empty((n_r, n_c))
    for rows, cols in _tiles(n_r, n_c, hw):
        local_c = np.arange(cols.stop - cols.start)[None, :]
        local_r = np.arange(rows.stop - rows.start)[:, None]
        r[rows, cols] = hw.r_wire_row_ohm * (local_c + 1) + hw.r_wire_col_ohm * ((rows.stop - rows.start) - local_r)
    return r


def wire_paths(n_in: int, n_out: int, hw: HardwareConfig):
    """Series wire resistance (ohm) of every + cell and - cell, each (n_in, n_out), first order
    (`physical_wire_paths` in the writer's order: dual-rail rows 2j (+), 2j+1 (-); differential
    columns 2i (+), 2i+1 (-))."""
    shape = (2 * n_in, n_out) if hw.scheme == "dual-rail" else (n_in, 2 * n_out)
    r_pos, r_neg = _neuron_cells(physical_wire_paths(*shape, hw), hw.scheme)
    return np.ascontiguousarray(r_pos), np.ascontiguousarray(r_neg)


def effective_conductances(g_pos, g_neg, hw: HardwareConfig):
    """First-order effective cell conductances g / (1 + g R_path) (unchanged without wires)."""
    if not has_wires(hw):
        return g_pos, g_neg
    r_pos, r_neg = wire_paths(*np.shape(g_pos), hw)
    return g_pos / (1.0 + g_pos * r_pos), g_neg / (1.0 + g_neg * r_neg)


def tile_admittances(g_pos, g_neg, scheme: str, r_row_ohm: float, r_col_ohm: float,
                     tile_rows: int | None, tile_cols: int | None, columns_only: bool = False):
    """[(rows, cols, Y), ...] per tile of the layer's physical array, row-major: Y is the tile's
    exact port admittance (wire_network.port_admittance, S; rows first), all its ports or, with
    columns_only, its column ports' columns ((R + C) x C). The one loop over a layer's tiles with
    wires: the behavioural model, the reduced netlists and the wire energy all start here."""
    phys = physical_cells(g_pos, g_neg, scheme)
    out = []
    for rows, cols in layer_tiles(*phys.shape, tile_rows, tile_cols):
        tile = phys[rows, cols]
        ports = tile.shape[0] + np.arange(tile.shape[1]) if columns_only else None
        out.append((rows, cols, port_admittance(tile, r_row_ohm, r_col_ohm, ports=ports)))
    return out


def exact_layer(g_pos, g_neg, hw: HardwareConfig) -> LayerWires:
    """The exact tiled model: every tile's column ports (`tile_admittances`) give its column
    transfer and its columns' self-admittance."""
    n_r, n_c = physical_cells(g_pos, g_neg, hw.scheme).shape
    transfer = np.empty((n_r, n_c))     # transfer[r, c]: current into column c's end per volt on row r
    y_cols = np.zeros((n_c, n_c))
    for rows, cols, y in tile_admittances(g_pos, g_neg, hw.scheme, hw.r_wire_row_ohm, hw.r_wire_col_ohm,
                                          hw.tile_rows, hw.tile_cols, columns_only=True):
        t_r = rows.stop - rows.start
        transfer[rows, cols] = -y[:t_r]
        y_cols[cols, cols] += y[t_r:]
    gp, gn = _neuron_cells(transfer, hw.scheme)
    return LayerWires(np.ascontiguousarray(gp), np.ascontiguousarray(gn),
                      _neuron_sum(np.diag(y_cols).copy(), hw.scheme), y_cols)


def layer_wires(g_pos, g_neg, hw: HardwareConfig) -> LayerWires:
    """The layer's wires as hw.wire_model says (no wires: the cells themselves, tiles change nothing)."""
    g_pos, g_neg = np.asarray(g_pos, dtype=np.float64), np.asarray(g_neg, dtype=np.float64)
    if has_wires(hw) and hw.wire_model == "exact":
        return exact_layer(g_pos, g_neg, hw)
    gp, gn = effective_conductances(g_pos, g_neg, hw)
    return LayerWires(gp, gn, (gp + gn).sum(axis=0))


def _cache_key(design, chip, name: str) -> str:
    """This design, this chip index, these conductances (a chip changed in memory is not served the
    stored chip's arrays) and what is cached (`name`)."""
    return cache_key(design, name, int(chip.trial), *chip.g_pos, *chip.g_neg)


def cache_key(design, name: str, *parts) -> str:
    """The key of a `design_cached` entry: the exact model's version, `name`, the design's content
    and `parts` (whatever else the arrays depend on: numbers, strings, arrays)."""
    return digest("wires-cache", _CACHE_VERSION, name, design.content_sha256, *parts)


def _key_array(key: str) -> np.ndarray:
    return np.frombuffer(key.encode(), dtype=np.uint8)


def _read_cache(path: Path, key: str, shapes: dict) -> dict | None:
    """The arrays `shapes` names if `path` holds them for `key` with those shapes and finite values."""
    try:
        arrays = atomic_io.read_npz(path, CheckpointError)
    except (OSError, CheckpointError):
        return None
    stored = arrays.pop("key", None)
    want = _key_array(digest(key, arrays_digest(arrays)))     # this design and chip, and these values
    if stored is None or not np.array_equal(stored, want.astype(np.float64)):
        return None
    if set(arrays) != set(shapes):
        return None
    if not all(arrays[k].shape == tuple(shape) and np.all(np.isfinite(arrays[k])) for k, shape in shapes.items()):
        return None
    return arrays


def chip_cached(design, chip, name: str, compute, shapes: dict) -> dict:
    """Named arrays of one chip of a design, {name: array} with the given `shapes`, cached in
    DESIGN/wires-cache/{name}{trial}.npz for this design's content (Design.content_sha256), this chip
    and `name` (`design_cached`). The behavioural model's `chip_wires`, energy.model's row-power forms."""
    return design_cached(design, f"{name}{int(chip.trial)}", _cache_key(design, chip, name), compute, shapes)


def design_cached(design, stem: str, key: str, compute, shapes: dict) -> dict:
    """Named arrays {name: array} with the given `shapes`, derived from a design read from a folder:
    read from DESIGN/wires-cache/{stem}.npz when that file was written for `key` (a digest of
    everything the arrays depend on, the design's content_sha256 among it) and its arrays match the
    digest stored with them; else compute() and written there atomically (a corrupt, stale or
    unwritable cache is recomputed, never trusted). Designs not read from a folder: compute(). The
    one cache of solved wire networks (`chip_cached`; the reduced netlists' tile ports,
    netlists.ports.design_ports)."""
    if not (design.folder and design.content_sha256):
        return compute()
    path = Path(design.folder) / CACHE_DIR / f"{stem}.npz"
    cached = _read_cache(path, key, shapes)
    if cached is not None:
        return cached
    arrays = compute()
    try:
        path.parent.mkdir(exist_ok=True)
        atomic_io.write_npz(path, key=_key_array(digest(key, arrays_digest(arrays))), **arrays)
    except OSError:
        pass                        # a read-only design folder: the model is recomputed next time
    return arrays


def chip_wires(design, chip) -> list[LayerWires]:
    """Every layer's wires for one chip of the design; the exact model with wires is cached in
    DESIGN/wires-cache/chip{trial}.npz (`chip_cached`)."""
    hw = design.hw
    if not (has_wires(hw) and hw.wire_model == "exact"):
        return [layer_wires(chip.g_pos[l], chip.g_neg[l], hw) for l in range(design.n_layers)]
    fields = ("g_pos", "g_neg", "g_self", "y_cols")
    shapes = {}
    for l, (n_in, n_out) in enumerate(np.shape(g) for g in chip.g_pos):
        n_c = n_out if hw.scheme == "dual-rail" else 2 * n_out
        shapes.update({f"g_pos{l}": (n_in, n_out), f"g_neg{l}": (n_in, n_out), f"g_self{l}": (n_out,),
                       f"y_cols{l}": (n_c, n_c)})

    def compute():
        arrays = {}
        for l in range(design.n_layers):
            w = layer_wires(chip.g_pos[l], chip.g_neg[l], hw)
            arrays.update({f"{f}{l}": getattr(w, f"{f}_s") for f in fields})
        return arrays

    arrays = chip_cached(design, chip, "chip", compute, shapes)
    return [LayerWires(*(arrays[f"{f}{l}"] for f in fields)) for l in range(design.n_layers)]
