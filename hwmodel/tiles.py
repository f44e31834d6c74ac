"""How a layer's physical array is cut into tiles (sub-arrays with their own wires).

A tile is `tile_rows` x `tile_cols` physical cells (rows and columns as in
`hwmodel.wire_network.physical_cells`; the last tile of a row or column of tiles may be smaller).
Each tile has its own row drivers at its left edge and its own column wires; a tile column's bottom
end joins the neuron's summing node directly, so a neuron's current is the sum of its tiles' column
currents and the wires of one tile carry no other tile's current (docs/hwmodel.md, "Tiles").
"""
from __future__ import annotations


def tile_bounds(n: int, size: int | None) -> list[tuple[int, int]]:
    """[(start, stop), ...] covering range(n) in pieces of `size` (the last may be shorter); one
    piece if size is None."""
    if n < 1:
        raise ValueError(f"tile_bounds: n must be >= 1 (got {n})")
    if size is None or size >= n:
        return [(0, n)]
    if size < 1:
        raise ValueError(f"tile_bounds: size must be >= 1 or None (got {size})")
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def layer_tiles(n_rows: int, n_cols: int, tile_rows: int | None, tile_cols: int | None):
    """The tiles of an n_rows x n_cols physical array: [(row slice, column slice), ...], row-major."""
    return [(slice(r0, r1), slice(c0, c1))
            for r0, r1 in tile_bounds(n_rows, tile_rows) for c0, c1 in tile_bounds(n_cols, tile_cols)]
