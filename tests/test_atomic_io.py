"""Atomic writes: content lands whole, the mode follows the umask like open(), no temp files left."""
import math
import os

import pytest

from infra import atomic_io


def test_write_text_replaces_whole_file_with_umask_mode(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    atomic_io.write_text(path, "old")
    atomic_io.write_text(path, "new")
    assert path.read_text() == "new"
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]


def test_failed_write_keeps_old_file_and_leaves_no_part(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    atomic_io.write_text(path, "old")

    def boom(*a):
        raise OSError("disk full")
    monkeypatch.setattr(atomic_io.os, "replace", boom)
    with pytest.raises(OSError):
        atomic_io.write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_csv_number_reads_a_cell_and_gives_nan_where_there_is_no_number():
    assert atomic_io.csv_number("0.25") == 0.25 and atomic_io.csv_number(3) == 3.0
    assert atomic_io.csv_number("-1e-3") == -1e-3
    for cell in ("", None, "n/a", "   "):
        assert math.isnan(atomic_io.csv_number(cell)), cell
