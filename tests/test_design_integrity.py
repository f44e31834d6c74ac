"""A design folder is one mapping: its two files are paired, its arrays lie in the range the hardware
can produce, and simulate reuses results across --start ranges by image index."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import netlists.runner as runner
from hwmodel.design import load_design
from infra.errors import CheckpointError
from ttfs.cli import main

from test_netlist_runner import design_path, records  # noqa: F401  (module fixture: a 784-5-3 design)

ROOT = Path(__file__).resolve().parents[1]


def _edit_npz(path, change):
    with np.load(path / "design.npz") as z:
        arrays = {k: np.array(z[k]) for k in z.files}
    change(arrays)
    np.savez(path / "design.npz", **arrays)


def test_a_map_killed_between_its_two_files_leaves_a_folder_no_command_uses(run_dir, tmp_path, capsys):
    design = tmp_path / "d"
    assert main(["map", str(run_dir), "--hw", "default", "--out", str(design)]) == 0
    before = (design / "design.yaml").read_bytes()
    env = {**os.environ, "TTFS_TEST_EXIT_AT": "before_replace.design.yaml"}
    remap = subprocess.run([sys.executable, "-m", "ttfs.cli", "map", str(run_dir), "--hw", "default", "--out",
                            str(design), "--set", "hw.bits=2", "--set", "hw.g_max_s=5e-5"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert remap.returncode == 137
    assert (design / "design.yaml").read_bytes() == before        # new npz, old yaml
    with pytest.raises(CheckpointError, match="design.npz is not the one design.yaml was written with"):
        load_design(design)
    capsys.readouterr()
    assert main(["hw-eval", str(design), "--limit", "5"]) == 2
    assert "map it again" in capsys.readouterr().err
    assert main(["map", str(run_dir), "--hw", "default", "--out", str(design)]) == 0
    load_design(design)


@pytest.mark.parametrize("array, value, text", [
    ("g_pos0", 1e308, "g_pos0 holds conductances from"),
    ("g_neg_nominal1", 2e-4, "g_neg_nominal1 holds conductances from"),     # above g_max_s = 1e-4
    ("offset_v1", 1e308, "offset_v1 holds comparator offsets"),
])
def test_arrays_outside_what_the_hardware_can_produce_are_errors(design_path, tmp_path, array, value, text):
    path = tmp_path / "design"
    shutil.copytree(design_path, path)
    _edit_npz(path, lambda a: a[array].flat.__setitem__(0, value))
    with pytest.raises(CheckpointError, match=text):
        load_design(path)


def test_a_hand_edit_of_design_npz_alone_is_refused(design_path, tmp_path):
    path = tmp_path / "design"
    shutil.copytree(design_path, path)
    _edit_npz(path, lambda a: a["g_pos0"].flat.__setitem__(0, a["g_pos0"].flat[0] * 0.5))   # in range
    with pytest.raises(CheckpointError, match="design.npz is not the one design.yaml was written with"):
        load_design(path)


def test_simulate_reuses_results_across_start_ranges(design_path, tmp_path, monkeypatch):
    out = tmp_path / "sim"
    assert main(["simulate", str(design_path), "--limit", "2", "--out", str(out), "--quiet"]) == 0
    first = {r["index"]: r for r in records(out)}
    calls, real = [], runner.simulate_image

    def counted(circuit, t_input, timeout_s=None):
        calls.append(1)
        return real(circuit, t_input, timeout_s)
    monkeypatch.setattr(runner, "simulate_image", counted)
    assert main(["simulate", str(design_path), "--start", "1", "--limit", "2", "--out", str(out), "--quiet"]) == 0
    assert len(calls) == 1                                        # only image 2 is new
    now = {r["index"]: r for r in records(out)}
    assert sorted(now) == [0, 1, 2] and now[1] == first[1] and now[0] == first[0]
