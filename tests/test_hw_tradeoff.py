"""`ttfs hw-tradeoff` (hwmodel.tradeoff): sweeps trained for a chip and for ideal neurons evaluated
on that chip, against the commands that evaluate one run at a time (`ttfs map` + `ttfs hw-eval`,
`ttfs eval`), its cache, and its refusals.

Tiny real-data runs: 784-16-10, 300 MNIST training images, the passive preset without wires.
"""
import csv
import json

import pytest

from ttfs.cli import main

TINY = ["--set", "model.layers=[784, 16, 10]", "--set", "data.train_limit=300", "--set", "data.test_limit=100",
        "--set", "train.batch_size=50", "--set", "train.epochs=1", "--quiet"]
NO_WIRES = ["--set", "hw.r_wire_row_ohm=0", "--set", "hw.r_wire_col_ohm=0"]
CHIP = ["--hw", "passive", *NO_WIRES]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    root = tmp_path_factory.mktemp("hwt")
    for name, chip in (("chip", CHIP), ("ideal", [])):
        assert main(["sweep", "--config", "mnist-784-400-10", "--reg", "m-ssr", "--strengths", "0,1e-3",
                     "--out", str(root / name), "--no-plots", *TINY, *chip]) == 0
    return root


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_hw_tradeoff_matches_hw_eval_and_eval_and_reuses_its_cache(sweeps, tmp_path, capsys):
    out = tmp_path / "t"
    args = ["hw-tradeoff", str(sweeps / "chip"), str(sweeps / "ideal"), *CHIP, "--trials", "2", "--limit", "60",
            "--out", str(out)]
    assert main(args) == 0
    assert "this chip" in capsys.readouterr().out
    rows = _rows(out / "hw_tradeoff.csv")
    assert [(r["group"], r["input"], r["trained_for"]) for r in rows] == [
        ("chip", "chip/none", "this chip"), ("chip", "chip/m-ssr_s0.001", "this chip"),
        ("ideal", "ideal/none", "ideal"), ("ideal", "ideal/m-ssr_s0.001", "ideal")]
    assert (out / "hw_tradeoff.png").stat().st_size > 10_000
    for r in rows:                     # each row as the one-run commands give it
        run = sweeps / r["input"]
        design = tmp_path / "d" / r["input"]
        assert main(["map", str(run), *CHIP, "--out", str(design)]) == 0
        capsys.readouterr()
        assert main(["hw-eval", str(design), "--trials", "2", "--limit", "60", "--json"]) == 0
        hw = json.loads(capsys.readouterr().out)
        assert float(r["accuracy"]) == hw["accuracy"] and float(r["accuracy_std"]) == hw["accuracy_std"]
        assert float(r["spikes_per_neuron_mean"]) == hw["spikes_per_neuron_mean"]
        assert main(["hw-eval", str(design), "--limit", "20", "--quiet"]) == 0   # says what its model figure is
        assert ("trained for a chip; its weights on ideal neurons" in capsys.readouterr().out) == (
            r["trained_for"] == "this chip")
        assert main(["eval", str(run), "--limit", "60", "--json"]) == 0
        own = json.loads(capsys.readouterr().out)
        assert own["on_chip"] == (r["trained_for"] == "this chip")
        assert float(r["software_accuracy"]) == own["accuracy"]
        assert float(r["software_spikes_per_neuron_mean"]) == own["spikes_per_neuron_mean"]
    # a rerun reads every point from the cache; another chip count recomputes them
    assert main(args) == 0
    assert capsys.readouterr().out.count("cached") == 4 and _rows(out / "hw_tradeoff.csv") == rows
    assert main(args[:-4] + ["--trials", "1", "--limit", "60", "--out", str(out)]) == 0
    assert "cached" not in capsys.readouterr().out
    # evaluated on a chip other than the one it trained for, the chip-trained sweep says so
    assert main(["hw-tradeoff", str(sweeps / "chip"), "--hw", "passive", "--limit", "30", "--trials", "1",
                 "--out", str(tmp_path / "w"), "--quiet"]) == 0
    assert {r["trained_for"] for r in _rows(tmp_path / "w" / "hw_tradeoff.csv")} == {"another chip"}
    # a design keeps the chip it was mapped onto, and is compared with that one, whatever --hw says
    design = tmp_path / "d" / "chip" / "none"
    assert main(["hw-tradeoff", str(design), "--hw", "default", "--limit", "30", "--trials", "1",
                 "--out", str(tmp_path / "w"), "--quiet"]) == 0
    assert [r["trained_for"] for r in _rows(tmp_path / "w" / "hw_tradeoff.csv")] == ["this chip"]


def test_hw_tradeoff_refuses_bad_inputs(sweeps, tmp_path, capsys):
    assert main(["hw-tradeoff", str(tmp_path), "--hw", "passive", "--out", str(tmp_path / "o")]) == 2
    assert "neither" in capsys.readouterr().err
    fm = tmp_path / "fm"
    assert main(["train", "--config", "fmnist-784-400-10", "--out", str(fm), *TINY]) == 0
    assert main(["hw-tradeoff", str(sweeps / "ideal"), str(fm), "--hw", "passive", "--out", str(tmp_path / "o")]) == 2
    assert "one data set" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["hw-tradeoff", str(sweeps / "ideal"), "--hw", "passive", "--trials", "0", "--out", str(tmp_path / "o")])
    assert "--trials: expected an integer >= 1" in capsys.readouterr().err
