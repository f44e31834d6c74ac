"""Nothing a design folder says is executed: every string that reaches a netlist is inert.

A hostile text (newline, CR, `.control` / `shell` / `.endc`, `.include /etc/passwd`, the `*#`
comment ngspice runs as a command, U+2028 and U+0085 that `splitlines` breaks on, NUL, non-ASCII)
is put in every text field: design.yaml's source_run, the data set name, the design folder's name,
the export's --out name, the title and notes. The netlists must hold only lines the writer writes
(its DEVICE_LETTERS and DOT_COMMANDS), and running them (`ttfs simulate`, `ttfs energy-validate`,
`ngspice -b` on an exported file) must not run the shell command. The data set name of a design
that is simulated stays `mnist` (load_split accepts only known data sets); the writer test
gives the hostile data set name directly.
"""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from infra.errors import SimulationError
from infra.inert_text import comment_line, comment_text, number_text, safe_name
from netlists import writer
from netlists.circuit import circuit_from_design, make_circuit
from netlists.ngspice import find_executable, parse_measurements, session
from training.config import ModelConfig
from ttfs.cli import main

ROOT = Path(__file__).resolve().parents[1]
TOKENS = (".control", ".endc", ".include", "shell", "passwd", "PWNED")


def hostile(pwned) -> str:
    """Three ways to run `touch PWNED...` from a netlist line (each does, written verbatim by the
    writer before this fix: a `.control` block after a newline, the `*#` comment, a `.control` block
    split by U+2028 / U+0085), then NUL, non-ASCII and a trailing backslash."""
    return (f"run\n.control\nshell touch {pwned}-a\n.endc\r\n*#shell touch {pwned}-b\r"
            f".control\u2028shell touch {pwned}-c\x85.endc\x00 \u00e9\\")


def hostile_include(pwned) -> str:
    """hostile() and a file included, a `.end` (ngspice stops loading at the include of a
    non-netlist file, so this one is not used for the designs that are run)."""
    return hostile(pwned) + "\n.include /etc/passwd\n.end\n"


def pwned_files(*folders) -> list:
    return [p for d in folders for p in Path(d).iterdir() if p.name.lower().startswith("pwned")]


# A folder name cannot hold '/' or NUL: the shell command in it is relative (to the cwd).
HOSTILE_FOLDER = "d\n.control\nshell touch PWNED\n.endc\n.include x\u2028*#shell touch PWNED\x85\u00e9"


@pytest.fixture(scope="module")
def hostile_design(tmp_path_factory):
    base = tmp_path_factory.mktemp("inert")
    pwned = base / "PWNED"
    rng = np.random.default_rng(0)
    w = [rng.normal(2.0 / 784, 1.0 / np.sqrt(784), (784, 4)), rng.normal(2.5 / 4, 0.8 / np.sqrt(4), (4, 2))]
    design = map_model(w, ModelConfig(layers=(784, 4, 2)), HardwareConfig(comparator_delay_s=1e-9),
                       source_run=hostile(pwned), dataset="mnist")
    path = base / HOSTILE_FOLDER
    save_design(design, path)
    return design, path, pwned


def _kind(line: str) -> str:
    """What a netlist line is, by the writer's own vocabulary; 'other' is a line it never writes."""
    if line == "*" or line.startswith("* "):
        return "comment"
    if line[:1].upper() in writer.DEVICE_LETTERS:
        return "element"
    if line.split(" ", 1)[0] in writer.DOT_COMMANDS:
        return "dot"
    return "other"


def assert_inert(text: str, benign: str, pwned: str = "PWNED"):
    """Every line is printable ASCII and of a kind the writer writes; no hostile token outside a
    comment; and the hostile netlist has exactly the benign one's lines except for comment text."""
    lines = text.split("\n")
    assert lines[-1] == "" and lines[-2] == ".end"
    for line in lines[:-1]:
        assert line.isascii() and line.isprintable(), repr(line)
        assert _kind(line) != "other", repr(line)
        assert not line.startswith(("*#", "*@")), repr(line)
        if _kind(line) != "comment":
            assert not any(t.lower() in line.lower() for t in TOKENS + (pwned,)), repr(line)
    good = benign.split("\n")
    assert len(lines) == len(good)
    assert [l for l in lines if _kind(l) != "comment"] == [l for l in good if _kind(l) != "comment"]
    writer.check_inert(text)


def test_comment_text_and_safe_name_are_one_inert_line():
    s = hostile_include("/tmp/PWNED")
    t = comment_text(s)
    assert t.isascii() and t.isprintable() and "\\" in t and "\n" not in t and not t.endswith("\\\\")
    assert "\\x0a" in t and "\\x0d" in t and "\\x00" in t and "\\u2028" in t and "\\x85" in t and "\\xe9" in t
    assert comment_line("#shell ls") == "* #shell ls\n"          # never `*#`, which ngspice runs
    assert comment_text("plain text 1.5e-9") == "plain text 1.5e-9"
    for bad in ("../../escape", "..", ".", "", "a/b", "/etc/passwd", s, "x" * 300):
        n = safe_name(bad)
        assert n and n not in (".", "..") and not n.startswith(".") and "/" not in n and len(n) <= 100
        assert all(c.isalnum() and c.isascii() or c in "_.-" for c in n), n
    assert safe_name("mnist-784-20-10") == "mnist-784-20-10"


def test_writer_netlists_hold_only_lines_the_writer_writes(hostile_design):
    design, _, pwned = hostile_design
    evil = dataclasses.replace(design, source_run=hostile_include(pwned), dataset=hostile_include(pwned))
    nice = dataclasses.replace(design, source_run="runs/a", dataset="mnist")
    c_evil, c_nice = circuit_from_design(evil), circuit_from_design(nice)
    t_in = np.random.default_rng(1).uniform(0, design.t_in_s, 784)
    t_in[:5] = np.inf
    for kw in ({}, {"options": "method=gear reltol=1e-4"}, {"save_all": True}, {"cols": range(1, 3)}):
        assert_inert(writer.layer_netlist(c_evil, 0, t_in, **kw), writer.layer_netlist(c_nice, 0, t_in, **kw),
                     str(pwned))
    notes = [hostile_include(pwned), HOSTILE_FOLDER]
    assert_inert(writer.network_netlist(c_evil, t_in, title=hostile_include(pwned), notes=notes),
                 writer.network_netlist(c_nice, t_in, title="t", notes=["a", "b"]), str(pwned))
    with pytest.raises(ValueError, match="solver options"):
        writer.layer_netlist(c_nice, 0, t_in, options="reltol=1e-4\n.control")


def test_numbers_are_finite_or_the_writer_refuses_naming_them():
    g = [np.full((3, 2), 1e-6), np.full((2, 2), 1e-6)]
    z = [np.zeros((3, 2)), np.zeros((2, 2))]
    t = np.array([0.0, 1e-6, 2e-6])
    assert "nan" not in writer.layer_netlist(make_circuit(g, z, 1e-12, 0.5), 0, t).lower()
    for circuit, what in ((make_circuit(g, z, [1e-12, np.inf], 0.5), "c_mem_f"),
                          (make_circuit(g, z, 1e-12, [0.5, np.nan]), "threshold"),
                          (make_circuit([np.full((3, 2), 1e-320), g[1]], z, 1e-12, 0.5), "resistance"),
                          (make_circuit(g, z, 1e-12, 0.5, opamp_gain=np.inf), "opamp_gain")):
        with pytest.raises(SimulationError, match=what), np.errstate(over="ignore"):
            writer.network_netlist(circuit, t)
    with pytest.raises(SimulationError, match="max_step_s"):
        writer.layer_netlist(make_circuit(g, z, 1e-12, 0.5), 0, t, max_step_s=np.nan)
    with pytest.raises(SimulationError, match="finite"):
        number_text(float("inf"), "x")


def test_ngspice_refuses_a_netlist_line_the_writer_does_not_write(tmp_path):
    pwned = tmp_path / "PWNED"
    good = writer.layer_netlist(make_circuit([np.full((3, 2), 1e-6)], [np.zeros((3, 2))], 1e-12, 0.5),
                                0, np.array([0.0, 1e-6, 2e-6]))
    ses = session()
    assert "time" in ses.run(good).vectors
    for line in (".control", f"shell touch {pwned}", f"*#shell touch {pwned}", ".include /etc/passwd",
                 "* caf\u00e9", "Rx a b 1\rshell ls"):
        evil = good.replace("\n.end\n", f"\n{line}\n.endc\n.end\n")
        with pytest.raises(SimulationError, match="not one the netlist writer writes"):
            ses.run(evil)
    assert pwned_files(tmp_path) == []


def test_exported_netlist_of_a_hostile_design_runs_nothing(hostile_design, tmp_path):
    _, path, pwned = hostile_design
    cir = tmp_path / (HOSTILE_FOLDER.replace("\x00", "") + ".cir")
    assert main(["export-netlist", str(path), "--sample", "0", "--out", str(cir)]) == 0
    text = cir.read_text()
    for line in text.splitlines():
        assert not line.lower().lstrip().startswith((".control", ".endc", ".include", "shell", "*#")), line
    assert "source_run" in text and "\\x0a.control" in text        # there, escaped, in a comment
    out = subprocess.run([find_executable(), "-b", str(cir)], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "t_l1_n0" in parse_measurements(out.stdout + "\n" + out.stderr)
    assert pwned_files(pwned.parent, tmp_path) == []


def test_simulate_and_energy_validate_of_a_hostile_design_run_nothing(hostile_design, tmp_path):
    """Through the command line in a fresh process whose cwd is tmp_path (the ngspice server inherits
    it, so a relative `touch PWNED` would land there)."""
    _, path, pwned = hostile_design
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def ttfs(*args):
        out = subprocess.run([sys.executable, "-m", "ttfs.cli", *args], capture_output=True, text=True,
                             timeout=300, cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    sim = tmp_path / HOSTILE_FOLDER
    ttfs("simulate", str(path), "--limit", "1", "--out", str(sim), "--quiet")
    assert '"status": "ok"' in (sim / "results.jsonl").read_text()
    assert json.loads(ttfs("energy-validate", str(path), "--limit", "1", "--json", "--quiet"))["n_images"] == 1
    assert pwned_files(pwned.parent, tmp_path, ROOT) == []
