"""The field's efficiency metrics of `ttfs energy-report` (energy per MAC and per synaptic operation,
TOPS/W-equivalent) against an independent count, and the published anchors beside them."""
import json
from pathlib import Path

import numpy as np
import pytest

import energy.report
from energy.anchors import ANCHORS, OPS_PER_MAC
from energy.config import EnergyConfig
from energy.model import design_energy
from energy.report import build_report, field_metrics, run_stats
from hwmodel.behavioural import input_times_s, layer_times
from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from hwmodel.wire_network import physical_cells
from training.config import ModelConfig
from training.data import load_split
from ttfs.cli import main

MODEL = ModelConfig(layers=(784, 12, 10))


def _weights():
    """Hidden neurons 0-3 get only negative weights, so they never fire: fewer fired rows than neurons."""
    rng = np.random.default_rng(5)
    w0 = rng.normal(2.5 / 784, 0.05, (784, 12))
    w0[:, :4] = -np.abs(w0[:, :4])
    return [w0, rng.normal(0.3, 0.3, (12, 10))]


@pytest.fixture(scope="module")
def data():
    return load_split("mnist", "test", None, 20)


def test_metrics_match_a_count_of_fired_rows_from_the_firing_times(data):
    design = map_model(_weights(), MODEL, HardwareConfig(), "", "mnist")
    result, pred = design_energy(design, EnergyConfig(), data.images, progress=False)
    stats = run_stats("x", design, {}, result, pred, data.labels, 1000.0)
    # the count by hand: rows that switch within the window, from the behavioural firing times
    t_end = design.t_end_s
    t_in = input_times_s(design, data.images)
    hidden = layer_times(design, t_in)[0]
    fired = [float((t_in < t_end).sum(axis=1).mean()), float((hidden < t_end).sum(axis=1).mean())]
    assert fired[1] <= 8 and fired[1] > 0           # the silent neurons drive no synapses
    sops = [fired[0] * 12, fired[1] * 10]
    macs = [784 * 12, 12 * 10]
    assert stats["fired_rows_per_layer"] == pytest.approx(fired, rel=1e-12)
    assert stats["synaptic_ops_per_layer"] == pytest.approx(sops, rel=1e-12)
    assert stats["synaptic_ops_per_inference"] == pytest.approx(sum(sops), rel=1e-12)
    assert stats["macs_per_layer"] == macs and stats["macs_per_inference"] == sum(macs)
    e = stats["energy_per_inference_j"]
    assert e == pytest.approx(sum(stats["breakdown_j"].values()), rel=1e-12)     # the report's total
    assert stats["energy_per_mac_j"] == pytest.approx(e / sum(macs), rel=1e-12)
    assert stats["energy_per_sop_j"] == pytest.approx(e / sum(sops), rel=1e-12)
    assert stats["energy_per_sop_j"] > stats["energy_per_mac_j"]      # fewer synaptic ops than MACs
    # TOPS/W-equivalent: 2 operations per MAC, so it is 2 / (energy per MAC in pJ)
    assert stats["tops_per_w_equivalent"] == pytest.approx(2 * sum(macs) / e / 1e12, rel=1e-12)
    assert stats["tops_per_w_equivalent"] * stats["energy_per_mac_j"] * 1e12 == pytest.approx(OPS_PER_MAC, rel=1e-12)


@pytest.mark.parametrize("scheme", ["dual-rail", "differential"])
def test_cells_per_synapse_is_the_physical_array_over_the_logical_one(scheme, data):
    design = map_model(_weights(), MODEL, HardwareConfig(scheme=scheme), "", "mnist")
    result, _ = design_energy(design, EnergyConfig(), data.images[:3], progress=False)
    chip = design.stored_chip()
    cells = physical_cells(chip.g_pos[0], chip.g_neg[0], scheme).size / chip.g_pos[0].size
    assert field_metrics(design, result)["cells_per_synapse"] == cells


def test_report_md_json_and_summary_show_the_metrics_beside_the_anchors(tmp_path, capsys):
    design = map_model(_weights(), MODEL, HardwareConfig(), "", "mnist")
    save_design(design, tmp_path / "design")
    out = tmp_path / "report"
    capsys.readouterr()
    assert main(["energy-report", str(tmp_path / "design"), "--hw", "configs/hw/ideal.yaml", "--limit", "10",
                 "--out", str(out), "--quiet"]) == 0
    summary = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["format"] == "ttfs-energy-report/6"
    assert report["anchors"] == [a.to_dict() for a in ANCHORS]
    r = report["runs"][0]
    for key in ("energy_per_inference_j", "average_power_w", "edp_js", "delay_s"):   # kept, with their meaning
        assert r[key] > 0
    assert f"{r['tops_per_w_equivalent']:.4g} TOPS/W-equivalent" in summary
    assert f"{r['energy_per_mac_j'] * 1e15:.4g} fJ/MAC" in summary
    assert f"{r['energy_per_sop_j'] * 1e15:.4g} fJ/synaptic op" in summary
    assert all(f"{a.name} {a.figure:g} TOPS/W" in summary for a in ANCHORS)
    md = (out / "report.md").read_text()
    assert "## Against published circuits" in md and f"{OPS_PER_MAC} operations per MAC" in md
    assert "the anchors count operations of their own circuits" in md
    table = md.split("## Against published circuits")[1].split("Caveat")[0]
    ours = next(line for line in table.splitlines() if line.startswith("| design |"))
    assert f"| {r['tops_per_w_equivalent']:.4g} | {r['energy_per_mac_j'] * 1e15:.4g} |" in ours
    for a in ANCHORS:
        row = next(line for line in table.splitlines() if line.startswith(f"| {a.name} |"))
        assert f"| {a.figure:.4g} | {a.energy_per_mac_j * 1e15:.4g} | {a.technology} | {a.precision} |" in row
        assert a.conditions in row and a.citation in md


def test_anchors_say_what_they_are():
    assert {a.figure for a in ANCHORS} == {290.0, 237.7}     # the figures issue 20 cites
    for a in ANCHORS:
        assert a.unit == "TOPS/W" and a.figure > 0
        assert all(getattr(a, f).strip() for f in ("name", "technology", "precision", "conditions", "citation"))
        assert a.energy_per_op_j == pytest.approx(1e-12 / a.figure, rel=1e-12)
        assert a.energy_per_mac_j == pytest.approx(OPS_PER_MAC * 1e-12 / a.figure, rel=1e-12)
    # docs/energy.md's anchors table is this data, word for word
    docs = (Path(__file__).parents[1] / "docs" / "energy.md").read_text()
    for a in ANCHORS:
        assert (f"| {a.name} | {a.figure:g} {a.unit} | {a.technology} | {a.precision} | {a.conditions} | "
                f"{a.citation} |") in docs


def test_a_cache_of_the_previous_format_is_recomputed(tmp_path, monkeypatch):
    design = map_model(_weights(), MODEL, HardwareConfig(), "", "mnist")
    save_design(design, tmp_path / "design")
    out = tmp_path / "report"
    monkeypatch.setattr(energy.report, "FORMAT", "ttfs-energy-report/4")
    build_report([tmp_path / "design"], None, EnergyConfig(), limit=5, out=out, progress=False)
    cache = out / "cache" / "design.json"
    old = json.loads(cache.read_text())
    for key in ("tops_per_w_equivalent", "energy_per_mac_j", "macs_per_inference"):   # as an older format wrote it
        old["stats"].pop(key)
    cache.write_text(json.dumps(old))
    monkeypatch.undo()
    rep = build_report([tmp_path / "design"], None, EnergyConfig(), limit=5, out=out, progress=False)
    assert rep["runs"][0]["tops_per_w_equivalent"] > 0
    new = json.loads(cache.read_text())
    assert new["fingerprint"] != old["fingerprint"]
    assert new["stats"]["tops_per_w_equivalent"] == rep["runs"][0]["tops_per_w_equivalent"]
