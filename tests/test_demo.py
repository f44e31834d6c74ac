"""The demo's whole chain (train, map, hw-eval, simulate, export, energy) on a tiny setting."""
import json

import numpy
import pytest

from infra.provenance import KEY, provenance
from ttfs.cli import main


def _check(out, sim_images):
    summary = json.loads((out / "summary.json").read_text())
    for name in ("baseline", "m-ssr"):
        s = summary[name]
        assert s["circuit"]["n_ok"] == sim_images and s["circuit"]["n_failed"] == 0
        assert 0.0 <= s["software"]["accuracy"] <= 1.0
        assert s["energy"]["energy_per_inference_j"] > 0
    assert summary["baseline"]["energy"]["savings_pct"] == 0.0
    assert summary[KEY] == provenance() and summary[KEY]["numpy"] == numpy.__version__
    text = (out / "netlists" / "baseline-sample0.cir").read_text()
    assert ".meas tran t_l0_n0" in text and ".end" in text
    assert (out / "report" / "report.md").is_file() and (out / "summary.md").is_file()
    return summary


def test_tiny_demo_runs_the_whole_chain(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--profile", "tiny", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| baseline |" in printed and "energy report" in printed
    _check(tmp_path / "d", 1)
    # a rerun continues: every step's output is already there, and nothing fails
    assert main(["demo", "--out", str(tmp_path / "d"), "--profile", "tiny", "--quiet"]) == 0


@pytest.mark.slow
def test_full_demo(tmp_path):
    assert main(["demo", "--out", str(tmp_path / "d"), "--quiet"]) == 0
    summary = _check(tmp_path / "d", 4)
    assert summary["m-ssr"]["software"]["spikes_per_neuron_mean"] < summary["baseline"]["software"]["spikes_per_neuron_mean"]
    assert summary["baseline"]["software"]["accuracy"] > 0.9
