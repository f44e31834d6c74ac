"""The energy model against the source energy ngspice measures on tiny networks (a few seconds)."""
import json

import numpy as np
import pytest

from energy.validate import netlist_circuit, source_elements, validate
from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from training.config import ModelConfig
from ttfs.cli import main


def _design(seed=0, **hw):
    rng = np.random.default_rng(seed)
    model = ModelConfig(layers=(20, 6, 3), t_end=4.0)
    w = [rng.normal(0.15, 0.2, (20, 6)), rng.normal(0.5, 0.4, (6, 3))]
    return map_model(w, model, HardwareConfig(**hw)), rng


@pytest.mark.parametrize("hw", [
    {},                                                             # integrator, dual-rail
    {"scheme": "differential"},
    {"neuron": "passive", "scale_by": "capacitance", "v_th_v": 0.05},
    {"bits": 4, "prog_sigma": 0.05, "comparator_delay_s": 1e-8},   # quantised, varied cells, delayed drivers
    {"opamp_gain": 300.0, "comparator_offset_sigma_v": 0.01},      # leaky integrator, per-neuron offsets
], ids=["integrator", "differential", "passive", "nonideal", "finite-gain"])
def test_model_matches_ngspice_source_energy_within_half_a_percent(hw):
    design, rng = _design(**hw)
    images = rng.integers(0, 256, (3, 20)).astype(np.uint8)
    result = validate(design, images, progress=False)
    assert result["n_images"] == 3
    for p in result["images"]:
        assert p["same_spikes_as_behavioural"]
        assert p["measured_j"] > 0
        # the netlist's rows rise over 1 ns instead of stepping: a relative effect of ~1e-3 at most
        assert abs(p["rel_error"]) < 5e-3, p
        assert abs(p["rel_error_at_circuit_times"]) < 5e-3, p
    for k, err in result["mean_abs_rel_error_by_source"].items():
        assert err < 5e-3, (k, err)          # conduction and capacitor terms each, not just their sum
    kinds = set().union(*(p["measured_by_source_j"] for p in result["images"]))
    assert ("opamp" in kinds) == (design.neuron == "integrator")


def test_every_voltage_source_of_the_netlist_is_accounted_for():
    from netlists.writer import layer_netlist
    design, _ = _design()
    circuit = netlist_circuit(design)
    net = layer_netlist(circuit, 0, np.array([0.0, 1e-6] * 10))
    elems = source_elements(net)
    n_v = sum(1 for line in net.splitlines() if line[:1] in "Vv")
    n_out = 6
    assert sum(1 for e in elems if e[3] == "row") == n_v == 4          # 2 event times x (+, -) rows
    assert sum(1 for e in elems if e[3] == "opamp") == n_out
    assert ("e.xn0_2.eop#branch", "xn0_2.out", "0", "opamp") in elems
    assert ("e.xn0_2.einv#branch", "p0_2", "0", "bookkeeping") in elems   # port mapped to the outer node


def test_energy_validate_json_prints_one_object(tmp_path, capsys):
    rng = np.random.default_rng(1)
    model = ModelConfig(layers=(784, 4, 2), t_end=4.0)
    w = [rng.normal(3.0 / 784, 0.02, (784, 4)), rng.normal(0.6, 0.3, (4, 2))]
    save_design(map_model(w, model, HardwareConfig(), "", "mnist"), tmp_path / "d")
    assert main(["energy-validate", str(tmp_path / "d"), "--limit", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["images"]) == 2 and out["mean_abs_rel_error"] < 5e-3


@pytest.mark.slow
def test_model_matches_ngspice_on_mnist_images_through_a_784_input_network():
    """Ten real test images through a 784-32-10 network on the default hardware without wires."""
    from training.data import load_split
    rng = np.random.default_rng(2)
    model = ModelConfig(layers=(784, 32, 10), t_end=4.0)
    w = [rng.normal(3.0 / 784, 0.03, (784, 32)), rng.normal(0.15, 0.2, (32, 10))]
    hw = {"bits": 4, "prog_sigma": 0.05, "stuck_on_fraction": 0.001, "stuck_off_fraction": 0.001,
          "comparator_offset_sigma_v": 0.002, "comparator_delay_s": 1e-9, "opamp_gain": 1e4}
    design = map_model(w, model, HardwareConfig(**hw), "", "mnist")
    result = validate(design, load_split("mnist", "test", None, 10).images, progress=False)
    assert result["mean_abs_rel_error"] < 2e-3
    for k, err in result["mean_abs_rel_error_by_source"].items():
        assert err < 2e-3, (k, err)
