"""A network whose input width does not match the 28x28 images, or whose arrays do not chain, is a
one-line error (exit 2) at every command, before a numba kernel can read past an array."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from energy.config import EnergyConfig
from energy.model import EnergyCircuit, energy_per_image
from hwmodel.behavioural import input_times_s, layer_times
from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from infra.errors import CheckpointError, DataError
from infra.shapes import check_chain, check_shape
from training import network
from training.checkpoint import model_meta, save_model
from training.config import ModelConfig
from training.data import load_split
from ttfs.cli import main

REPO = Path(__file__).resolve().parents[1]
WIDTHS = (1, 700, 785)


def _weights(n_in, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(2.0 / n_in, 1.0 / np.sqrt(n_in), (n_in, 8)), rng.normal(0.3, 0.3, (8, 10))]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Per input width: a run folder and a design mapped from it (made directly: `ttfs map` refuses)."""
    root = tmp_path_factory.mktemp("shapes")
    out = {}
    for n in WIDTHS + (784,):
        model = ModelConfig(layers=(n, 8, 10))
        w = _weights(n)
        save_model(root / f"run{n}", w, model_meta(model, "mnist", {}))
        save_design(map_model(w, model, HardwareConfig(), str(root / f"run{n}"), "mnist"), root / f"design{n}")
        out[n] = (root / f"run{n}", root / f"design{n}")
    return out


def _one_line_error(capsys, command):
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ttfs {command}: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_check_shape_and_check_chain_name_what_did_not_match():
    check_shape("x", np.zeros((3, 4)), (None, 4))
    with pytest.raises(DataError, match=r"^x has shape \(3, 5\), expected \(any, 4\); fix it$"):
        check_shape("x", np.zeros((3, 5)), (None, 4), "fix it")
    with pytest.raises(CheckpointError, match=r"^labels has shape \(2, 1\), expected \(2,\)$"):
        check_shape("labels", np.zeros((2, 1)), (2,), error=CheckpointError)
    check_chain("m", [(4, 3), (3, 2)], 4, "the data have 4 columns")
    with pytest.raises(CheckpointError, match=r"^m: w0 expects 5 inputs but the data have 4 columns; h$"):
        check_chain("m", [(5, 3)], 4, "the data have 4 columns", "h")
    with pytest.raises(CheckpointError, match=r"^m: g1 expects 2 inputs but g0 has 3 outputs$"):
        check_chain("m", [(4, 3), (2, 2)], 4, "x", name="g")
    with pytest.raises(CheckpointError, match=r"m: w0 has shape \(4,\), expected \(n_in, n_out\)"):
        check_chain("m", [(4,)], 4, "x")


@pytest.mark.parametrize("n_in", WIDTHS)
@pytest.mark.parametrize("command", ["eval", "spikes", "map"])
def test_run_commands_refuse_a_model_of_the_wrong_input_width(folders, tmp_path, capsys, n_in, command):
    run = folders[n_in][0]
    extra = {"eval": ["--limit", "5"], "spikes": ["--limit", "5", "--out", str(tmp_path / "s.npz")],
             "map": ["--hw", "configs/hw/ideal.yaml", "--out", str(tmp_path / "d")]}[command]
    assert main([command, str(run), *extra]) == 2
    err = _one_line_error(capsys, command)
    assert f"{run / 'model.npz'}: w0 expects {n_in} inputs but the mnist images have 784 pixels" in err
    assert "28x28" in err
    assert not (tmp_path / "s.npz").exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("n_in", WIDTHS)
def test_hw_eval_refuses_a_design_of_the_wrong_input_width(folders, capsys, n_in):
    design = folders[n_in][1]
    assert main(["hw-eval", str(design), "--limit", "5"]) == 2
    assert f"{design / 'design.npz'}: w0 expects {n_in} inputs but the mnist images have 784" in \
        _one_line_error(capsys, "hw-eval")


@pytest.mark.parametrize("command", ["hw-sweep", "export-netlist", "simulate", "energy-validate", "energy-report",
                                     "plot"])
def test_every_other_command_refuses_a_700_input_network(folders, tmp_path, capsys, command):
    run, design = folders[700]
    out = str(tmp_path / "out")
    argv = {"hw-sweep": ["hw-sweep", str(design), "--param", "bits", "--values", "4", "--limit", "5", "--out", out],
            "export-netlist": ["export-netlist", str(design), "--out", out],
            "simulate": ["simulate", str(design), "--limit", "1", "--out", out, "--quiet"],
            "energy-validate": ["energy-validate", str(design), "--limit", "1"],
            "energy-report": ["energy-report", str(run), "--hw", "configs/hw/ideal.yaml", "--limit", "5",
                              "--out", out, "--quiet"],
            "plot": ["plot", str(run), "--out", out]}[command]
    assert main(argv) == 2
    err = _one_line_error(capsys, command)
    assert "w0 expects 700 inputs but the mnist images have 784 pixels" in err


def test_a_segfault_would_show_in_a_subprocess(folders):
    """Run as a user does: a crash in a kernel would be a negative return code, not 2."""
    for argv in (["eval", str(folders[700][0]), "--limit", "20"], ["hw-eval", str(folders[785][1]), "--limit", "20"]):
        proc = subprocess.run([sys.executable, "-m", "ttfs.cli", *argv], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "inputs but the mnist images have 784 pixels" in proc.stderr


def test_a_design_whose_arrays_do_not_chain_is_an_error(folders, tmp_path, capsys):
    design = tmp_path / "design"
    src = folders[784][1]
    design.mkdir()
    (design / "design.yaml").write_text((src / "design.yaml").read_text())
    with np.load(src / "design.npz") as z:
        arrays = {k: np.array(z[k]) for k in z.files}
    for name in ("g_pos1", "g_neg1", "g_pos_nominal1", "g_neg_nominal1", "w1"):
        arrays[name] = arrays[name][:7]            # layer 1 takes 7 inputs, layer 0 gives 8
    np.savez(design / "design.npz", **arrays)
    assert main(["hw-eval", str(design), "--limit", "5"]) == 2
    assert "g_pos1 has shape (7, 10), expected (8, 10)" in _one_line_error(capsys, "hw-eval")


def test_train_refuses_layers_that_do_not_fit_the_data_before_writing(tmp_path, capsys):
    for layers, match in (("[700, 8, 10]", "model.layers: the first size must be 784"),
                          ("[784, 8, 5]", "model.layers: the output layer has 5 neurons but mnist has 10 classes")):
        out = tmp_path / "run"
        assert main(["train", "--config", "configs/mnist-784-400-10.yaml", "--out", str(out), "--quiet",
                     "--set", f"model.layers={layers}", "--set", "train.epochs=1"]) == 2
        assert match in _one_line_error(capsys, "train")
        assert not out.exists()


def test_kernel_wrappers_check_their_inputs_themselves(folders):
    """Library callers that skip the command-level checks still get an error, not an out-of-bounds read."""
    from hwmodel.design import load_design
    t784 = np.zeros((3, 784))
    with pytest.raises(CheckpointError, match="weights: w0 expects 700 inputs but the input spike times have 784"):
        network.forward(_weights(700), t784, ModelConfig(layers=(700, 8, 10)))
    w = _weights(784)
    with pytest.raises(CheckpointError, match="w1 expects 7 inputs but w0 has 8 outputs"):
        network.forward([w[0], w[1][:7]], t784, ModelConfig(layers=(784, 8, 10)), backend="numpy")
    with pytest.raises(DataError, match="input spike times has shape"):
        network.forward(w, np.zeros(784), ModelConfig(layers=(784, 8, 10)))
    design = load_design(folders[784][1])
    with pytest.raises(CheckpointError, match=r"input spike times has shape \(3, 700\), expected \(any, 784\)"):
        layer_times(design, np.zeros((3, 700)))
    images = load_split("mnist", "test", limit=3).images
    t_in = input_times_s(design, images)
    times = layer_times(design, t_in)
    circ = EnergyCircuit.from_design(design)
    energy_per_image(circ, EnergyConfig(), t_in, times)         # consistent: runs
    with pytest.raises(CheckpointError, match="energy circuit: g_pos0 expects 784 inputs but the input spike "
                                              "times have 700"):
        energy_per_image(circ, EnergyConfig(), t_in[:, :700], times)
    with pytest.raises(CheckpointError, match=r"layer_times_s\[0\] has shape \(3, 7\), expected \(3, 8\)"):
        energy_per_image(circ, EnergyConfig(), t_in, [times[0][:, :7], times[1]])


def test_labels_must_match_the_images(folders):
    from hwmodel.behavioural import evaluate as hw_evaluate
    from hwmodel.design import load_design
    from training.evaluate import summarize
    with pytest.raises(DataError, match=r"labels has shape \(2,\), expected \(3,\)"):
        summarize([np.zeros((3, 8)), np.zeros((3, 10))], np.zeros(2, np.int64))
    images = load_split("mnist", "test", limit=3).images
    with pytest.raises(DataError, match=r"labels has shape \(4,\), expected \(3,\)"):
        hw_evaluate(load_design(folders[784][1]), images, np.zeros(4, np.int64), progress=False)
