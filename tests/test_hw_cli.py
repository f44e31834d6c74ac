"""`ttfs map`, `ttfs hw-eval` and `ttfs hw-sweep` on a tiny trained run."""
import csv
import json

import numpy as np
import pytest

from hwmodel.design import load_design
from ttfs.cli import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hw-cli") / "run"
    assert main(["train", "--config", "configs/mnist-784-400-10.yaml", "--out", str(out), "--quiet",
                 "--set", "model.layers=[784,30,10]", "--set", "data.train_limit=500",
                 "--set", "data.test_limit=200", "--set", "train.epochs=1"]) == 0
    return out


def test_map_then_hw_eval_json_matches_the_model_for_ideal_hardware(tiny_run, tmp_path, capsys):
    design = tmp_path / "ideal"
    assert main(["map", str(tiny_run), "--hw", "configs/hw/ideal.yaml", "--out", str(design)]) == 0
    assert load_design(design).neuron == "integrator"
    capsys.readouterr()
    assert main(["hw-eval", str(design), "--limit", "150", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "accuracy_std", "spikes_per_neuron_mean", "t_error_max"):
        assert key in r
    assert r["n"] == 150 and r["accuracy"] == r["model_accuracy"] and r["agreement_with_model"] == 1.0
    assert r["t_error_max"] <= 1e-9 * 4e-6 and r["spike_mismatch"] == 0.0
    assert r["spikes_per_neuron_mean"] == pytest.approx(r["model_spikes_per_neuron_mean"], abs=0)


def test_hw_eval_default_hardware_over_trials(tiny_run, tmp_path, capsys):
    design = tmp_path / "default"
    assert main(["map", str(tiny_run), "--hw", "configs/hw/default.yaml", "--out", str(design),
                 "--set", "hw.prog_sigma=0.2"]) == 0
    capsys.readouterr()
    assert main(["hw-eval", str(design), "--limit", "100", "--trials", "3", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["trials"] == 3 and len(r["accuracy_trials"]) == 3
    assert np.isclose(r["accuracy_std"], np.std(r["accuracy_trials"], ddof=1))
    assert r["t_error_max"] > 0 and r["spike_mismatch"] > 0
    assert main(["hw-eval", str(design), "--limit", "50", "--quiet"]) == 0
    assert "accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("param, values", [("bits", ["2", "4,none"]), ("variation", ["0", "0.2"]),
                                           ("offset", ["0", "0.05"]), ("wire", ["0", "50"]),
                                           ("percentile", ["100", "90"])])
def test_hw_sweep_writes_csv_and_png(tiny_run, tmp_path, param, values, capsys):
    out = tmp_path / "sweep"
    assert main(["hw-sweep", str(tiny_run), "--hw", "configs/hw/ideal.yaml", "--param", param, "--values", *values,
                 "--limit", "60", "--out", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader((out / f"sweep-{param}.csv").open()))
    assert len(rows) == (3 if param == "bits" else 2)
    assert all(0 <= float(r["accuracy"]) <= 1 for r in rows)
    assert (out / f"sweep-{param}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if param != "bits":   # the zero point (100th percentile) of an ideal sweep is the trained model
        assert float(rows[0]["accuracy"]) == float(rows[0]["model_accuracy"])
    if param == "percentile":   # clipping the largest 10% of weights changes the network
        assert float(rows[1]["t_error_max"]) > 0


def test_commands_report_bad_input_without_traceback(tiny_run, tmp_path, capsys):
    assert main(["hw-eval", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "ttfs map" in err and "Traceback" not in err
    assert main(["map", str(tiny_run), "--hw", "configs/hw/ideal.yaml", "--out", str(tmp_path / "x"),
                 "--set", "hw.g_max_s=1e-7"]) == 2
    assert "hw.g_max_s" in capsys.readouterr().err
    assert main(["map", str(tiny_run), "--hw", "configs/hw/ideal.yaml", "--out", str(tmp_path / "x"),
                 "--set", "hw.full_scale_percentile=99"]) == 2
    err = capsys.readouterr().err
    assert "layer 0" in err and "hw.clip_weights" in err
    assert main(["hw-sweep", str(tmp_path), "--param", "bits", "--values", "3", "--out", str(tmp_path / "s")]) == 2
    assert "neither a design folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["map", "hw-eval", "hw-sweep"])
def test_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "example:" in capsys.readouterr().out


def test_map_common_scale_with_another_run_gives_one_chip_design(tiny_run, tmp_path, capsys):
    """Two runs mapped with --common-scale-with each other: same per-layer full scale (the larger of the
    two), same thresholds; each design still reproduces its own model on ideal hardware."""
    from training.checkpoint import load_model, save_model
    other = tmp_path / "other"
    run = load_model(tiny_run)
    save_model(other, [1.5 * run.weights[0], run.weights[1]], run.meta)
    for src, dst, peer in ((tiny_run, "a", other), (other, "b", tiny_run)):
        assert main(["map", str(src), "--hw", "configs/hw/ideal.yaml", "--out", str(tmp_path / dst),
                     "--common-scale-with", str(peer)]) == 0
    a, b = load_design(tmp_path / "a"), load_design(tmp_path / "b")
    want = [1.5 * np.abs(run.weights[0]).max(), np.abs(run.weights[1]).max()]
    np.testing.assert_allclose(a.full_scale_weight, want, rtol=1e-12)
    assert a.full_scale_weight == b.full_scale_weight and a.v_th_v == b.v_th_v
    capsys.readouterr()
    assert main(["hw-eval", str(tmp_path / "a"), "--limit", "100", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["agreement_with_model"] == 1.0
    assert main(["map", str(tiny_run), "--hw", "configs/hw/ideal.yaml", "--out", str(tmp_path / "c"),
                 "--set", "hw.full_scale_weight=2.0", "--common-scale-with", str(other)]) == 2
    assert "already set" in capsys.readouterr().err
