"""Tile geometry (hwmodel/tiles.py) and its config keys."""
import pytest

from hwmodel.config import HardwareConfig
from hwmodel.tiles import layer_tiles, tile_bounds
from infra.errors import ConfigError


def test_tile_bounds_cover_the_range_once_in_order():
    for n in (1, 7, 64, 65):
        for size in (None, 1, 3, 64, 100):
            bounds = tile_bounds(n, size)
            covered = [i for a, b in bounds for i in range(a, b)]
            assert covered == list(range(n))
            assert all(b - a <= (size or n) for a, b in bounds)


def test_layer_tiles_are_row_major_and_partition_the_cells():
    tiles = layer_tiles(5, 4, 2, 3)
    assert len(tiles) == 3 * 2
    cells = sorted((r, c) for rs, cs in tiles for r in range(rs.start, rs.stop) for c in range(cs.start, cs.stop))
    assert cells == [(r, c) for r in range(5) for c in range(4)]
    assert tiles[1] == (slice(0, 2), slice(3, 4))


@pytest.mark.parametrize("changes, key", [({"tile_rows": 0}, "hw.tile_rows"), ({"tile_rows": 5}, "hw.tile_rows"),
                                          ({"scheme": "differential", "tile_cols": 3}, "hw.tile_cols"),
                                          ({"wire_model": "second-order"}, "hw.wire_model")])
def test_bad_tile_and_wire_model_keys_name_the_key(changes, key):
    with pytest.raises(ConfigError, match=key):
        HardwareConfig().with_(**changes)
