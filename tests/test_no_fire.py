"""A network in which no output neuron fires makes no decision (training.network.predict gives -1),
which counts as wrong in eval, hw-eval, the behavioural model, the energy report and simulate,
even on images of class 0 (argmin over all-inf times would say class 0)."""
import json

import numpy as np
import pytest

import netlists.runner as runner
from energy.config import EnergyConfig
from energy.model import design_energy
from hwmodel.behavioural import evaluate as hw_evaluate
from hwmodel.config import HardwareConfig
from hwmodel.design import load_design
from hwmodel.mapping import map_model
from idx_files import real_test_subset
from training.checkpoint import model_meta, save_model
from training.config import ModelConfig
from training.data import load_split
from training.network import NO_DECISION, predict
from ttfs.cli import main

MODEL = ModelConfig(layers=(784, 8, 10))
INF = np.inf


@pytest.fixture(scope="module")
def silent(tmp_path_factory):
    """A run whose output weights are all zero (its hidden layer fires), its ideal design, and a data
    folder of class-0 test images only."""
    root = tmp_path_factory.mktemp("no-fire")
    rng = np.random.default_rng(0)
    w = [rng.normal(2.0 / 784, 1.0 / 28, (784, 8)), np.zeros((8, 10))]
    save_model(root / "run", w, model_meta(MODEL, "mnist", {}))
    assert main(["map", str(root / "run"), "--hw", "configs/hw/ideal.yaml", "--out", str(root / "design")]) == 0
    data = real_test_subset(root / "zeros", 30, label=0)
    assert set(load_split("mnist", "test", data_dir=data).labels.tolist()) == {0}
    return root / "run", root / "design", data


def test_predict_is_the_first_output_to_fire_or_no_decision():
    t = np.array([[INF, INF, INF], [3.0, 1.0, 2.0], [INF, 2.5, INF], [1.0, INF, 1.0]])
    assert predict(t).tolist() == [NO_DECISION, 1, 1, 0]
    assert NO_DECISION not in range(10)


def test_eval_counts_a_silent_output_layer_wrong(silent, capsys):
    run, _, data = silent
    capsys.readouterr()
    assert main(["eval", str(run), "--json", "--data-dir", str(data)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n"] == 30 and r["output_spikes_per_neuron"] == 0.0 and r["spikes_per_neuron"][0] > 0
    assert r["accuracy"] == 0.0


def test_hw_eval_and_the_behavioural_model_count_it_wrong(silent, capsys):
    _, design, data = silent
    capsys.readouterr()
    assert main(["hw-eval", str(design), "--json", "--data-dir", str(data)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["output_spikes_per_neuron"] == 0.0 and r["accuracy"] == 0.0 and r["model_accuracy"] == 0.0
    # a non-ideal chip (variation, read noise) over two trials: still silent, still wrong
    d = load_design(design)
    noisy = map_model(d.weights, d.model, HardwareConfig(prog_sigma=0.1, read_noise_rel=0.02))
    test = load_split("mnist", "test", data_dir=data)
    r = hw_evaluate(noisy, test.images, test.labels, trials=2, progress=False)
    assert r["output_spikes_per_neuron"] == 0.0 and r["accuracy_trials"] == [0.0, 0.0]
    assert r["agreement_with_model"] == 1.0          # both make no decision


def test_the_energy_report_counts_it_wrong(silent, tmp_path):
    _, design, data = silent
    test = load_split("mnist", "test", data_dir=data)
    result, pred = design_energy(load_design(design), EnergyConfig(), test.images, progress=False)
    assert (pred == NO_DECISION).all() and not result.output_fired.any()
    assert main(["energy-report", str(design), "--hw", "configs/hw/ideal.yaml", "--out", str(tmp_path / "r"),
                 "--data-dir", str(data), "--quiet"]) == 0
    assert json.loads((tmp_path / "r" / "report.json").read_text())["runs"][0]["accuracy"] == 0.0


def test_simulate_records_count_it_wrong():
    """The records `ttfs simulate` writes, from circuit and behavioural times where no output fires."""
    hidden = np.array([1e-6, INF, 2e-6])
    silent_out = np.full(10, INF)
    sim = {"status": "ok", "times": [hidden.tolist(), silent_out.tolist()], "retried": False, "errors": [],
           "seconds": 0.1, "cpu_seconds": 0.1}
    rec = runner.compare(0, 0, sim, [hidden, silent_out], 4e-6)
    assert rec["prediction"] == NO_DECISION == rec["behavioural_prediction"]
    assert rec["correct"] is False and rec["agree"] is True
    s = runner.summarize([rec], 4e-6)
    assert s["circuit_accuracy"] == 0.0 and s["behavioural_accuracy"] == 0.0
    fired = silent_out.copy()
    fired[3] = 3e-6
    assert runner.compare(0, 3, {**sim, "times": [hidden.tolist(), fired.tolist()]}, [hidden, fired],
                          4e-6)["correct"] is True
