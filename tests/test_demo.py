"""The demo's whole chain (sweep, train --hw, map, hw-eval, simulate, export, energy, explore) on a tiny setting."""
import json

import numpy
import pytest

from infra.provenance import KEY, provenance
from ttfs.cli import main
from ttfs.cmd_demo import COLUMNS

NETWORKS = ("baseline", "m-ssr", "baseline (for low-power-integrator)", "m-ssr (for low-power-integrator)",
            "energy-aware (for low-power-integrator)")


def _check(out, sim_images, printed):
    summary = json.loads((out / "summary.json").read_text())
    assert tuple(summary["rows"]) == NETWORKS
    for name, s in summary["rows"].items():
        if "circuit" in s:
            assert s["circuit"]["n_ok"] == sim_images and s["circuit"]["n_failed"] == 0
        assert 0.0 <= s["software"]["accuracy"] <= 1.0 and 0.0 <= s["hardware"]["accuracy"] <= 1.0
        assert s["energy"]["energy_per_inference_j"] > 0 and s["energy"]["energy_per_mac_j"] > 0
        assert s["energy"]["gating"] == "decision"          # both chips gated (ttfs.cmd_demo.GATING_SETS)
    # the circuit check covers the baseline on both chips and every network on the low-power chip
    assert [n for n, s in summary["rows"].items() if "circuit" in s] == [NETWORKS[0], *NETWORKS[2:]]
    # savings are against the first network on the same chip
    assert summary["rows"]["baseline"]["energy"]["savings_pct"] == 0.0
    assert summary["rows"][NETWORKS[2]]["energy"]["savings_pct"] == 0.0
    assert summary["rows"]["m-ssr"]["energy"]["savings_pct"] != 0.0
    here = {k: v for k, v in provenance().items() if k != "ngspice"}   # ngspice: known where it was loaded
    assert {k: v for k, v in summary[KEY].items() if k != "ngspice"} == here and here["numpy"] == numpy.__version__
    text = (out / "netlists" / "low-power-baseline-sample0.cir").read_text()
    assert ".meas tran t_l0_n0" in text and ".end" in text
    for f in ("reports/default/report.md", "reports/low-power-integrator/report.md", "explore/pareto.png",
              "explore/points.csv", "explore/pareto.csv", "summary.md"):
        assert (out / f).is_file(), f
        assert str(out / f) in printed or f in ("explore/pareto.csv", "summary.md"), f
    # the table: the header names every column, one row per network
    table = (out / "summary.md").read_text().splitlines()
    assert table[0] == "| " + " | ".join(COLUMNS) + " |"
    for name, line in zip(NETWORKS, table[2:7]):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == name and len(cells) == len(COLUMNS)
    return summary


def test_tiny_demo_runs_the_whole_chain(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["demo", "--out", str(out), "--profile", "tiny", "--quiet"]) == 0
    _check(out, 1, capsys.readouterr().out)
    table = (out / "summary.md").read_text()
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("model.npz")}
    sims = {p: p.read_text() for p in (out / "sim").rglob("results.jsonl")}
    assert len(mtimes) == 5 and len(sims) == 4
    # a rerun continues: no run is trained again, no image simulated again, and the table is the same
    assert main(["demo", "--out", str(out), "--profile", "tiny", "--quiet"]) == 0
    _check(out, 1, capsys.readouterr().out)
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("model.npz")} == mtimes
    assert {p: p.read_text() for p in (out / "sim").rglob("results.jsonl")} == sims
    assert (out / "summary.md").read_text() == table


def test_make_demo_installs_then_runs_the_demo():
    """README's `make demo` is the install steps, then `ttfs demo --out DEMO_OUT` (which test_full_demo
    runs; the install steps run in CI through `make test`, which shares them)."""
    import subprocess
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    plan = {target: [ln for ln in subprocess.run(["make", "-n", "-C", str(root), target, "DEMO_OUT=demo-out"],
                                                 capture_output=True, text=True, check=True).stdout.splitlines()
                     if not ln.startswith("make")] for target in ("demo", "test")}
    install = plan["demo"][:-1]
    assert plan["demo"][-1] == "ttfs demo --out demo-out"
    assert any("pip install" in ln for ln in install) and any("install_data.sh" in ln for ln in install)
    assert plan["test"][:-1] == install and plan["test"][-1].endswith("-m pytest -q")    # the same install


@pytest.mark.slow
def test_full_demo(tmp_path):
    """The command `make demo` ends with, in a fresh process (the install steps are not rerun here:
    they would re-point the environment's editable install)."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "ttfs", "demo", "--out", str(tmp_path / "d"), "--quiet"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = _check(tmp_path / "d", 20, done.stdout)
    rows = summary["rows"]
    assert rows["baseline"]["software"]["accuracy"] >= 0.97          # the target
    for s in rows.values():      # the whole test set, over several chips
        assert s["software"]["n"] == 10000 and s["hardware"]["n"] == 10000 and s["hardware"]["trials"] >= 3
        assert s["software"]["on_chip"] is False
    assert rows["m-ssr"]["energy"]["spikes_per_neuron_mean"] < rows["baseline"]["energy"]["spikes_per_neuron_mean"]
