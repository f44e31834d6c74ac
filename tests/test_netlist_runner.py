"""`ttfs simulate`: resumable results, failures recorded not fatal, clear error without ngspice,
and the same firing times from worker processes and from a dask cluster."""
import json

import numpy as np
import pytest

import netlists.ngspice as ngspice_mod
import netlists.runner as runner
from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from infra.atomic_io import read_jsonl
from training.config import ModelConfig
from infra.errors import SimulationError
from ttfs.cli import main


@pytest.fixture(scope="module")
def design_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    w = [rng.normal(2.0 / 784, 1.0 / np.sqrt(784), (784, 5)), rng.normal(2.5 / 5, 0.8 / np.sqrt(5), (5, 3))]
    design = map_model(w, ModelConfig(layers=(784, 5, 3)), HardwareConfig(comparator_delay_s=1e-9))
    path = tmp_path_factory.mktemp("netlist-runner") / "design"
    save_design(design, path)
    return path


def records(out):
    return read_jsonl(out / "results.jsonl")


def test_results_agree_with_behavioural_model_and_summary_is_written(design_path, tmp_path):
    out = tmp_path / "sim"
    assert main(["simulate", str(design_path), "--limit", "3", "--out", str(out), "--quiet"]) == 0
    recs = records(out)
    assert [r["index"] for r in recs] == [0, 1, 2]
    for r in recs:
        assert r["status"] == "ok" and r["agree"]
        assert r["max_dt_pct_window"] < 0.5
        assert r["spikes"] == r["behavioural_spikes"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == 3 and summary["agreement"] == 1.0


def test_interrupted_run_resumes_without_recomputing(design_path, tmp_path, monkeypatch):
    out = tmp_path / "sim"
    calls = []
    real = runner.simulate_image

    def interrupt_at_third(circuit, t_input, timeout_s=None):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(circuit, t_input, timeout_s)

    monkeypatch.setattr(runner, "simulate_image", interrupt_at_third)
    assert main(["simulate", str(design_path), "--limit", "4", "--out", str(out), "--quiet"]) == 130
    assert [r["index"] for r in records(out)] == [0, 1]
    with open(out / "results.jsonl", "a") as fh:        # a crash mid-write leaves a torn line
        fh.write('{"index": 2, "sta')
    calls.clear()
    monkeypatch.setattr(runner, "simulate_image", lambda c, t, timeout_s=None: (calls.append(1), real(c, t))[1])
    assert main(["simulate", str(design_path), "--limit", "4", "--out", str(out), "--quiet"]) == 0
    assert len(calls) == 2                              # only images 2 and 3 were simulated again
    resumed = records(out)
    assert sorted(r["index"] for r in resumed) == [0, 1, 2, 3]
    fresh = tmp_path / "fresh"
    monkeypatch.setattr(runner, "simulate_image", real)
    assert main(["simulate", str(design_path), "--limit", "4", "--out", str(fresh), "--quiet"]) == 0
    by_index = {r["index"]: r for r in records(fresh)}
    for r in resumed:
        assert r["times_s"] == by_index[r["index"]]["times_s"]


def test_failed_image_is_retried_then_recorded_and_the_run_goes_on(design_path, tmp_path, monkeypatch):
    real = runner.simulate_network
    attempts = {}

    def flaky(circuit, t_input, settings, timeout_s=None):
        key = float(np.sum(t_input))
        attempts[key] = attempts.get(key, 0) + 1
        if len(attempts) == 2:                       # the second image never converges
            raise SimulationError("timestep too small (simulated)")
        if len(attempts) == 3 and attempts[key] == 1:  # the third converges on the retry
            raise SimulationError("timestep too small (simulated)")
        return real(circuit, t_input, settings, timeout_s)

    monkeypatch.setattr(runner, "simulate_network", flaky)
    out = tmp_path / "sim"
    assert main(["simulate", str(design_path), "--limit", "3", "--out", str(out), "--quiet"]) == 0
    recs = records(out)
    assert [r["status"] for r in recs] == ["ok", "failed", "ok"]
    assert recs[1]["retried"] and len(recs[1]["errors"]) == 2 and "timestep" in recs[1]["errors"][0]
    assert recs[2]["retried"] and recs[2]["agree"]
    assert json.loads((out / "summary.json").read_text())["n_failed"] == 1


def test_timeout_halts_ngspice_and_is_recorded(design_path):
    _, circuit = runner.load(str(design_path))
    t = np.random.default_rng(0).integers(0, 8, 784) * 1e-7     # 8 shared drivers: a quick circuit
    assert runner.simulate_image(circuit, t)["status"] == "ok"     # the server has done some work
    before = ngspice_mod.session().cpu_seconds()
    sim = runner.simulate_image(circuit, t, timeout_s=1e-4)
    assert sim["status"] == "failed" and len(sim["errors"]) == 2
    assert all("did not finish" in e for e in sim["errors"])
    # the killed servers' CPU stays counted: the session's total never falls, an image's is >= 0
    assert ngspice_mod.session().cpu_seconds() >= before and sim["cpu_seconds"] >= 0
    assert runner.simulate_image(circuit, t)["status"] == "ok"     # ngspice was restarted


def test_missing_ngspice_names_the_install_command(design_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ngspice_mod, "_SESSION", None)
    monkeypatch.setenv("NGSPICE_LIBRARY_PATH", str(tmp_path / "no-such-libngspice.so.0"))
    with pytest.raises(SimulationError, match="apt-get install ngspice libngspice0"):
        ngspice_mod.Session()
    assert main(["simulate", str(design_path), "--limit", "1", "--out", str(tmp_path / "s"), "--quiet"]) == 2
    assert "apt-get install ngspice libngspice0" in capsys.readouterr().err
    # a session that loses its library later records the failure per image, with the same hint
    _, circuit = runner.load(str(design_path))
    sim = runner.simulate_image(circuit, np.full(784, 1e-7))
    assert sim["status"] == "failed" and "apt-get install ngspice libngspice0" in sim["errors"][0]


@pytest.mark.slow
def test_worker_processes_and_dask_cluster_give_the_serial_times(design_path, tmp_path):
    from dask.distributed import LocalCluster
    serial, pool, dask = tmp_path / "serial", tmp_path / "pool", tmp_path / "dask"
    assert main(["simulate", str(design_path), "--limit", "4", "--out", str(serial), "--quiet"]) == 0
    assert main(["simulate", str(design_path), "--limit", "4", "--workers", "2", "--out", str(pool),
                 "--quiet"]) == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert main(["simulate", str(design_path), "--limit", "4", "--dask", cluster.scheduler_address,
                     "--out", str(dask), "--quiet"]) == 0
    ref = {r["index"]: r["times_s"] for r in records(serial)}
    for out in (pool, dask):
        got = {r["index"]: r["times_s"] for r in records(out)}
        assert got == ref
