"""EnergyConfig: the YAML documents the defaults, and every bad value names its key."""
import pytest

from energy.config import EnergyConfig
from energy.model import check_design
from training.config import ModelConfig
from infra.errors import ConfigError
from infra.config import load_config


def test_default_yaml_holds_exactly_the_dataclass_defaults():
    assert load_config("configs/energy/default.yaml", EnergyConfig, section="energy") == EnergyConfig()


@pytest.mark.parametrize("key, value, message", [
    ("e_comparator_j", -1e-15, "energy.e_comparator_j: must be >= 0"),
    ("p_comparator_static_w", -1.0, "energy.p_comparator_static_w: must be >= 0"),
    ("p_opamp_static_w", -1.0, "energy.p_opamp_static_w: must be >= 0"),
    ("e_row_driver_j", -1.0, "energy.e_row_driver_j: must be >= 0"),
    ("c_wire_per_m_f", -1.0, "energy.c_wire_per_m_f: must be >= 0"),
    ("cell_pitch_m", 0.0, "energy.cell_pitch_m: must be > 0"),
    ("cell_pitch_m", 1.0, "energy.cell_pitch_m: must be < 1e-3"),
    ("conduction_form", "approx", "energy.conduction_form: must be one of exact, spike-count"),
    ("v_swing_v", 0.0, "energy.v_swing_v: must be > 0"),
    ("swing_over_threshold", 0.9, "energy.swing_over_threshold: must be >= 1"),
    ("e_comparator_j", "lots", "energy.e_comparator_j: expected a number"),
    ("e_comp_j", 1.0, "energy.e_comp_j: unknown key"),
])
def test_bad_values_raise_config_error_naming_the_key(tmp_path, key, value, message):
    path = tmp_path / "e.yaml"
    path.write_text(f"{key}: {value!r}\n" if isinstance(value, str) else f"{key}: {value}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path, EnergyConfig, section="energy")
    assert message in str(exc.value)
    assert str(path) in str(exc.value)


def test_a_threshold_above_the_opamp_swing_is_an_error_naming_the_fix():
    import numpy as np
    from hwmodel.config import HardwareConfig
    from hwmodel.mapping import map_model
    w = [np.full((4, 2), 0.3), np.full((2, 1), 0.6)]
    design = map_model(w, ModelConfig(layers=(4, 2, 1)), HardwareConfig())
    top = max(design.v_th_v)
    check_design(design, EnergyConfig(v_swing_v=top * 1.01))
    check_design(design, EnergyConfig(v_swing_v=None))
    with pytest.raises(ConfigError, match=r"energy.v_swing_v: layer \d's threshold .* set energy.v_swing_v above"):
        check_design(design, EnergyConfig(v_swing_v=top * 0.99))
