"""The shipped presets: package data (so `pip install .` carries them), usable by name wherever a
config file is accepted, listed by `ttfs presets`."""
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml

from energy.config import EnergyConfig
from hwmodel.config import HardwareConfig
from infra.config import PRESETS_DIR, config_path, load_config, presets
from infra.errors import ConfigError
from training.checkpoint import model_meta, save_model
from training.config import ModelConfig, RunConfig
from ttfs import cmd_demo
from ttfs.cli import main

ROOT = Path(__file__).resolve().parents[1]
CLASSES = {"train": (RunConfig, ""), "hw": (HardwareConfig, "hw"), "energy": (EnergyConfig, "energy")}


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def outside(tmp_path, monkeypatch):
    """Run from a folder outside the checkout: a name can only be a preset there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("presets") / "run"
    rng = np.random.default_rng(0)
    w = [rng.normal(2.5 / 784, 0.05, (784, 6)), rng.normal(0.3, 0.3, (6, 10))]
    save_model(run, w, model_meta(ModelConfig(layers=(784, 6, 10)), "mnist", {"test_accuracy": 0.5}))
    return run


def test_every_kind_has_presets_and_the_demo_defaults_are_presets():
    kinds = {p.kind for p in presets()}
    assert kinds == set(CLASSES)
    assert config_path(cmd_demo.TRAIN_PRESET, "train") == PRESETS_DIR / f"{cmd_demo.TRAIN_PRESET}.yaml"
    assert config_path(cmd_demo.HW_PRESET, "hw") == PRESETS_DIR / "hw" / f"{cmd_demo.HW_PRESET}.yaml"
    assert config_path(cmd_demo.LOW_POWER_PRESET, "hw") == PRESETS_DIR / "hw" / f"{cmd_demo.LOW_POWER_PRESET}.yaml"


@pytest.mark.parametrize("preset", presets(), ids=lambda p: f"{p.kind}-{p.name}")
def test_every_preset_loads_into_its_config_class_by_name(preset, outside):
    cls, section = CLASSES[preset.kind]
    by_name = load_config(preset.name, cls, section=section)
    assert isinstance(by_name, cls) and by_name == load_config(preset.path, cls, section=section)
    assert preset.description and preset.description.endswith(".") and "\n" not in preset.description


def test_configs_in_the_checkout_is_the_presets_folder():
    assert (ROOT / "configs").resolve() == PRESETS_DIR
    assert (ROOT / "configs" / "hw" / "default.yaml").read_bytes() == (PRESETS_DIR / "hw" / "default.yaml").read_bytes()


def test_package_data_covers_every_preset_file():
    """Non-editable installs carry exactly what pyproject's package-data names."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["infra"]
    carried = {p for pattern in data for p in (ROOT / "infra").glob(pattern)}
    files = {p for p in PRESETS_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert files and files == carried, sorted(map(str, files ^ carried))


def test_train_accepts_a_preset_name(outside, capsys):
    sets = ["model.layers=[784, 8, 10]", "data.train_limit=100", "data.test_limit=50", "train.batch_size=50",
            "train.epochs=1"]
    run = outside / "run"
    assert main(["train", "--config", "mnist-784-400-10", "--out", str(run), "--quiet",
                 *[x for s in sets for x in ("--set", s)]]) == 0
    written = yaml.safe_load((run / "config.yaml").read_text())
    expected = load_config(PRESETS_DIR / "mnist-784-400-10.yaml", RunConfig, sets)
    assert written["train"]["lr"] == expected.train.lr and written["train"]["shift_px"] == expected.train.shift_px == 1
    assert written["model"]["layers"] == [784, 8, 10] and written["data"]["dataset"] == "mnist"


def test_map_and_energy_report_accept_preset_names(run_dir, outside):
    design = outside / "design"
    assert main(["map", str(run_dir), "--hw", "default", "--out", str(design)]) == 0
    hw = yaml.safe_load((design / "design.yaml").read_text())["hw"]
    assert hw == load_config(PRESETS_DIR / "hw" / "default.yaml", HardwareConfig, section="hw").to_dict()
    report = outside / "report"
    assert main(["energy-report", str(design), "--hw", "ideal", "--energy", "default", "--limit", "10",
                 "--out", str(report), "--quiet"]) == 0
    energy = json.loads((report / "report.json").read_text())["energy_config"]
    assert energy == load_config(PRESETS_DIR / "energy" / "default.yaml", EnergyConfig, section="energy").to_dict()


def test_an_unknown_name_is_one_line_listing_the_presets_of_its_kind(run_dir, outside, capsys):
    assert main(["map", str(run_dir), "--hw", "defualt", "--out", str(outside / "d")]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("ttfs map: error: defualt: config file not found")
    assert "hw presets: default, ideal, low-power-integrator, low-power, passive" in line and "mnist-784-400-10" not in line
    assert not (outside / "d").exists()
    with pytest.raises(ConfigError, match=r"nope: config file not found, nor a train preset \(train presets: "
                                          r".*mnist-784-400-10"):
        load_config("nope", RunConfig)
    with pytest.raises(ConfigError, match=r"energy presets: default;"):
        load_config("ideal", EnergyConfig, section="energy")        # a preset of another kind is not one
    with pytest.raises(ConfigError, match="not found"):
        load_config(outside / "missing.yaml", HardwareConfig, section="hw")


def test_a_file_wins_over_a_preset_of_the_same_name(outside):
    (outside / "default").write_text("bits: 2\n")
    assert load_config("default", HardwareConfig, section="hw").bits == 2
    assert load_config(PRESETS_DIR / "hw" / "default.yaml", HardwareConfig, section="hw").bits == 4


def test_ttfs_presets_lists_every_preset(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for p in presets():
        assert any(line.split()[:2] == [p.name, p.kind] and line.endswith(p.description) for line in lines), p
    assert str(PRESETS_DIR) in lines[-1]
    assert main(["presets", "--kind", "hw"]) == 0
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()[1:] if line.strip()][:-1]
    assert rows == [["default", "hw"], ["ideal", "hw"], ["low-power-integrator", "hw"], ["low-power", "hw"],
                    ["passive", "hw"]]


def test_the_passive_preset_is_op_amp_free_with_a_few_pf_per_neuron():
    """configs/hw/passive.yaml on a network with the trained MNIST 784-400-10's full scales (99th
    percentile of |w|: 0.539, 0.387): capacitances of a few pF, a threshold far below V_read."""
    from hwmodel.mapping import map_model
    hw = load_config("passive", HardwareConfig, section="hw")
    assert hw.neuron == "passive" and hw.opamp_gain is None and hw.scale_by == "capacitance"
    rng = np.random.default_rng(0)
    w = [rng.uniform(-1, 1, (784, 40)), rng.uniform(-1, 1, (40, 10))]
    w = [x * fs / np.percentile(np.abs(x), 99) for x, fs in zip(w, (0.539, 0.387))]
    design = map_model(w, ModelConfig(layers=(784, 40, 10)), hw.with_(r_wire_row_ohm=0.0, r_wire_col_ohm=0.0))
    assert np.allclose(design.c_mem_f, (1.84e-12, 2.56e-12), rtol=0.01)
    assert all(v == 0.01 and v < hw.v_read_v / 10 for v in design.v_th_v)
