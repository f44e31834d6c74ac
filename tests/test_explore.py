"""`ttfs explore` (energy.explore): a 2x2 grid of designs times the two runs of a tiny sweep, against
the one-design commands (`ttfs map` + `ttfs hw-eval`, `ttfs eval`, `ttfs energy-report`), its Pareto
front against brute force, its cache, a kill and resume, --jobs 2 against --jobs 1, and bad --vary.

Tiny real-data runs: 784-16-10, 300 MNIST training images, one epoch; the passive preset without wires.
"""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from energy import explore as explore_mod
from energy.explore import grid, pareto_front
from hwmodel.config import HardwareConfig
from hwmodel.design import load_design
from infra.errors import ConfigError
from ttfs.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "model.layers=[784, 16, 10]", "--set", "data.train_limit=300", "--set", "data.test_limit=100",
        "--set", "train.batch_size=50", "--set", "train.epochs=1", "--quiet"]
CHIP = ["--hw", "passive", "--set", "hw.r_wire_row_ohm=0", "--set", "hw.r_wire_col_ohm=0"]
VARY = ["--vary", "v_read_v=0.1,0.2", "--vary", "hw.bits=null,3"]
EVAL = ["--trials", "2", "--limit", "40"]
OUTPUTS = ("points.csv", "pareto.csv", "pareto.png", "explore.json")
RUNS = ("none", "m-ssr_s0.001")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore") / "sweep"
    assert main(["sweep", "--config", "mnist-784-400-10", "--reg", "m-ssr", "--strengths", "0,1e-3",
                 "--out", str(out), "--no-plots", *TINY]) == 0
    return out


def _args(sweep, out, *more):
    return ["explore", str(sweep), *CHIP, *VARY, *EVAL, "--quiet", "--out", str(out), *more]


@pytest.fixture(scope="module")
def explored(sweep):
    out = sweep.parent / "explored"
    assert main(_args(sweep, out)) == 0
    return out


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _files(folder: Path) -> dict:
    return {name: (folder / name).read_bytes() for name in OUTPUTS}


def test_points_are_what_the_one_design_commands_give(sweep, explored, tmp_path, capsys):
    rows = _rows(explored / "points.csv")
    assert [(r["point"], r["hw.v_read_v"], r["hw.bits"], r["input"]) for r in rows] == [
        (str(p), v, b, f"sweep/{run}") for p, (v, b) in enumerate([("0.1", "null"), ("0.1", "3"), ("0.2", "null"),
                                                                  ("0.2", "3")])
        for run in ("none", "m-ssr_s0.001")]
    assert [(r["kind"], r["strength"]) for r in rows[:2]] == [("none", "0.0"), ("m-ssr", "0.001")]
    designs = []
    for r in rows:
        run = sweep / r["input"].split("/")[1]
        design = tmp_path / f"p{r['point']}-{run.name}"
        other = [str(sweep / n) for n in RUNS if n != run.name]      # one chip design per point (--scale common)
        assert main(["map", str(run), *CHIP, "--set", f"hw.v_read_v={r['hw.v_read_v']}", "--set",
                     f"hw.bits={r['hw.bits']}", "--common-scale-with", *other, "--out", str(design)]) == 0
        capsys.readouterr()
        assert main(["hw-eval", str(design), *EVAL, "--json"]) == 0
        hw = json.loads(capsys.readouterr().out)
        for key in ("accuracy", "accuracy_std", "spikes_per_neuron_mean", "output_spikes_per_neuron"):
            assert float(r[key]) == hw[key], key
        assert main(["eval", str(run), "--limit", "40", "--json"]) == 0
        assert float(r["software_accuracy"]) == json.loads(capsys.readouterr().out)["accuracy"]
        designs.append(design)
    assert main(["energy-report", *map(str, designs), "--hw", "passive", "--limit", "40", "--quiet",
                 "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())["runs"]
    assert len(report) == len(rows)
    macs = 784 * 16 + 16 * 10
    for r, e in zip(rows, report):
        for key in ("energy_per_inference_j", "energy_per_mac_j", "tops_per_w_equivalent", "spike_energy_j"):
            assert float(r[key]) == e[key], key
        for c, value in e["breakdown_j"].items():
            assert float(r[f"energy_{c}_j"]) == value, c
        total = float(r["energy_per_inference_j"])     # the field's metrics, by their definitions
        assert float(r["macs_per_inference"]) == macs
        assert float(r["energy_per_mac_j"]) == pytest.approx(total / macs, rel=1e-12)
        assert float(r["tops_per_w_equivalent"]) == pytest.approx(2 * macs / total / 1e12, rel=1e-12)
        assert sum(float(r[f"energy_{c}_j"]) for c in e["breakdown_j"]) == pytest.approx(total, rel=1e-12)
    energies = {float(r["energy_per_inference_j"]) for r in rows}
    assert len(energies) > 2                                     # the grid changes the energy
    assert len({r["full_scale_weight"] for r in rows}) == 1      # one chip design for both runs


def test_per_run_scale_maps_each_run_as_ttfs_map_does(sweep, tmp_path, capsys):
    out = tmp_path / "per-run"
    assert main(["explore", str(sweep), *CHIP, "--vary", "v_read_v=0.1", *EVAL, "--scale", "per-run", "--quiet",
                 "--out", str(out)]) == 0
    rows = _rows(out / "points.csv")
    assert len({r["full_scale_weight"] for r in rows}) == 2
    for r in rows:
        design = tmp_path / r["input"]
        assert main(["map", str(sweep / r["input"].split("/")[1]), *CHIP, "--set", "hw.v_read_v=0.1",
                     "--out", str(design)]) == 0
        capsys.readouterr()
        assert main(["hw-eval", str(design), *EVAL, "--json"]) == 0
        hw = json.loads(capsys.readouterr().out)
        assert (float(r["accuracy"]), float(r["spikes_per_neuron_mean"])) == (hw["accuracy"],
                                                                              hw["spikes_per_neuron_mean"])
        assert r["full_scale_weight"] == ";".join(f"{w:.17g}" for w in load_design(design).full_scale_weight)


def _dominated(r, rows):
    e, a = float(r["energy_per_inference_j"]), float(r["accuracy"])
    return any(float(s["energy_per_inference_j"]) <= e and float(s["accuracy"]) >= a
               and (float(s["energy_per_inference_j"]) < e or float(s["accuracy"]) > a) for s in rows)


def test_the_pareto_rows_are_exactly_the_non_dominated_ones(explored):
    rows = _rows(explored / "points.csv")
    front = _rows(explored / "pareto.csv")
    brute = [r for r in rows if not _dominated(r, rows)]
    key = lambda r: (r["point"], r["input"])     # noqa: E731
    assert sorted(map(key, front)) == sorted(map(key, brute)) and front
    assert [float(r["energy_per_inference_j"]) for r in front] == sorted(float(r["energy_per_inference_j"])
                                                                        for r in front)
    assert all(r in rows for r in front)
    assert (explored / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pareto_front_against_brute_force_with_ties():
    rng = np.random.default_rng(3)
    for trial in range(30):
        n = int(rng.integers(1, 40))
        rows = [{"energy_per_inference_j": float(e), "accuracy": float(a), "id": i}
                for i, (e, a) in enumerate(zip(rng.integers(1, 6, n) * 1e-9, rng.integers(0, 5, n) / 4))]
        front = pareto_front(rows)
        assert sorted(r["id"] for r in front) == sorted(r["id"] for r in rows if not _dominated(r, rows))
    nan = {"energy_per_inference_j": float("nan"), "accuracy": 1.0}
    assert pareto_front([nan, {"energy_per_inference_j": 1.0, "accuracy": 0.0}]) == [
        {"energy_per_inference_j": 1.0, "accuracy": 0.0}]


def _count(monkeypatch):
    calls = []
    real = explore_mod.compute

    def counted(*args):
        calls.append(args[0])
        return real(*args)

    monkeypatch.setattr(explore_mod, "compute", counted)
    return calls


def test_a_rerun_reuses_the_cache_and_another_setting_recomputes(sweep, explored, tmp_path, monkeypatch, capsys):
    before = _files(explored)
    calls = _count(monkeypatch)
    capsys.readouterr()
    assert main(_args(sweep, explored)) == 0
    assert calls == [] and "0 computed, 8 cached" in capsys.readouterr().out
    assert _files(explored) == before
    out = tmp_path / "more"                    # a point added: only its pairs are computed
    for p in (explored / "cache").iterdir():
        (out / "cache").mkdir(parents=True, exist_ok=True)
        (out / "cache" / p.name).write_bytes(p.read_bytes())
    args = _args(sweep, out)
    args[args.index("v_read_v=0.1,0.2")] = "v_read_v=0.1,0.2,0.3"
    assert main(args) == 0
    assert len(calls) == 4 and len(_rows(out / "points.csv")) == 12
    calls.clear()
    args = _args(sweep, out)
    args[args.index("--trials") + 1] = "1"     # trials are part of the fingerprint
    assert main(args) == 0 and len(calls) == 8
    calls.clear()
    assert main(_args(sweep, out, "--set", "energy.e_comparator_j=1e-13")) == 0 and len(calls) == 8
    # the folder explored with other inputs: its tables hold this command's pairs, its cache keeps the others
    kept = len(list((out / "cache").glob("*.json")))
    assert main(["explore", str(sweep / "none"), *CHIP, *VARY, *EVAL, "--quiet", "--out", str(out)]) == 0
    assert [r["input"] for r in _rows(out / "points.csv")] == ["none"] * 4
    assert len(list((out / "cache").glob("*.json"))) >= kept           # nothing of the other inputs deleted


def test_a_kill_mid_run_resumes_to_the_same_files(sweep, explored, tmp_path, monkeypatch):
    out = tmp_path / "killed"
    env = dict(os.environ, TTFS_TEST_EXIT_AT="explore.after_point:3")
    proc = subprocess.run([sys.executable, "-m", "ttfs.cli", *_args(sweep, out)], cwd=ROOT, env=env,
                          capture_output=True, timeout=600)
    assert proc.returncode == 137, proc.stderr.decode()
    assert len(list((out / "cache").glob("*.json"))) == 3 and not (out / "points.csv").exists()
    calls = _count(monkeypatch)
    assert main(_args(sweep, out)) == 0
    assert len(calls) == 5
    assert _files(out) == _files(explored)
    assert not [p for p in out.rglob("*") if p.name.endswith(".part") or p.name == ".lock"]


def test_two_jobs_write_what_one_writes(sweep, explored, tmp_path):
    out = tmp_path / "jobs2"
    assert main(_args(sweep, out, "--jobs", "2")) == 0
    assert _files(out) == _files(explored)


def test_a_dask_cluster_writes_what_one_process_writes(sweep, explored, tmp_path, monkeypatch):
    from dask.distributed import LocalCluster

    import threading

    from hwmodel import tradeoff

    threads, real = [], tradeoff.design_row

    def recording(*args, **kw):             # processes=False: the worker is a thread here, the patch is seen
        threads.append(threading.current_thread().name)
        return real(*args, **kw)

    monkeypatch.setattr(tradeoff, "design_row", recording)
    out = tmp_path / "dask"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster:
        assert main(_args(sweep, out, "--dask", cluster.scheduler_address)) == 0
    assert len(threads) == 8 and threading.main_thread().name not in threads     # computed by the worker
    assert _files(out) == _files(explored)


def test_a_gating_grid_keeps_the_accuracy_and_never_raises_the_energy(sweep, tmp_path):
    out = tmp_path / "gating"
    assert main(["explore", str(sweep), *CHIP, "--vary", "gating=none,decision,column", *EVAL, "--quiet",
                 "--out", str(out)]) == 0
    rows = {(r["hw.gating"], r["input"]): r for r in _rows(out / "points.csv")}
    for run in RUNS:
        none, decision, column = (rows[(g, f"sweep/{run}")] for g in ("none", "decision", "column"))
        assert none["accuracy"] == decision["accuracy"] == column["accuracy"]
        e = [float(r["energy_per_inference_j"]) for r in (none, decision, column)]
        assert e[2] <= e[1] <= e[0]
        assert float(decision["t_stop_s"]) <= float(none["t_stop_s"])


def test_gating_is_a_key_like_any_other():
    points = grid(HardwareConfig(), ["gating=none,decision,column", "c_mem_f=1e-12,1e-11"])
    assert [(p.hw.gating, p.hw.c_mem_f) for p in points] == [
        (g, c) for g in ("none", "decision", "column") for c in (1e-12, 1e-11)]
    assert points[1].label == "gating=none c_mem_f=1e-11" and points[1].index == 1
    with pytest.raises(ConfigError, match="hw.gating"):
        grid(HardwareConfig(), ["gating=none,always"])


@pytest.mark.parametrize("extra, says", [
    (["--vary", "c_mem_f"], "--vary 'c_mem_f': expected KEY=V1,V2"),
    (["--vary", "c_mem_f=1e-12,"], "--vary 'c_mem_f=1e-12,': expected KEY=V1,V2"),
    (["--vary", "c_mem=1e-12"], "--vary c_mem: not a hardware key"),
    (["--vary", "c_mem_f=1e-12,-1"], "--vary point c_mem_f=-1: hw.c_mem_f: must be > 0"),
    (["--vary", "bits=4,four"], "--vary point bits=four: hw.bits: expected an integer"),
    (["--vary", "c_mem_f=1e-12", "--vary", "c_mem_f=1e-11"], "--vary c_mem_f: given twice"),
    (["--vary", "c_mem_f=1e-12,1e-12"], "--vary c_mem_f: a value given twice"),
    (["--vary", "c_mem_f=1e-12,1.0e-12"], "are the same design"),
    (["--vary", "c_mem_f=1e-12", "--set", "hw.c_mem_f=1e-11"], "also given by --set hw.c_mem_f"),
    (["--vary", "gating=none,sometimes"], "hw.gating: must be one of"),
])
def test_a_bad_vary_is_one_line_and_does_no_work(sweep, tmp_path, capsys, monkeypatch, extra, says):
    calls = _count(monkeypatch)
    out = tmp_path / "bad"
    assert main(["explore", str(sweep), *CHIP, *extra, "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], lines
    assert calls == [] and not out.exists()


def test_a_design_folder_or_a_jobs_and_dask_pair_is_refused(sweep, tmp_path, capsys):
    design = tmp_path / "design"
    assert main(["map", str(sweep / "none"), *CHIP, "--out", str(design)]) == 0
    capsys.readouterr()
    assert main(["explore", str(design), *CHIP, *VARY, "--out", str(tmp_path / "o")]) == 2
    assert "keeps the chip it was mapped onto" in capsys.readouterr().err
    assert main(["explore", str(sweep), *CHIP, *VARY, "--jobs", "2", "--dask", "tcp://127.0.0.1:1",
                 "--out", str(tmp_path / "o")]) == 2
    assert "choose one" in capsys.readouterr().err and not (tmp_path / "o").exists()
    # a point the runs cannot be mapped onto: one line naming it, the pairs before it kept
    assert main(["explore", str(sweep), *CHIP, "--set", "hw.clip_weights=false", "--vary",
                 "full_scale_weight=10.0,1e-3", "--limit", "10", "--quiet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--vary point full_scale_weight=0.001: " in err[0] and "cannot map" in err[0]
    assert len(list((tmp_path / "o" / "cache").glob("*.json"))) == 2
