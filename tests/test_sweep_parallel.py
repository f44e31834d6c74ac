"""Sweeps that scale out (training.sweep through infra.workers): `--jobs N` and `--dask ADDRESS` give
the run folders, weights and tables of the same sweep run here; seeds as a sweep axis and the mean
and standard deviation over them (tradeoff_mean.csv, the figures' error bars); bad flags are one
line; a partial sweep resumes only its missing points; Ctrl-C or a kill stops the workers and
leaves every file whole.

Tiny real-data runs: 784-20-15-10, 100 MNIST training and test images, one epoch.
"""
import csv
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from infra.config import read_yaml
from infra.folder_lock import folder_lock, is_temporary
from infra.errors import CheckpointError
from training import sweep as sweep_mod
from training.sweep import CSV_NAME, MEAN_CSV_NAME, aggregate, read_tradeoff, run_sweep
from ttfs.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "mnist-784-400-10.yaml"
TINY = ["model.layers=[784, 20, 15, 10]", "data.train_limit=100", "data.test_limit=100",
        "train.batch_size=50", "train.epochs=1"]
SEEDS = [0, 1, 2]
RUNS = sorted(f"{p}_seed{k}" for p in ("none", "m-ssr_s0.001") for k in SEEDS)


@contextmanager
def numba_threads(n: int):
    """This thread's numba thread count: the workers train with one thread each (--threads-per-job
    1), and numba splits a batch by the thread count, so the reference does too."""
    import numba
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _sweep(out, **kw):
    return run_sweep(read_yaml(CONFIG), "m-ssr", [1e-3], out, overrides=TINY, seeds=SEEDS, **kw)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The reference: the seed sweep trained here, one point after the other."""
    out = tmp_path_factory.mktemp("local") / "sweep"
    with numba_threads(1):
        _sweep(out)
    return out


def _contents(sweep: Path) -> dict:
    """Everything a sweep folder holds that does not depend on the clock: the tables, and per run its
    config, every array of model.npz and state.npz, and its metrics without the epoch's seconds."""
    out = {name: (sweep / name).read_bytes() for name in (CSV_NAME, MEAN_CSV_NAME)}
    for run in sorted(d for d in sweep.iterdir() if d.is_dir()):
        files = {"config.yaml": (run / "config.yaml").read_text()}
        for name in ("model.npz", "state.npz"):
            with np.load(run / name) as z:
                files[name] = {k: z[k].tolist() for k in z.files if z[k].dtype.kind in "fiub"}
        files["metrics"] = [{k: v for k, v in r.items() if k != "seconds"}
                            for r in _jsonl(run / "metrics.jsonl")]
        out[run.name] = files
    return out


def _jsonl(path):
    import json
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_seed_axis_names_and_seeds_every_run(local):
    assert sorted(d.name for d in local.iterdir() if d.is_dir()) == RUNS
    for run in RUNS:
        assert read_yaml(local / run / "config.yaml")["seed"] == int(run[-1])
    with np.load(local / "none_seed0" / "model.npz") as a, np.load(local / "none_seed1" / "model.npz") as b:
        assert not np.array_equal(a["w0"], b["w0"])          # another seed, other weights
    rows = read_tradeoff(local / CSV_NAME)
    assert sorted((r["run"], r["seed"]) for r in rows) == sorted((r, int(r[-1])) for r in RUNS)


def test_two_jobs_give_the_run_folders_weights_and_tables_of_one(local, tmp_path, caplog):
    out = tmp_path / "sweep"
    caplog.set_level("INFO", logger="training.sweep")
    _sweep(out, jobs=2)
    assert "training 6 of 6 points on 2 worker processes" in caplog.text
    assert _contents(out) == _contents(local)


def test_a_sweep_over_a_dask_cluster_equals_the_sweep_run_here(local, tmp_path, monkeypatch):
    from dask.distributed import LocalCluster

    threads = []
    real = sweep_mod.train

    def recording_train(cfg, run, **kw):            # same process (processes=False): the patch is seen
        threads.append(threading.current_thread().name)
        return real(cfg, run, **kw)

    monkeypatch.setattr(sweep_mod, "train", recording_train)
    out = tmp_path / "sweep"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster:
        _sweep(out, dask_address=cluster.scheduler_address)
    assert len(threads) == 6 and threading.main_thread().name not in threads    # trained by the worker
    assert _contents(out) == _contents(local)


def test_the_mean_table_is_the_hand_computed_mean_and_std_over_seeds(local):
    with open(local / CSV_NAME, newline="") as fh:
        runs = list(csv.DictReader(fh))
    with open(local / MEAN_CSV_NAME, newline="") as fh:
        points = list(csv.DictReader(fh))
    assert [(p["kind"], float(p["strength"]), p["n_seeds"], p["seeds"]) for p in points] == \
        [("none", 0.0, "3", "0;1;2"), ("m-ssr", 1e-3, "3", "0;1;2")]
    metrics = ["accuracy", "spikes_per_neuron_l1", "spikes_per_neuron_l2", "spikes_per_neuron_mean",
               "output_spikes_per_neuron"]
    spread = 0.0
    for p in points:
        mine = [r for r in runs if r["kind"] == p["kind"]]
        assert p["runs"].split(";") == [r["run"] for r in mine] and len(mine) == 3
        for m in metrics:
            x = [float(r[m]) for r in mine]
            mean = (x[0] + x[1] + x[2]) / 3
            std = math.sqrt(((x[0] - mean) ** 2 + (x[1] - mean) ** 2 + (x[2] - mean) ** 2) / 2)
            assert float(p[m]) == pytest.approx(mean, rel=1e-12, abs=1e-15)
            assert float(p[f"{m}_std"]) == pytest.approx(std, rel=1e-9, abs=1e-15)
            spread += std
    assert spread > 0                       # the seeds differ: the std columns are not all zero
    # a single run is a point of its own, with no standard deviation
    one = aggregate(read_tradeoff(local / CSV_NAME)[:1])
    assert one[0]["n_seeds"] == 1 and one[0]["accuracy_std"] is None


def test_the_tradeoff_figure_draws_the_mean_with_std_error_bars(local):
    from matplotlib.container import ErrorbarContainer
    from training.plots import tradeoff_figure

    points = aggregate(read_tradeoff(local / CSV_NAME))
    fig = tradeoff_figure(points, kinds=("m-ssr",))
    mean_panel = fig.axes[-1]
    bars = {c.get_label(): c for c in mean_panel.containers if isinstance(c, ErrorbarContainer)}
    for label, kind in (("M-SSR", "m-ssr"), ("no regulariser", "none")):
        p = next(q for q in points if q["kind"] == kind)
        x, y = p["spikes_per_neuron_mean"], 100 * p["accuracy"]
        sx, sy = p["spikes_per_neuron_mean_std"], 100 * p["accuracy_std"]
        data_line, _, (xbars, ybars) = bars[label].lines
        assert data_line.get_xdata()[0] == pytest.approx(x) and data_line.get_ydata()[0] == pytest.approx(y)
        np.testing.assert_allclose(xbars.get_segments()[0], [[x - sx, y], [x + sx, y]], rtol=1e-12)
        np.testing.assert_allclose(ybars.get_segments()[0], [[x, y - sy], [x, y + sy]], rtol=1e-12)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("flags, message", [
    (["--seeds", "0,-1"], "--seeds: expected comma-separated integers >= 0"),
    (["--seeds", "1.5"], "--seeds: expected comma-separated integers >= 0"),
    (["--seeds", "a,b"], "--seeds: expected comma-separated integers >= 0"),
    (["--seeds", ","], "--seeds: need one or more integers >= 0"),
    (["--seeds", "0,1,0"], "--seeds: 0 given more than once"),
    (["--dask", "foo"], "--dask 'foo': expected a scheduler address tcp://HOST:PORT"),
    (["--dask", "tcp://127.0.0.1:99999"], "expected a scheduler address"),
    (["--dask", "tcp://127.0.0.1:<port>"], "--dask tcp://127.0.0.1:<port>: no scheduler answers"),
    (["--jobs", "2", "--dask", "tcp://127.0.0.1:<port>"], "--jobs 2 and --dask: choose one"),
])
def test_bad_seeds_and_dask_values_are_one_line_errors(tmp_path, capsys, flags, message):
    port = str(_closed_port())
    out = tmp_path / "sweep"
    argv = ["sweep", "--config", str(CONFIG), "--reg", "m-ssr", "--strengths", "1e-3", "--out", str(out),
            *[f.replace("<port>", port) for f in flags]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("ttfs sweep: error: ") and message.replace("<port>", port) in err
    assert not out.exists()


@pytest.mark.parametrize("flag, value", [("--jobs", "0"), ("--jobs", "-2"), ("--jobs", "x"),
                                         ("--threads-per-job", "0")])
def test_bad_jobs_are_usage_errors_naming_the_flag(tmp_path, capsys, flag, value):
    out = tmp_path / "sweep"
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--config", str(CONFIG), "--reg", "m-ssr", "--strengths", "1e-3", "--out", str(out),
              flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"ttfs sweep: error: argument {flag}: expected an integer >= 1, got {value!r}"
    assert not out.exists()


def test_a_partial_sweep_trains_only_its_missing_points(local, tmp_path, caplog):
    out = tmp_path / "sweep"
    shutil.copytree(local, out)
    missing = ["m-ssr_s0.001_seed1", "none_seed2"]
    for name in missing:
        shutil.rmtree(out / name)
    (out / MEAN_CSV_NAME).unlink()
    kept = {d.name: (d / "state.npz").read_bytes() for d in out.iterdir() if d.is_dir()}
    caplog.set_level("INFO", logger="training.sweep")
    _sweep(out, jobs=2)
    trained = sorted(r.getMessage().split()[1][:-1] for r in caplog.records if ": trained" in r.getMessage())
    skipped = sorted(r.getMessage().split()[1][:-1] for r in caplog.records if "complete, skipped" in r.getMessage())
    assert trained == missing and skipped == sorted(kept)
    assert {name: (out / name / "state.npz").read_bytes() for name in kept} == kept     # not rewritten
    assert _contents(out) == _contents(local)
    # a run folder of another config is still refused, before anything trains
    with pytest.raises(CheckpointError, match="train.lr"):
        run_sweep(read_yaml(CONFIG), "m-ssr", [1e-3], out, overrides=TINY + ["train.lr=0.01"], seeds=SEEDS, jobs=2)


def _workers(pid: int) -> list[int]:
    """The worker processes `pid` spawned (from /proc: its children running multiprocessing.spawn)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == pid and b"multiprocessing.spawn" in cmdline:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_ctrl_c_or_a_kill_stops_the_workers_and_leaves_every_file_whole(tmp_path, sig):
    out = tmp_path / "sweep"
    long = ["data.train_limit=5000", "data.test_limit=100", "train.epochs=50"]      # minutes: never finishes here
    proc = subprocess.Popen([sys.executable, "-m", "ttfs.cli", "sweep", "--config", str(CONFIG), "--reg", "m-ssr",
                             "--strengths", "1e-3", "--jobs", "2", "--no-plots", "--quiet", "--out", str(out),
                             *[x for s in long for x in ("--set", s)]],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*/.lock")) and time.monotonic() < deadline:   # a worker is training
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        workers = _workers(proc.pid)
        assert len(workers) == 2 and list(out.glob("*/.lock"))
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    err = proc.stderr.read().strip()
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert err == "ttfs sweep: interrupted; rerun the same command to continue (finished work is kept)"
    else:
        assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 20
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, workers))                   # no worker trains on after its parent
    for run in (d for d in out.iterdir() if d.is_dir()):
        with folder_lock(run, "test"):                      # free: its worker is gone
            pass
        for f in run.iterdir():                             # every file of the run is whole
            if is_temporary(f.name):
                continue
            if f.suffix == ".npz":
                with np.load(f) as z:
                    [z[k] for k in z.files]
            elif f.suffix == ".yaml":
                assert isinstance(read_yaml(f), dict)
            elif f.suffix == ".jsonl":
                _jsonl(f)
    assert os.path.exists(out)
