"""Every number a config or a stage's file holds is finite and in range: NaN and +/-inf are a
ConfigError naming the key (unless the field allows infinity), and a hand-edited design.yaml or
model.yaml with a meaningless value is a CheckpointError naming the file and the key."""
import dataclasses
import math
import types
import typing

import numpy as np
import pytest
import yaml

from energy.config import EnergyConfig
from hwmodel.config import HardwareConfig
from hwmodel.design import load_design
from infra.config import load_config
from infra.errors import CheckpointError, ConfigError
from test_hw_config import _design
from training.checkpoint import load_model, model_meta, save_model
from training.config import ModelConfig, RunConfig
from ttfs.cli import main


def _float_forms(tp) -> list[str]:
    """How a field of type `tp` holds floats: "scalar" (float itself) and/or "list" (tuple of floats)."""
    alts = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    forms = []
    if float in alts:
        forms.append("scalar")
    if any(typing.get_origin(a) is tuple and float in typing.get_args(a) for a in alts):
        forms.append("list")
    return forms


def _float_fields(cls, prefix=""):
    """(dotted key, form, allow_inf) of every float field of `cls` and its nested dataclasses."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _float_fields(hints[f.name], key)
        for form in _float_forms(hints[f.name]):
            yield key, form, f.metadata.get("allow_inf", False)


SECTIONS = {RunConfig: "", HardwareConfig: "hw", EnergyConfig: "energy"}
CASES = [(cls, key, form, allow) for cls in SECTIONS for key, form, allow in _float_fields(cls)]


def test_the_walk_finds_the_float_fields():
    keys = {(c.__name__, k) for c, k, _, _ in CASES}
    for want in [("RunConfig", "train.lr"), ("RunConfig", "model.t_end"), ("RunConfig", "reg.strength"),
                 ("RunConfig", "train.lr_layer_scale"), ("HardwareConfig", "time_scale_s"),
                 ("HardwareConfig", "full_scale_weight"), ("EnergyConfig", "e_comparator_j")]:
        assert want in keys
    assert [(c, k) for c, k, _, allow in CASES if allow] == [(EnergyConfig, "swing_over_threshold")]


def _load(cls, key, form, value):
    raw = f"[1.0, {value}]" if form == "list" else value
    return load_config(None, cls, [f"{key}={raw}"], section=SECTIONS[cls])


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
@pytest.mark.parametrize("cls, key, form, allow_inf", CASES,
                         ids=[f"{c.__name__}.{k}.{f}" for c, k, f, _ in CASES])
def test_non_finite_floats_are_errors_naming_the_key(cls, key, form, allow_inf, value):
    full = f"{SECTIONS[cls]}.{key}" if SECTIONS[cls] else key
    item = f"{full}[1]" if form == "list" else full
    if allow_inf and value == ".inf":
        assert math.isinf(getattr(_load(cls, key, form, value), key))
        return
    with pytest.raises(ConfigError) as exc:
        _load(cls, key, form, value)
    msg = str(exc.value)
    assert "\n" not in msg
    if allow_inf:   # nan is no number; -inf fails the field's own range
        assert msg.startswith(f"{item}: must be")
    else:
        assert msg.startswith(f"{item}: must be a finite number (got ")


@pytest.mark.parametrize("text", ["1e400", "'nan'", "'inf'", ".NaN", "-.Inf", "1" + "0" * 400, "[1e-3, 1e400]"])
def test_every_yaml_spelling_of_infinity_is_caught(tmp_path, text):
    path = tmp_path / "c.yaml"
    key = "lr_layer_scale" if text.startswith("[") else "lr"
    path.write_text(f"train:\n  {key}: {text}\n")
    with pytest.raises(ConfigError, match=rf"c\.yaml: train\.{key}(\[1\])?: must be a finite number"):
        load_config(path, RunConfig)


def test_inf_allowed_field_and_ordinary_values_still_load(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("swing_over_threshold: .inf\ne_comparator_j: 1e-14\n")
    cfg = load_config(path, EnergyConfig, section="energy")
    assert math.isinf(cfg.swing_over_threshold) and cfg.swing_v(0.5) is None and cfg.e_comparator_j == 1e-14
    assert load_config(None, RunConfig, ["train.lr=1e-3", "reg.strength=[0.5]"]).train.lr == 1e-3


def test_negative_seed_is_an_error():
    with pytest.raises(ConfigError, match=r"^seed: must be >= 0"):
        load_config(None, RunConfig, ["seed=-1"])


def test_hardware_rebuilt_from_a_dict_or_changed_goes_through_the_loader():
    with pytest.raises(ConfigError, match=r"^hw\.g_max_s: must be a finite number"):
        HardwareConfig.from_dict({**HardwareConfig().to_dict(), "g_max_s": math.inf})
    with pytest.raises(ConfigError, match=r"^hw\.prog_sigma: must be a finite number"):   # a hw-sweep value
        HardwareConfig().with_(prog_sigma=math.inf)
    with pytest.raises(ConfigError, match=r"^hw\.g_max: unknown key"):
        HardwareConfig.from_dict({"g_max": 1e-4})
    hw = HardwareConfig().with_(full_scale_weight=(0.5, 2.0), bits=4)
    assert hw.full_scale_weight == (0.5, 2.0) and HardwareConfig.from_dict(hw.to_dict()) == hw


# -- the command line: one line, exit 2, nothing written --------------------------------------------------

def _one_error_line(capsys, command, text):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ttfs {command}: error: ") and text in err, err


@pytest.mark.parametrize("override, text", [("train.lr=.inf", "train.lr: must be a finite number"),
                                            ("model.t_end=.inf", "model.t_end: must be a finite number")])
def test_train_with_an_infinite_value_exits_2_and_writes_no_run(tmp_path, capsys, override, text):
    out = tmp_path / "run"
    small = ["model.layers=[784, 5, 10]", "train.epochs=1", "data.train_limit=50", "data.test_limit=20"]
    assert main(["train", "--config", "configs/mnist-784-400-10.yaml", "--out", str(out), "--quiet",
                 *[a for s in small + [override] for a in ("--set", s)]]) == 2
    _one_error_line(capsys, "train", text)
    assert not out.exists()


@pytest.fixture
def tiny_run(tmp_path):
    """A run folder with random weights (no training needed to map it)."""
    rng = np.random.default_rng(0)
    model = ModelConfig(layers=(784, 5, 3))
    run = tmp_path / "run"
    save_model(run, [rng.normal(0, 0.1, (784, 5)), rng.normal(0, 0.3, (5, 3))], model_meta(model, "mnist", {}))
    return run


@pytest.mark.parametrize("override", ["time_scale_s=.inf", "g_max_s=.inf", "c_mem_f=.nan"])
def test_map_with_an_infinite_value_exits_2(tiny_run, tmp_path, capsys, override):
    assert main(["map", str(tiny_run), "--hw", "configs/hw/ideal.yaml", "--out", str(tmp_path / "ok")]) == 0
    capsys.readouterr()
    out = tmp_path / "d"
    assert main(["map", str(tiny_run), "--hw", "configs/hw/ideal.yaml", "--out", str(out), "--set", "hw." + override]) == 2
    _one_error_line(capsys, "map", f"hw.{override.split('=')[0]}: must be a finite number")
    assert not out.exists()


@pytest.mark.parametrize("override", ["g_max_s=1e308"])
def test_map_refuses_a_design_it_could_not_read_back(tiny_run, tmp_path, capsys, override):
    """Finite but absurd hardware values can map to an infinite threshold or window: map checks the
    design as load_design would before writing it, so no folder appears."""
    out = tmp_path / "d"
    assert main(["map", str(tiny_run), "--hw", "configs/hw/ideal.yaml", "--out", str(out), "--set", "hw." + override]) == 2
    _one_error_line(capsys, "map", "the mapped design is not usable")
    assert not out.exists()


def test_energy_report_with_an_infinite_constant_exits_2(tiny_run, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["energy-report", str(tiny_run), "--hw", "configs/hw/ideal.yaml", "--out", str(out), "--quiet",
                 "--set", "energy.e_comparator_j=.inf"]) == 2
    _one_error_line(capsys, "energy-report", "energy.e_comparator_j: must be a finite number")
    assert not out.exists()


# -- design.yaml and model.yaml as other stages read them -------------------------------------------------

def _edit_yaml(path, change):
    meta = yaml.safe_load(path.read_text())
    change(meta)
    path.write_text(yaml.safe_dump(meta))


DESIGN_DAMAGE = {
    "negative c_mem_f": (lambda m: m.update(c_mem_f=[-1e-10, 1e-10]), "c_mem_f: must be > 0"),
    "negative g_min_s": (lambda m: m.update(g_min_s=-1e-6), "g_min_s: must be >= 0"),
    "zero t_end_s": (lambda m: m.update(t_end_s=0), "t_end_s: must be > 0"),
    "t_end_s before t_in_s": (lambda m: m.update(t_end_s=5e-7), "t_end_s: must be > t_in_s"),
    "unknown neuron": (lambda m: m.update(neuron="memristor"), "neuron: must be one of integrator, passive"),
    "unknown scheme": (lambda m: m.update(scheme="single"), "scheme: must be one of dual-rail, differential"),
    "infinite hw.time_scale_s": (lambda m: m["hw"].update(time_scale_s=math.inf),
                                 "hw.time_scale_s: must be a finite number"),
    "negative hw.c_mem_f": (lambda m: m["hw"].update(c_mem_f=-1e-10), "hw.c_mem_f: must be > 0"),
    "infinite v_th_v": (lambda m: m.update(v_th_v=[math.inf, 1.0]), "v_th_v[0]: must be a finite number"),
    "nan weight_per_siemens": (lambda m: m.update(weight_per_siemens=[1e4, math.nan]),
                               "weight_per_siemens[1]: must be a finite number"),
    "one value too few": (lambda m: m.update(v_th_v=[1.0]), "v_th_v: has 1 values for 2 layers"),
    "layer size 0": (lambda m: m.update(layers=[784, 0, 3]), "layers: must be at least two positive"),
    "layers not a list": (lambda m: m.update(layers=5), "layers: expected a list"),
    "copy differs from hw": (lambda m: m.update(time_scale_s=2e-6), "time_scale_s: is 2e-06 but hw.time_scale_s"),
    "g_max_s differs from hw": (lambda m: m.update(g_max_s=1.0), "g_max_s: is 1.0 but hw.g_max_s"),
    "window differs from model": (lambda m: m["model"].update(t_end=5.0), "t_end_s: is 4e-06 but model.t_end"),
    "infinite model.t_end": (lambda m: m["model"].update(t_end=math.inf), "model.t_end: must be a finite number"),
    "no hw section": (lambda m: m.pop("hw"), "hw: required but missing"),
    "no model section": (lambda m: m.pop("model"), "model: expected a mapping"),
    "unknown dataset": (lambda m: m.update(dataset="cifar"), "dataset: must be one of mnist, fmnist"),
}


def test_an_intact_design_loads(tmp_path):
    assert load_design(_design(tmp_path)).t_end_s == 4e-6


@pytest.mark.parametrize("damage", list(DESIGN_DAMAGE))
def test_hand_edited_design_yaml_is_an_error_naming_the_key(tmp_path, capsys, damage):
    change, text = DESIGN_DAMAGE[damage]
    path = _design(tmp_path)
    _edit_yaml(path / "design.yaml", change)
    with pytest.raises(CheckpointError) as exc:
        load_design(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path / 'design.yaml'}: {text}") and "\n" not in msg, msg
    netlist = tmp_path / "x.cir"
    assert main(["export-netlist", str(path), "--out", str(netlist)]) == 2
    _one_error_line(capsys, "export-netlist", text)
    assert not netlist.exists()


@pytest.mark.parametrize("array, value", [("g_pos0", -1e-6), ("g_neg_nominal1", -1e-9), ("g_neg1", np.inf)])
def test_bad_conductances_in_design_npz_are_errors(tmp_path, array, value):
    path = _design(tmp_path)
    with np.load(path / "design.npz") as z:
        arrays = {k: np.array(z[k]) for k in z.files}
    arrays[array][0, 0] = value
    np.savez(path / "design.npz", **arrays)
    with pytest.raises(CheckpointError, match=rf"design\.npz: {array} holds (conductances from|NaN or inf)"):
        load_design(path)


MODEL_DAMAGE = {
    "infinite t_end": (lambda m: m.update(t_end=math.inf), "model.t_end: must be a finite number"),
    "negative v_th": (lambda m: m.update(v_th=-1), "model.v_th: must be > 0"),
    "nan v_th": (lambda m: m.update(v_th="nan"), "model.v_th: must be a finite number"),
    "t_end before t_in": (lambda m: m.update(t_end=0.5), "model.t_end: must be > model.t_in"),
    "zero t_in": (lambda m: m.update(t_in=0.0), "model.t_in: must be > 0"),
    "layer size 0": (lambda m: m.update(layers=[784, 0, 3]), "model.layers: sizes must be positive integers"),
    "layers not a list": (lambda m: m.update(layers=5), "model.layers: expected a list"),
    "missing v_th": (lambda m: m.pop("v_th"), "v_th: required but missing"),
}


@pytest.mark.parametrize("damage", list(MODEL_DAMAGE))
def test_hand_edited_model_yaml_is_an_error_naming_the_key(tiny_run, damage):
    assert load_model(tiny_run).model.layers == (784, 5, 3)
    change, text = MODEL_DAMAGE[damage]
    _edit_yaml(tiny_run / "model.yaml", change)
    with pytest.raises(CheckpointError) as exc:
        load_model(tiny_run)
    assert str(exc.value).startswith(f"{tiny_run / 'model.yaml'}: bad model constants ({text}")


def test_model_yaml_input_width_need_not_be_784(tmp_path):
    model = ModelConfig(layers=(4, 3, 2))
    save_model(tmp_path, [np.zeros((4, 3)), np.zeros((3, 2))], model_meta(model, "mnist", {}))
    assert load_model(tmp_path).model == model
