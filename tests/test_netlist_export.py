"""The exported standalone netlist runs under plain `ngspice -b` and its .meas firing times
match the runner's layer-by-layer simulation (an independent path: in-circuit comparators,
latches and row drivers instead of PWL sources at measured times; one resistor per cell)."""
import subprocess

import numpy as np
import pytest

from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from netlists.circuit import circuit_from_design
from netlists.ngspice import find_executable, parse_measurements
from hwmodel.behavioural import input_times_s
from netlists.simulate import simulate_network
from training.config import ModelConfig
from training.data import load_split
from ttfs.cli import main

# The comparators' output edges are not breakpoints, so ngspice locates them to about half its
# maximum step (t_end / 1000 by default): allow 0.1% of the window.
TOL_WINDOW = 0.001


def mnist_design(tmp_path, hw_kwargs, sizes=(784, 6, 3), seed=0):
    rng = np.random.default_rng(seed)
    w = [rng.normal(2.0 / 784, 1.0 / np.sqrt(784), (784, sizes[1])),
         rng.normal(2.5 / sizes[1], 0.8 / np.sqrt(sizes[1]), (sizes[1], sizes[2]))]
    design = map_model(w, ModelConfig(layers=sizes), HardwareConfig(**hw_kwargs))
    path = tmp_path / "design"
    save_design(design, path)
    return design, path


def run_ngspice(path):
    out = subprocess.run([find_executable(), "-b", str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return parse_measurements(out.stdout + "\n" + out.stderr), out.stdout


@pytest.mark.parametrize("hw_kwargs", [dict(comparator_delay_s=1e-9, opamp_gain=1e4),
                                       dict(neuron="passive", scale_by="capacitance", v_th_v=0.02)],
                         ids=["integrator", "passive"])
def test_exported_netlist_runs_in_plain_ngspice_and_matches_runner(tmp_path, hw_kwargs):
    design, path = mnist_design(tmp_path, hw_kwargs)
    cir = tmp_path / "net.cir"
    assert main(["export-netlist", str(path), "--sample", "1", "--out", str(cir)]) == 0
    text = cir.read_text()
    assert text.count("\nR0_") == int((design.g_pos[0] > 0).sum() + (design.g_neg[0] > 0).sum())
    assert "source_run" in text or "neuron:" in text
    meas, stdout = run_ngspice(cir)
    images = load_split("mnist", "test", limit=2).images
    sim = simulate_network(circuit_from_design(design), input_times_s(design, images[1:2])[0])
    n_fired = 0
    for l, times in enumerate(sim):
        for i, t in enumerate(times):
            name = f"t_l{l}_n{i}"
            assert name in meas, f"{name} missing from ngspice output"
            if np.isinf(t):
                assert np.isinf(meas[name]), f"{name}: silent in the runner, fires in the netlist"
            else:
                n_fired += 1
                assert abs(meas[name] - t) <= TOL_WINDOW * design.t_end_s, (name, meas[name], t)
    assert n_fired >= 3


def test_export_of_a_layer_range(tmp_path):
    design, path = mnist_design(tmp_path, {})
    cir = tmp_path / "l1.cir"
    assert main(["export-netlist", str(path), "--sample", "0", "--layers", "1:2", "--out", str(cir)]) == 0
    meas, _ = run_ngspice(cir)
    assert sorted(meas) == [f"t_l1_n{i}" for i in range(3)]


def test_export_rejects_bad_layer_range(tmp_path, capsys):
    _, path = mnist_design(tmp_path, {})
    assert main(["export-netlist", str(path), "--layers", "2:1", "--out", str(tmp_path / "x.cir")]) == 2
    assert "--layers" in capsys.readouterr().err
