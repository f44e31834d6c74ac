"""Reviewer findings on the hardening of issue 15: where a bad value is blamed, flags bounded by
the design's window, help that states each default once, one check of a file --out, and a lock
that removes only the toolkit's own temporary files."""
import subprocess
import sys

import pytest

from infra.config import load_config
from infra.errors import ConfigError
from infra.folder_lock import folder_lock
from hwmodel.config import HardwareConfig
from test_cli_boundary import REPO, design_dir, one_line  # noqa: F401  (design_dir: a module fixture)
from ttfs.cli import main


def test_stuck_fractions_summing_past_one_are_refused_by_map(run_dir, tmp_path, capsys):
    out = tmp_path / "design"
    argv = ["map", str(run_dir), "--hw", "default", "--out", str(out),
            "--set", "hw.stuck_on_fraction=0.7", "--set", "hw.stuck_off_fraction=0.7"]
    assert main(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("ttfs map: error: --set hw.stuck_off_fraction:") and "must be <= 1 (got 1.4)" in line
    assert not out.exists()


def test_a_bad_set_value_is_blamed_on_the_flag_a_bad_file_value_on_the_file(run_dir, tmp_path, capsys):
    assert main(["map", str(run_dir), "--hw", "default", "--set", "hw.bits=-1", "--out", str(tmp_path / "d")]) == 2
    assert one_line(capsys.readouterr().err) == \
        "ttfs map: error: --set hw.bits: must be in 1..24 or null for analog (got -1)"
    bad = tmp_path / "bad.yaml"
    bad.write_text("bits: -1\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: hw.bits: must be in 1..24"):
        load_config(bad, HardwareConfig, ["prog_sigma=0.1"], section="hw")   # the file's key, not the override's
    with pytest.raises(ConfigError, match=r"^--set model.layers\[1\]: "):
        from training.config import RunConfig
        load_config("mnist-784-400-10", RunConfig, ["model.layers=[784, 'x', 10]"])


@pytest.mark.parametrize("flag", ["--max-step-s", "--t-rise-s"])
def test_export_netlist_time_flags_are_bounded_by_the_design_window(design_dir, tmp_path, capsys, flag):
    out = tmp_path / "x.cir"
    assert main(["export-netlist", str(design_dir), flag, "1e300", "--out", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"ttfs export-netlist: error: {flag}: must be < the design's window t_end_s = ")
    assert "(got 1e+300)" in line
    assert not out.exists()


def test_simulate_t_rise_is_bounded_by_the_design_window(design_dir, tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", str(design_dir), "--limit", "1", "--t-rise-s", "1", "--out", str(out)]) == 2
    assert "error: --t-rise-s: must be < the design's window t_end_s" in one_line(capsys.readouterr().err)
    assert not out.exists()


def test_help_states_each_default_once():
    for command in ("simulate", "export-netlist", "hw-eval", "energy-report"):
        text = subprocess.run([sys.executable, "-m", "ttfs.cli", command, "--help"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout
        flat = " ".join(text.split())
        assert "(default: None)" not in flat, command
        assert "(default: installed location)" in flat or command != "simulate"
        for line in flat.split(" --")[1:]:          # one option's help each
            assert line.count("(default") <= 1, (command, line)


@pytest.mark.parametrize("argv", [["spikes", "RUN", "--limit", "2"], ["export-netlist", "DESIGN"],
                                  ["export-nir", "RUN"]])
def test_file_out_is_checked_alike_by_every_file_writer(run_dir, design_dir, tmp_path, capsys, argv):
    argv = [str({"RUN": run_dir, "DESIGN": design_dir}.get(a, a)) for a in argv]
    folder = tmp_path / "folder"
    folder.mkdir()
    assert main([*argv, "--out", str(folder)]) == 2
    assert one_line(capsys.readouterr().err) == \
        f"ttfs {argv[0]}: error: {folder}: Is a directory; name a file, not a folder"
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    assert main([*argv, "--out", str(blocker / "sub" / "x.out")]) == 2
    assert "part of the path is a file, not a folder" in one_line(capsys.readouterr().err)
    deep = tmp_path / "new" / "deep" / "x.out"         # missing folders: made, as by every writer
    assert main([*argv, "--out", str(deep)]) == 0
    assert deep.is_file()
    capsys.readouterr()
    assert sorted(p.name for p in folder.iterdir()) == [] and blocker.read_text() == "keep"


def test_lock_keeps_other_programs_part_files_in_a_shared_folder(tmp_path):
    home = tmp_path / "home"
    theirs = [home / ".bashrc.abcdefgh.part", home / "docs" / ".thesis.tex.k2j3ab_9.part"]
    ours = home / "docs" / ".design.npz.ttfs-k2j3ab_9.part"
    for p in [*theirs, ours]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half")
    with folder_lock(home, "ttfs test"):
        pass
    assert all(p.read_bytes() == b"half" for p in theirs) and not ours.exists()
