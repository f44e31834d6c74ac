"""Hardware config validation names the key; bad design folders say what to run."""
import numpy as np
import pytest
import yaml

from hwmodel.config import HardwareConfig
from hwmodel.design import load_design, save_design
from hwmodel.mapping import map_model
from training.config import ModelConfig
from infra.errors import CheckpointError, ConfigError
from infra.config import load_config


@pytest.mark.parametrize("name", ["default", "ideal"])
def test_shipped_configs_load(name):
    hw = load_config(f"configs/hw/{name}.yaml", HardwareConfig, section="hw")
    assert hw.g_max_s > hw.g_min_s
    if name == "ideal":
        assert hw == HardwareConfig()   # the dataclass defaults are the ideal hardware


@pytest.mark.parametrize("override, key", [
    ("g_max_s=1e-7", "hw.g_max_s: must be > hw.g_min_s"),
    ("g_min_s=-1e-6", "hw.g_min_s"),
    ("c_mem_f=-1e-12", "hw.c_mem_f: must be > 0"),
    ("v_th_v=0", "hw.v_th_v"),
    ("time_scale_s=0", "hw.time_scale_s"),
    ("bits=0", "hw.bits"),
    ("prog_sigma=-0.1", "hw.prog_sigma"),
    ("stuck_on_fraction=1.5", "hw.stuck_on_fraction"),
    ("opamp_gain=0.5", "hw.opamp_gain"),
    ("comparator_delay_s=-1e-9", "hw.comparator_delay_s"),
    ("r_wire_row_ohm=-1", "hw.r_wire_row_ohm"),
    ("neuron=lif", "hw.neuron"),
    ("scheme=single", "hw.scheme"),
    ("full_scale_percentile=0", "hw.full_scale_percentile"),
    ("full_scale_weight=-1", "hw.full_scale_weight"),
    ("full_scale_weight=[1.0, 0]", "hw.full_scale_weight"),
    ("full_scale_weight=big", "hw.full_scale_weight"),
    ("c_mem_f=big", "hw.c_mem_f: expected a number"),
    ("g_max=1e-4", "hw.g_max: unknown key"),
])
def test_config_errors_name_the_key(override, key):
    with pytest.raises(ConfigError) as exc:
        load_config("configs/hw/default.yaml", HardwareConfig, [override], section="hw")
    assert key in str(exc.value)


def test_passive_needs_dual_rail_and_a_threshold_below_the_read_voltage():
    with pytest.raises(ConfigError, match="hw.scheme"):
        HardwareConfig(neuron="passive", scheme="differential")
    with pytest.raises(ConfigError, match="hw.v_th_v"):
        HardwareConfig(neuron="passive", scale_by="capacitance", v_th_v=0.3, v_read_v=0.2)


def _design(tmp_path):
    rng = np.random.default_rng(0)
    model = ModelConfig(layers=(784, 5, 3), v_th=1.0, t_in=1.0, t_end=4.0)
    d = map_model([rng.normal(0, 0.1, (784, 5)), rng.normal(0, 0.3, (5, 3))], model, HardwareConfig())
    save_design(d, tmp_path / "d")
    return tmp_path / "d"


def test_design_round_trips(tmp_path):
    path = _design(tmp_path)
    d = load_design(path)
    meta = yaml.safe_load((path / "design.yaml").read_text())
    for key in ("format", "source_run", "dataset", "layers", "t_in_s", "t_end_s", "c_mem_f", "v_th_v",
                "weight_per_siemens", "hw"):
        assert key in meta, key
    for key in ("neuron", "scheme", "time_scale_s", "v_read_v", "g_min_s", "g_max_s", "comparator_offset_v",
                "comparator_delay_s", "opamp_gain", "r_wire_row_ohm", "r_wire_col_ohm"):
        assert key in meta["hw"] and key not in meta, key     # hardware keys once, under hw:
    with np.load(path / "design.npz") as z:
        assert {"g_pos0", "g_neg0", "g_pos1", "g_neg1"} <= set(z.files)
    assert d.hw == HardwareConfig() and d.layers == (784, 5, 3) and d.t_end_s == 4e-6


@pytest.mark.parametrize("damage", ["no-folder", "no-npz", "no-yaml", "format", "missing-array", "bad-yaml"])
def test_bad_design_folder_is_a_checkpoint_error_saying_what_to_run(tmp_path, damage):
    path = _design(tmp_path)
    if damage == "no-folder":
        path = tmp_path / "nothing"
    elif damage == "no-npz":
        (path / "design.npz").unlink()
    elif damage == "no-yaml":
        (path / "design.yaml").unlink()
    elif damage == "format":
        meta = yaml.safe_load((path / "design.yaml").read_text())
        meta["format"] = "something-else"
        (path / "design.yaml").write_text(yaml.safe_dump(meta))
    elif damage == "missing-array":
        with np.load(path / "design.npz") as z:
            arrays = {k: z[k] for k in z.files if k != "g_neg1"}
        np.savez(path / "design.npz", **arrays)
    else:
        (path / "design.yaml").write_text("layers: [784, 5\n")
    with pytest.raises(CheckpointError, match="ttfs map"):
        load_design(path)


def test_fixed_full_scale_round_trips_through_the_design_folder(tmp_path):
    hw = load_config("configs/hw/ideal.yaml", HardwareConfig, ["full_scale_weight=[0.5, 2.0]"], section="hw")
    assert hw.full_scale_weight == (0.5, 2.0)
    rng = np.random.default_rng(0)
    model = ModelConfig(layers=(784, 5, 3))
    d = map_model([rng.normal(0, 0.1, (784, 5)), rng.normal(0, 0.3, (5, 3))], model, hw)
    save_design(d, tmp_path / "d")
    back = load_design(tmp_path / "d")
    assert back.hw == hw and back.full_scale_weight == (0.5, 2.0)
    with pytest.raises(ConfigError, match="hw.full_scale_weight: has 2 values but the network has 3 layers"):
        map_model([rng.normal(0, 0.1, (784, 5)), rng.normal(0, 0.1, (5, 5)), rng.normal(0, 0.1, (5, 3))],
                  ModelConfig(layers=(784, 5, 5, 3)), hw)
