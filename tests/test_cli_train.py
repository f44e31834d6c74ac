"""The train / eval / spikes commands on a small real subset, as a user types them."""
import json

import numpy as np

from ttfs.cli import main


def test_train_eval_spikes_on_a_small_subset(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", "configs/mnist-784-400-10.yaml", "--out", str(run), "--quiet",
                 "--set", "model.layers=[784, 40, 10]", "--set", "train.epochs=1",
                 "--set", "data.train_limit=1000", "--set", "data.test_limit=200",
                 "--set", "train.batch_size=20"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--limit", "200", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 200 and 0.3 < result["accuracy"] <= 1.0
    assert len(result["spikes_per_neuron"]) == 1
    assert result["spikes_per_neuron_mean"] == result["spikes_per_neuron"][0]
    assert main(["spikes", str(run), "--limit", "5", "--out", str(tmp_path / "s.npz")]) == 0
    z = np.load(tmp_path / "s.npz")
    assert z["input"].shape == (5, 784) and z["layer0"].shape == (5, 40) and z["layer1"].shape == (5, 10)
    assert float(z["v_th"]) == 1.0 and float(z["t_end"]) == 4.0 and z["label"].shape == (5,)
    assert np.all(z["layer0"][np.isfinite(z["layer0"])] <= 4.0)


def test_eval_counts_hidden_neurons_that_never_fire(tmp_path, capsys):
    from training.evaluate import summarize
    inf = np.inf
    layer0 = np.array([[0.5, inf, inf], [inf, inf, 1.0], [2.0, inf, inf]])
    out = np.array([[1.0, 2.0], [2.0, 1.0], [1.0, inf]])
    assert summarize([layer0, out], np.array([0, 1, 0]))["silent_neurons"] == [1]
    # a trained run with two hidden neurons cut off (all input weights negative): both reported
    run = tmp_path / "run"
    assert main(["train", "--config", "configs/mnist-784-400-10.yaml", "--out", str(run), "--quiet",
                 "--set", "model.layers=[784, 20, 10]", "--set", "train.epochs=1",
                 "--set", "data.train_limit=300", "--set", "data.test_limit=100"]) == 0
    with np.load(run / "model.npz") as z:
        w = {k: np.array(z[k]) for k in z.files}
    before = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["silent_neurons"][0]
    w["w0"][:, :2] = -0.01
    np.savez(run / "model.npz", **w)
    capsys.readouterr()
    assert main(["eval", str(run), "--limit", "100", "--json"]) == 0
    silent = json.loads(capsys.readouterr().out)["silent_neurons"]
    assert len(silent) == 1 and 2 <= silent[0] <= before + 2
    assert main(["eval", str(run), "--limit", "100"]) == 0
    assert f"layer0 {silent[0]} of 20" in capsys.readouterr().out


def test_errors_print_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "model.npz: not found" in err and "Traceback" not in err
    assert main(["train", "--config", "configs/mnist-784-400-10.yaml", "--out", str(tmp_path / "r"),
                 "--set", "train.batch_size=0"]) == 2
    assert "train.batch_size: must be >= 1" in capsys.readouterr().err
