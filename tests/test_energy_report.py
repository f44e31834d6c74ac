"""`ttfs energy-report` on small run, sweep and design folders, as a user types it."""
import json
import re

import numpy as np
import pytest

from energy.config import EnergyConfig
from energy.model import COMPONENTS, design_energy
from hwmodel.sources import resolve_sources
from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from training.checkpoint import model_meta, save_model
from training.config import ModelConfig
from training.data import load_split
from ttfs.cli import main

MODEL = ModelConfig(layers=(784, 12, 10))


def _run(path, seed, kind="none", strength=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    w = [rng.normal(2.5 / 784, 0.05, (784, 12)) * scale, rng.normal(0.3, 0.3, (12, 10))]
    save_model(path, w, model_meta(MODEL, "mnist", {"reg": {"kind": kind, "strength": strength, "v_hat": None},
                                                    "test_accuracy": 0.5}))
    return w


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("energy")
    sweep = root / "sweep"
    _run(sweep / "zz-baseline", 0)                       # named to sort last: the baseline must still come first
    _run(sweep / "m-ssr_s0.001", 1, "m-ssr", 1e-3, scale=0.8)
    (sweep / "tradeoff.csv").write_text("not a run\n")
    _run(sweep / "f-ssr_s0.001", 3, "f-ssr", 1e-3)           # still training: epoch 1 of 2 done
    (sweep / "f-ssr_s0.001" / "config.yaml").write_text("train:\n  epochs: 2\n")
    with open(sweep / "f-ssr_s0.001" / "model.yaml", "a") as fh:
        fh.write("epochs_completed: 1\n")
    w = _run(root / "single", 2)
    design = map_model(w, MODEL, HardwareConfig(), str(root / "single"), "mnist")
    save_design(design, root / "design")
    return root


def test_a_sweep_expands_to_its_runs_baseline_first(folders):
    names = [s.name for s in resolve_sources([folders / "sweep", folders / "design"])]
    assert names == ["sweep/zz-baseline", "sweep/m-ssr_s0.001", "design"]


def _numbers(obj):
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [float(obj)]
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _numbers(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in _numbers(v)]
    return []


SCALES = {"nJ": [1e-9], "fJ": [1e-15], "uW": [1e-6], "us": [1e-6], "nJ*us": [1e-15], "%": [1.0, 0.01]}


def test_report_json_holds_every_number_its_markdown_shows(folders, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["energy-report", str(folders / "sweep"), str(folders / "design"), "--hw", "configs/hw/ideal.yaml",
                 "--limit", "40", "--rate", "2000", "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    runs = {r["name"]: r for r in report["runs"]}
    assert list(runs) == ["sweep/zz-baseline", "sweep/m-ssr_s0.001", "design"]
    rows = {**runs, **{a["name"]: a for a in report["anchors"]}}    # the anchors table's published rows
    md = (out / "report.md").read_text()
    checked = 0
    header = None
    for line in md.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            if not line.startswith("|---"):
                header = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
            continue
        run = rows[cells[0]]
        values = _numbers(run)
        for head, cell in zip(header[1:], cells[1:]):
            if not re.fullmatch(r"-?[0-9.]+(e[-+]?[0-9]+)?", cell):
                continue
            unit = re.search(r"\(([^)]*)\)\s*$", head)
            scales = SCALES.get(unit.group(1), [1.0]) if unit else [1.0]
            shown = float(cell)
            ok = any(float(f"{v / s:.4g}") == shown for v in values for s in scales)
            assert ok, f"{cells[0]}: '{head}' shows {cell}, which report.json does not hold"
            checked += 1
    assert checked > 60
    for r in report["runs"]:
        assert r["n_images"] == 40
        assert r["energy_per_inference_j"] == pytest.approx(sum(r["breakdown_j"].values()), rel=1e-12)
        assert r["energy_per_inference_j"] == pytest.approx(
            sum(sum(c.values()) for c in r["breakdown_by_layer_j"].values()), rel=1e-12)
        assert r["average_power_w"] == pytest.approx(2000 * r["energy_per_inference_j"], rel=1e-12)
        base = report["runs"][0]["energy_per_inference_j"]
        assert r["savings_pct"] == pytest.approx(100 * (base - r["energy_per_inference_j"]) / base, abs=1e-9)
        assert 0 < r["delay_s"] <= r["window_s"]
    assert report["runs"][0]["savings_pct"] == 0.0
    for png in ("breakdown.png", "energy_vs_accuracy.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the design and the run it came from, mapped with the same (ideal) config, agree
    single = main(["energy-report", str(folders / "single"), "--hw", "configs/hw/ideal.yaml", "--limit", "40",
                   "--rate", "2000", "--out", str(tmp_path / "r2"), "--quiet"])
    assert single == 0
    r2 = json.loads((tmp_path / "r2" / "report.json").read_text())["runs"][0]
    assert r2["energy_per_inference_j"] == pytest.approx(runs["design"]["energy_per_inference_j"], rel=1e-12)
    # a rerun reuses the cache and reports the same numbers
    capsys.readouterr()
    assert main(["energy-report", str(folders / "sweep"), str(folders / "design"), "--hw", "configs/hw/ideal.yaml",
                 "--limit", "40", "--rate", "2000", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "report.json").read_text()) == report


def test_report_numbers_match_the_model_and_the_spike_counts(folders):
    data = load_split("mnist", "test", None, 40)
    design = map_model(_run(folders / "again", 2), MODEL, HardwareConfig(), "", "mnist")
    result, pred = design_energy(design, EnergyConfig(), data.images, progress=False)
    from energy.report import run_stats
    stats = run_stats("x", design, {}, result, pred, data.labels, 1000.0)
    from hwmodel.behavioural import input_times_s, layer_times
    times = layer_times(design, input_times_s(design, data.images))
    assert stats["spikes_per_neuron"] == [pytest.approx(float(np.isfinite(times[0]).mean()), rel=1e-12)]
    assert stats["spikes_per_inference"]["input"] == 784
    n_fired = np.isfinite(times[0]).sum() / 40 + np.isfinite(times[1]).sum() / 40
    assert stats["breakdown_j"]["comparator"] == pytest.approx(EnergyConfig().e_comparator_j * n_fired, rel=1e-12)
    assert set(stats["breakdown_j"]) == set(COMPONENTS)


def test_report_errors_name_the_fix(folders, tmp_path, capsys):
    assert main(["energy-report", str(tmp_path), "--hw", "configs/hw/ideal.yaml", "--out", str(tmp_path / "r")]) == 2
    assert "neither a run folder" in capsys.readouterr().err
    assert main(["energy-report", str(folders / "single"), "--hw", "configs/hw/ideal.yaml", "--rate", "1e7",
                 "--limit", "5", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "--rate: 1e+07 inferences/s leaves less than one window" in capsys.readouterr().err
    # a --set hw. key cannot reach a design folder (it keeps its own hardware): an error, not ignored
    assert main(["energy-report", str(folders / "single"), str(folders / "design"), "--hw", "ideal", "--set",
                 "hw.gating=decision", "--limit", "5", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--set hw.gating=decision: applies to run folders" in err
    assert str(folders / "design") in err and "ttfs map RUN" in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", ["energy-report", "energy-validate"])
def test_every_energy_command_help_shows_an_example(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "example" in capsys.readouterr().out


def test_common_scale_maps_compared_runs_onto_one_chip_design(folders, tmp_path):
    """The default: per layer, the largest full-scale weight of the compared runs; a run's energy is then
    exactly that of the run mapped with hw.full_scale_weight set to it. per-run: each its own max |w|."""
    from energy.report import build_report
    from training.checkpoint import load_model
    paths = [folders / "sweep" / "zz-baseline", folders / "sweep" / "m-ssr_s0.001"]
    weights = [load_model(p).weights for p in paths]
    own = [[float(np.abs(w).max()) for w in ws] for ws in weights]
    common = [max(a, b) for a, b in zip(*own)]
    assert own[0] != own[1]
    hw = HardwareConfig()
    rep = build_report(paths, hw, EnergyConfig(), limit=20, progress=False)
    assert rep["scale"] == "common"
    assert [r["full_scale_weight"] for r in rep["runs"]] == [pytest.approx(common, rel=1e-12)] * 2
    data = load_split("mnist", "test", None, 20)
    design = map_model(weights[1], MODEL, hw.with_(full_scale_weight=tuple(common)), "", "mnist")
    result, _ = design_energy(design, EnergyConfig(), data.images, progress=False)
    assert rep["runs"][1]["energy_per_inference_j"] == pytest.approx(float(result.total_j.mean()), rel=1e-12)
    per_run = build_report(paths, hw, EnergyConfig(), limit=20, progress=False, scale="per-run")
    assert [r["full_scale_weight"] for r in per_run["runs"]] == [pytest.approx(o, rel=1e-12) for o in own]
    # the run with the smaller full scale sits on larger conductances when scaled by itself
    small = int(np.argmin([o[0] for o in own]))
    assert (per_run["runs"][small]["breakdown_by_layer_j"]["input"]["conduction"]
            > rep["runs"][small]["breakdown_by_layer_j"]["input"]["conduction"])
