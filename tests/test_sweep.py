"""Regulariser sweeps (training.sweep, `ttfs sweep`), their table, the per-layer metrics and the plots.

Tiny real-data runs: 784-20-15-10 (two hidden layers), 200 MNIST training and test images.
"""
import csv
from pathlib import Path

import numpy as np
import pytest

from training import kernels_ref, sweep as sweep_mod
from training.checkpoint import load_model
from training.data import load_split
from training.encoding import encode_pixels
from infra.errors import CheckpointError, ConfigError
from training.evaluate import evaluate
from training.plots import membrane_trace
from training.sweep import CSV_NAME, run_sweep, sweep_points
from training.trainer import train
from ttfs.cli import main
from infra.config import read_yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "mnist-784-400-10.yaml"
TINY = ["model.layers=[784, 20, 15, 10]", "data.train_limit=200", "data.test_limit=200",
        "train.batch_size=50", "train.epochs=1"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny batches: numba's thread hand-offs cost more than they save (a lot on a loaded machine)."""
    import numba
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_sweep_points_name_runs_and_include_a_baseline():
    names = [p.name for p in sweep_points("m-ssr", [3e-4, 0.0, 1e-5])]
    assert names == ["none", "m-ssr_s1e-05", "m-ssr_s0.0003"]
    names = [p.name for p in sweep_points("membrane", [1e-4], [0.5, 0.8])]
    assert names == ["none", "membrane_v0.5_s0.0001", "membrane_v0.8_s0.0001"]
    with pytest.raises(ConfigError, match="--v-hat"):
        sweep_points("membrane", [1e-4])
    with pytest.raises(ConfigError, match="--v-hat"):
        sweep_points("f-ssr", [1e-4], [0.5])
    with pytest.raises(ConfigError, match="--strengths"):
        sweep_points("m-ssr", [-1e-4])


def _state_bytes(folder: Path) -> dict:
    return {d.name: (d / "state.npz").read_bytes() for d in folder.iterdir() if (d / "state.npz").is_file()}


def test_sweep_resume_skips_complete_runs_and_resumes_partial_ones(tmp_path, monkeypatch):
    base = read_yaml(CONFIG)
    out = tmp_path / "sweep"
    calls = []
    real_train = sweep_mod.train

    def counting_train(cfg, run, **kw):
        calls.append(Path(run).name)
        return real_train(cfg, run, **kw)

    monkeypatch.setattr(sweep_mod, "train", counting_train)
    run_sweep(base, "m-ssr", [1e-4, 1e-3], out, overrides=TINY)
    assert calls == ["none", "m-ssr_s0.0001", "m-ssr_s0.001"]
    before = _state_bytes(out)

    calls.clear()
    run_sweep(base, "m-ssr", [1e-4, 1e-3], out, overrides=TINY)
    assert calls == []                                   # all complete: nothing retrained
    assert _state_bytes(out) == before                   # ... and nothing rewritten

    # An interrupted two-epoch sweep: the baseline finishes epoch 2, then the user hits Ctrl-C.
    two = TINY + ["train.epochs=2"]

    def interrupted_train(cfg, run, **kw):
        if calls:
            raise KeyboardInterrupt
        calls.append(Path(run).name)
        return real_train(cfg, run, **kw)

    monkeypatch.setattr(sweep_mod, "train", interrupted_train)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(base, "m-ssr", [1e-4, 1e-3], out, overrides=two)
    monkeypatch.setattr(sweep_mod, "train", counting_train)
    calls.clear()
    run_sweep(base, "m-ssr", [1e-4, 1e-3], out, overrides=two)
    assert calls == ["m-ssr_s0.0001", "m-ssr_s0.001"]    # the finished baseline is skipped
    for name in ("none", "m-ssr_s0.0001", "m-ssr_s0.001"):
        lines = (out / name / "metrics.jsonl").read_text().splitlines()
        assert [int(l.split('"epoch": ')[1].split(",")[0]) for l in lines] == [1, 2]

    # the resumed run ends where an uninterrupted 2-epoch run of the same point ends, bit for bit
    point = sweep_points("m-ssr", [1e-4])[1]
    fresh = tmp_path / "fresh"
    train(sweep_mod.point_config(base, point, two), fresh, progress=False)
    with np.load(fresh / "model.npz") as a, np.load(out / point.name / "model.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)

    # a run folder trained with another config is never silently reused
    with pytest.raises(CheckpointError, match="train.lr"):
        run_sweep(base, "m-ssr", [1e-4], out, overrides=two + ["train.lr=0.01"])


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    base = read_yaml(CONFIG)
    run_sweep(base, "m-ssr", [0.0, 1e-3], out, overrides=TINY)
    run_sweep(base, "membrane", [1e-3], out, v_hats=[0.7], overrides=TINY)
    return out


def test_tradeoff_csv_matches_the_run_folders(small_sweep):
    with open(small_sweep / CSV_NAME, newline="") as fh:
        rows = list(csv.DictReader(fh))
    folders = sorted(d.name for d in small_sweep.iterdir() if (d / "metrics.jsonl").is_file())
    assert sorted(r["run"] for r in rows) == folders == ["m-ssr_s0.001", "membrane_v0.7_s0.001", "none"]
    test = load_split("mnist", "test", limit=200)
    for r in rows:
        run = load_model(small_sweep / r["run"])
        reg = run.meta["reg"]
        assert r["kind"] == reg["kind"]
        assert float(r["strength"]) == (0.0 if reg["kind"] == "none" else reg["strength"])
        assert (r["v_hat"] == "") == (reg["kind"] != "membrane")
        if reg["kind"] == "membrane":
            assert float(r["v_hat"]) == reg["v_hat"] == 0.7
        # an independent re-evaluation of the saved weights gives the table's numbers
        ev = evaluate(run.weights, run.model, test.images, test.labels, backend="numpy")
        assert float(r["accuracy"]) == pytest.approx(ev["accuracy"], abs=1e-12)
        assert float(r["spikes_per_neuron_l1"]) == pytest.approx(ev["spikes_per_neuron"][0], abs=1e-12)
        assert float(r["spikes_per_neuron_l2"]) == pytest.approx(ev["spikes_per_neuron"][1], abs=1e-12)
        assert float(r["spikes_per_neuron_mean"]) == pytest.approx(np.mean(ev["spikes_per_neuron"]), abs=1e-12)
        assert float(r["output_spikes_per_neuron"]) == pytest.approx(ev["output_spikes_per_neuron"], abs=1e-12)
        assert int(float(r["epochs"])) == 1


def test_metrics_log_spikes_per_neuron_per_hidden_layer(small_sweep):
    """metrics.jsonl's spikes per neuron = fraction of a layer's neurons that fire within the window,
    averaged over test images, recounted here from the numpy twin's firing times."""
    run = load_model(small_sweep / "none")
    import json
    rec = json.loads((small_sweep / "none" / "metrics.jsonl").read_text().splitlines()[-1])
    test = load_split("mnist", "test", limit=200)
    t = encode_pixels(test.images, run.model.t_in)
    counts = []
    for w in run.weights:
        t = kernels_ref.forward(t, w, run.model.v_th, run.model.t_end)[0]
        fired = np.isfinite(t)
        assert np.all(t[fired] <= run.model.t_end)
        counts.append(fired.sum() / (w.shape[1] * len(t)))
    assert len(rec["spikes_per_neuron"]) == 2
    np.testing.assert_allclose(rec["spikes_per_neuron"], counts[:-1], atol=1e-12)
    assert rec["spikes_per_neuron_mean"] == pytest.approx(np.mean(counts[:-1]), abs=1e-12)
    assert rec["output_spikes_per_neuron"] == pytest.approx(counts[-1], abs=1e-12)
    assert 0.0 < rec["spikes_per_neuron_mean"] < 1.0
    assert len(rec["train_spikes_per_neuron"]) == 2


def test_membrane_trace_is_exact_and_reaches_threshold_at_the_firing_time():
    rng = np.random.default_rng(0)
    t_in = rng.uniform(0.0, 1.0, (1, 30))
    t_in[0, :3] = np.inf
    w = rng.normal(0.1, 0.1, (30, 6))
    t_out = kernels_ref.forward(t_in, w, 1.0, 4.0)[0][0]
    assert np.isfinite(t_out).sum() >= 2
    for i in range(6):
        (tp, vp), (tu, vu) = membrane_trace(t_in[0], w[:, i], t_out[i], 4.0)
        dense_t = np.sort(rng.uniform(0.0, tp[-1], 200))
        dense_v = np.maximum(0.0, dense_t[:, None] - t_in[0][None, :]) @ w[:, i]
        np.testing.assert_allclose(np.interp(dense_t, tp, vp), dense_v, atol=1e-12)
        if np.isfinite(t_out[i]):
            assert vp[-1] == pytest.approx(1.0, abs=1e-12) and tp[-1] == t_out[i]
            assert tu[0] == t_out[i] and tu[-1] == 4.0
            assert np.all(vp[:-1] < 1.0 + 1e-12)
        else:
            assert tp[-1] == 4.0 and len(tu) == 0 and np.all(vp < 1.0)


def _png_size(path: Path):
    import matplotlib.image as mpimg
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(path).shape


def test_sweep_and_plot_commands_write_table_and_figures(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "--config", str(CONFIG), "--reg", "f-ssr", "--strengths", "0,1e-3", "--out", str(out),
            "--quiet"] + [x for s in TINY for x in ("--set", s)]
    assert main(args) == 0
    assert (out / CSV_NAME).is_file() and (out / "none").is_dir() and (out / "f-ssr_s0.001").is_dir()
    tag = "mnist-784-20-15-10"
    for png in (f"{tag}-tradeoff.png", f"{tag}-raster.png"):
        h, w, _ = _png_size(out / png)
        assert h > 300 and w > 300
    figs = tmp_path / "figs"
    assert main(["plot", str(out), "--out", str(figs)]) == 0
    assert (figs / f"{tag}-tradeoff.png").is_file() and (figs / f"{tag}-raster.png").is_file()
    assert main(["plot", str(out / "none"), str(out / "f-ssr_s0.001"), "--image", "2", "--out", str(figs)]) == 0
    assert _png_size(figs / "raster.png")[1] > _png_size(out / f"{tag}-tradeoff.png")[1] * 0.5
    assert main(["plot", str(tmp_path), "--out", str(figs)]) == 2        # not a run or sweep folder
    assert "neither a run folder" in capsys.readouterr().err
    assert main(["sweep", "--config", str(CONFIG), "--reg", "membrane", "--strengths", "1e-3",
                 "--out", str(out)]) == 2                                 # v_hat missing
    for cmd in ("sweep", "plot"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "example:" in capsys.readouterr().out


def test_seed_spread_plot_draws_every_group(tmp_path):
    from training.plots import plot_seed_spread
    groups = {"none": [(0.33, 0.972), (0.31, 0.974)], "m-ssr": [(0.20, 0.967)], "empty": []}
    png = plot_seed_spread(groups, tmp_path / "f" / "seeds.png", title="t")
    h, w = _png_size(png)[:2]
    assert h > 200 and w > 300
