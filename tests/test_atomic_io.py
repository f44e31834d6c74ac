"""Atomic writes: content lands whole, the mode follows the umask like open(), no temp files left."""
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
