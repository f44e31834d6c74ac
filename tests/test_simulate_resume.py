"""`ttfs simulate` resumes by image index, retries failures, recomputes results of a re-mapped design,
fails when ngspice cannot start, writes nothing for a bad call, and takes its workers down when killed."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import netlists.ngspice as ngspice_mod
import netlists.runner as runner
from hwmodel.behavioural import input_times_s
from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from infra.errors import SimulationError
from training.config import ModelConfig
from training.data import load_split
from ttfs.cli import main

from test_netlist_runner import design_path, records  # noqa: F401  (module fixture: a 784-5-3 design)

ROOT = Path(__file__).resolve().parents[1]


def _simulate(design, out, limit, *extra):
    return main(["simulate", str(design), "--limit", str(limit), "--out", str(out), "--quiet", *extra])


def _count_calls(monkeypatch):
    calls, real = [], runner.simulate_image

    def counted(circuit, t_input, timeout_s=None):
        calls.append(1)
        return real(circuit, t_input, timeout_s)
    monkeypatch.setattr(runner, "simulate_image", counted)
    return calls


def test_a_duplicated_record_loses_no_later_image(design_path, tmp_path, monkeypatch):
    out = tmp_path / "sim"
    assert _simulate(design_path, out, 3) == 0
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join([lines[0], lines[1], lines[1], "garbage", lines[2]]) + "\n")
    calls = _count_calls(monkeypatch)
    assert _simulate(design_path, out, 3) == 0
    assert calls == []
    assert [r["index"] for r in records(out)] == [0, 1, 2]
    assert len((out / "results.jsonl").read_text().splitlines()) == 3
    assert _simulate(design_path, out, 3) == 0 and calls == []


def test_failed_images_are_simulated_again_on_rerun(design_path, tmp_path, monkeypatch):
    real = runner.simulate_network

    def image_1_fails(circuit, t_input, settings, timeout_s=None):
        if float(np.sum(t_input)) == second:
            raise SimulationError("timestep too small (simulated)")
        return real(circuit, t_input, settings, timeout_s)

    design = runner.load(str(design_path))[0]
    second = float(np.sum(input_times_s(design, load_split("mnist", "test", limit=2).images)[1]))
    monkeypatch.setattr(runner, "simulate_network", image_1_fails)
    out = tmp_path / "sim"
    assert _simulate(design_path, out, 3) == 0
    assert [r["status"] for r in records(out)] == ["ok", "failed", "ok"]
    monkeypatch.setattr(runner, "simulate_network", real)       # the cause is fixed
    calls = _count_calls(monkeypatch)
    assert _simulate(design_path, out, 3) == 0
    assert len(calls) == 1
    assert [(r["index"], r["status"]) for r in records(out)] == [(0, "ok"), (1, "ok"), (2, "ok")]
    assert json.loads((out / "summary.json").read_text())["n_failed"] == 0


def test_a_kill_after_an_image_resumes_at_the_next_one(design_path, tmp_path, monkeypatch):
    out = tmp_path / "sim"
    env = dict(os.environ, TTFS_TEST_EXIT_AT="simulate.after_image:2")
    proc = subprocess.run([sys.executable, "-m", "ttfs.cli", "simulate", str(design_path), "--limit", "3",
                           "--out", str(out), "--quiet"], cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert proc.returncode == 137
    assert [r["index"] for r in records(out)] == [0, 1]
    calls = _count_calls(monkeypatch)
    assert _simulate(design_path, out, 3) == 0
    assert len(calls) == 1 and [r["index"] for r in records(out)] == [0, 1, 2]
    assert not [p for p in out.iterdir() if p.name.endswith(".part") or p.name == ".lock"]


def _other_design(seed):
    rng = np.random.default_rng(seed)
    w = [rng.normal(2.0 / 784, 1.0 / np.sqrt(784), (784, 5)), rng.normal(2.5 / 5, 0.8 / np.sqrt(5), (5, 3))]
    return map_model(w, ModelConfig(layers=(784, 5, 3)), HardwareConfig(comparator_delay_s=1e-9))


def test_results_of_a_design_remapped_in_place_are_recomputed(design_path, tmp_path, monkeypatch, capsys):
    design = tmp_path / "design"
    shutil.copytree(design_path, design)
    out = tmp_path / "sim"
    assert _simulate(design, out, 2) == 0
    old = {r["index"]: r["times_s"] for r in records(out)}
    save_design(_other_design(7), design)                   # re-mapped in place
    calls = _count_calls(monkeypatch)
    capsys.readouterr()
    assert _simulate(design, out, 2) == 0
    assert len(calls) == 2 and "re-mapped" in capsys.readouterr().out
    fresh = tmp_path / "fresh"
    assert _simulate(design, fresh, 2) == 0
    got = {r["index"]: r["times_s"] for r in records(out)}
    assert got == {r["index"]: r["times_s"] for r in records(fresh)} and got != old
    copy = tmp_path / "copy"                                # the same design elsewhere: its results still hold
    shutil.copytree(design, copy)
    calls.clear()
    assert _simulate(copy, out, 2) == 0 and calls == []
    other = tmp_path / "other"                              # another design's results are never overwritten
    save_design(_other_design(8), other)
    assert _simulate(other, out, 2) == 2
    assert "another --out" in capsys.readouterr().err


def test_an_engine_that_cannot_start_is_an_error_and_writes_nothing(design_path, tmp_path, monkeypatch, capsys):
    garbage = tmp_path / "libngspice.so.0"
    garbage.write_bytes(b"\x7fELF not really a library" * 50)
    monkeypatch.setattr(ngspice_mod, "_SESSION", None)
    monkeypatch.setenv("NGSPICE_LIBRARY_PATH", str(garbage))
    for workers in ("1", "2"):
        out = tmp_path / f"sim{workers}"
        assert _simulate(design_path, out, 2, "--workers", workers) == 2
        err = capsys.readouterr().err
        assert "ngspice cannot start" in err and str(garbage) in err and "unset NGSPICE_LIBRARY_PATH" in err
        assert not out.exists()
    # a bad call writes nothing that blocks the corrected one (simulate.json used to be written first)
    monkeypatch.delenv("NGSPICE_LIBRARY_PATH")
    monkeypatch.setattr(ngspice_mod, "_SESSION", None)
    out = tmp_path / "sim"
    assert _simulate(design_path, out, 1, "--start", "1", "--data-dir", str(tmp_path / "no-data")) == 2
    assert not out.exists()
    assert _simulate(design_path, out, 1) == 0
    assert json.loads((out / "simulate.json").read_text())["start"] == 0


def _children() -> dict:
    """pid -> (parent pid, command line) of every live (not zombie) process."""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            state, ppid = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[:2]
            cmd = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z":
            out[int(p)] = (int(ppid), cmd)
    return out


def _descendants(pid: int) -> dict:
    procs = _children()
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, cmd) in procs.items():
            if ppid == parent and child not in found:
                found[child] = cmd
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killing_simulate_kills_its_workers_and_their_ngspice_servers(design_path, tmp_path):
    out = tmp_path / "sim"
    proc = subprocess.Popen([sys.executable, "-m", "ttfs.cli", "simulate", str(design_path), "--limit", "500",
                             "--workers", "2", "--out", str(out), "--quiet"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            kids = _descendants(proc.pid)
            servers = [c for c in kids.values() if "netlists.ngspice" in c]
            workers = [c for c in kids.values() if "spawn_main" in c]
            if len(servers) == 2 and len(workers) == 2 and records(out):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the workers did not start: {kids}")
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in kids):
            time.sleep(0.05)
        assert [kids[p] for p in kids if _alive(p)] == []
    finally:
        for p in kids:
            if _alive(p):
                os.kill(p, 9)
        if proc.poll() is None:
            proc.kill()
