"""Each shared idea is defined once (docs/architecture.md): the checks here fail when a second copy
reappears, and test the one copy's behaviour (design.yaml written once, older files still load,
folder kinds, atomic PNGs and CSV tables)."""
from __future__ import annotations

import ast
import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

import energy.plots
import training.plots
from energy.model import EnergyCircuit
from hwmodel import config as hw_config
from hwmodel.config import HardwareConfig
from hwmodel.design import HW_COPIES, load_design, save_design
from hwmodel.mapping import map_model
from hwmodel.sources import expect_kind, folder_kind
from infra import atomic_io
from infra.errors import CheckpointError, ConfigError
from netlists.circuit import make_circuit
from training.config import REG_KINDS, ModelConfig

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("infra", "training", "hwmodel", "netlists", "energy", "ttfs")


def _modules():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            yield path.relative_to(REPO).as_posix(), path.read_text()


def _where(pattern: str) -> set[str]:
    """Modules whose source matches the regular expression."""
    return {name for name, text in _modules() if re.search(pattern, text)}


# -- the circuit vocabulary -----------------------------------------------------------------------------

def _string_sets(text: str):
    """The string constants of every tuple, list and set literal of a module (a dict keyed by circuit,
    e.g. the netlist writer's subcircuit per neuron, is a kernel table, not a list of choices)."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            yield {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}


def test_the_neuron_and_scheme_names_are_listed_in_hwmodel_config_only():
    lists = {name for name, text in _modules() for names in _string_sets(text)
             if {"integrator", "passive"} <= names or {"dual-rail", "differential"} <= names}
    assert lists == {"hwmodel/config.py"}


def test_a_neuron_added_to_the_vocabulary_is_accepted_by_every_stage(monkeypatch):
    g = [np.full((3, 2), 1e-5)]
    with pytest.raises(ConfigError, match="neuron: must be one of integrator, passive"):
        make_circuit(g, g, 1e-10, 0.5, neuron="memristor")
    monkeypatch.setitem(hw_config.NEURON_SCHEMES, "memristor", ("dual-rail",))
    assert make_circuit(g, g, 1e-10, 0.5, neuron="memristor").neuron == "memristor"
    assert EnergyCircuit("memristor", "dual-rail", 0.2, 4e-6, (1e-10,), g, g).neuron == "memristor"
    assert HardwareConfig(neuron="memristor").neuron == "memristor"
    for build in (lambda: make_circuit(g, g, 1e-10, 0.5, neuron="memristor", scheme="differential"),
                  lambda: EnergyCircuit("memristor", "differential", 0.2, 4e-6, (1e-10,), g, g)):
        with pytest.raises(ConfigError, match="scheme: the memristor neuron is modelled for dual-rail only"):
            build()


# -- input spike times, one ngspice layer run, folder kinds, common scale, writers -----------------------

def test_only_hwmodel_turns_pixels_into_input_times_for_a_design():
    assert _where(r"\bencode_pixels\b") <= {"training/encoding.py", "training/trainer.py", "training/evaluate.py",
                                           "hwmodel/behavioural.py", "ttfs/cmd_netlist.py"}
    # ttfs/cmd_netlist.py names it in the netlist's header text only
    assert not any(isinstance(n, (ast.Name, ast.alias)) and getattr(n, "id", getattr(n, "name", "")) == "encode_pixels"
                   for n in ast.walk(ast.parse((REPO / "ttfs/cmd_netlist.py").read_text())))


def test_only_netlists_simulate_runs_a_layer_in_ngspice():
    assert _where(r"\blayer_netlist\(") == {"netlists/writer.py", "netlists/simulate.py"}
    assert _where(r"\bsession\(\)\.run\(") == {"netlists/simulate.py"}


def test_energy_validate_measures_a_layer_through_simulate_layer(monkeypatch):
    """measure_layer asks simulate_layer for every vector and adds the source energy of each tile."""
    import netlists.simulate
    from energy.validate import measure_layer
    netlist = "Vd0_0 r0 0 0.2\n"
    tile = {"time": np.array([0.0, 1.0, 2.0]), "r0": np.full(3, 0.2), "vd0_0#branch": np.full(3, -1e-3)}
    calls = []

    def fake(circuit, l, t_rows_s, settings, save="potentials", on_tile=None, **known_times):
        calls.append(save)
        on_tile(netlist, tile)
        on_tile(netlist, tile)
        return np.array([1.5])

    monkeypatch.setattr(netlists.simulate, "simulate_layer", fake)
    times, energy = measure_layer(None, 0, np.zeros(1))
    assert calls == ["all"] and times.tolist() == [1.5]
    assert energy == {"row": pytest.approx(2 * 0.2 * 1e-3 * 2.0, rel=1e-12)}


def test_folder_kinds_are_told_in_one_place():
    assert not _where(r"\"(model|design)\.(yaml|npz)\"\)\.is_file\(\)")      # hwmodel.sources asks for them
    assert _where(r"\bcommon_full_scale\(") == {"hwmodel/mapping.py"}


def test_one_writer_for_csv_and_png_and_one_yaml_parser():
    assert _where(r"\bcsv\.(DictWriter|writer)\(") == {"infra/atomic_io.py"}
    assert _where(r"\.savefig\(") == {"infra/atomic_io.py"}
    assert _where(r"\byaml\.safe_load\(") <= {"infra/atomic_io.py", "infra/config.py"}


def test_one_colour_table_per_regulariser():
    assert energy.plots.KIND_STYLE is training.plots.KIND_STYLE
    assert set(training.plots.KIND_STYLE) == set(REG_KINDS) | {"energy"}     # "energy": training.plots.style_key


# -- design.yaml: each hardware key once ------------------------------------------------------------------

def _design(tmp_path, **hw):
    rng = np.random.default_rng(1)
    model = ModelConfig(layers=(784, 4, 3))
    hw = HardwareConfig(bits=6, prog_sigma=0.02, comparator_offset_v=0.01, opamp_gain=1e5, **hw)
    save_design(map_model([rng.normal(0, 0.1, (784, 4)), rng.normal(0, 0.3, (4, 3))], model, hw), tmp_path / "d")
    return tmp_path / "d", hw


def test_a_new_design_yaml_holds_each_hardware_key_once_under_hw(tmp_path):
    path, hw = _design(tmp_path)
    meta = yaml.safe_load((path / "design.yaml").read_text())
    assert meta["hw"] == hw.to_dict()
    assert not set(HW_COPIES) & set(meta), "hardware keys copied to the top level"
    assert set(HW_COPIES) <= set(meta["hw"])
    d = load_design(path)
    assert (d.neuron, d.scheme, d.time_scale_s, d.g_max_s, d.opamp_gain) == \
        (hw.neuron, hw.scheme, hw.time_scale_s, hw.g_max_s, hw.opamp_gain)


def _as_old_format(path):
    """design.yaml as written before each key was stored once: every HW_COPIES key also at the top."""
    meta = yaml.safe_load((path / "design.yaml").read_text())
    meta.update({k: meta["hw"][k] for k in HW_COPIES})
    (path / "design.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return meta


def test_an_old_design_yaml_with_the_copies_still_loads(tmp_path):
    path, hw = _design(tmp_path)
    new = load_design(path)
    _as_old_format(path)
    old = load_design(path)
    assert old.hw == hw and old.v_th_v == new.v_th_v and old.c_mem_f == new.c_mem_f
    for a, b in zip(old.g_pos, new.g_pos):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("key, value", [("prog_sigma", 0.5), ("neuron", "passive"), ("v_read_v", 0.3)])
def test_a_hand_edit_of_an_old_files_copy_alone_is_an_error(tmp_path, key, value):
    path, _ = _design(tmp_path)
    meta = _as_old_format(path)
    meta[key] = value
    (path / "design.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    with pytest.raises(CheckpointError, match=f"design.yaml: {key}: is .* but hw.{key} is"):
        load_design(path)


# -- folder kinds -----------------------------------------------------------------------------------------

def test_folder_kind_tells_runs_designs_and_sweeps(tmp_path):
    run, design, sweep, table, empty = (tmp_path / n for n in ("run", "design", "sweep", "table", "empty"))
    for p in (run, design, sweep / "a", table, empty):
        p.mkdir(parents=True)
    (run / "model.yaml").write_text("{}")
    (design / "design.yaml").write_text("{}")
    (sweep / "a" / "model.yaml").write_text("{}")
    (table / "tradeoff.csv").write_text("run\n")
    assert [folder_kind(p) for p in (run, design, sweep, table, empty, tmp_path / "none")] == \
        ["run", "design", "sweep", "sweep", None, None]
    assert expect_kind(sweep, ("run", "sweep")) == "sweep"
    with pytest.raises(CheckpointError, match=r"empty: neither a run folder \(model.yaml\) nor a sweep folder"):
        expect_kind(empty, ("run", "sweep"))
    with pytest.raises(CheckpointError, match=r"run: not a design folder \(design.yaml\); make one"):
        expect_kind(run, ("design",), "make one")
    with pytest.raises(CheckpointError, match="none: no such folder; pass a folder written by 'ttfs map'"):
        expect_kind(tmp_path / "none", ("design",))


# -- writers ----------------------------------------------------------------------------------------------

class _BrokenFigure:
    """A figure whose rendering fails after writing part of the image."""

    def savefig(self, fh, **kwargs):
        fh.write(b"\x89PNG\r\n\x1a\n half an image")
        raise RuntimeError("renderer failed")


def test_save_png_leaves_no_partial_file_when_rendering_fails(tmp_path):
    out = tmp_path / "figs" / "a.png"
    with pytest.raises(RuntimeError, match="renderer failed"):
        atomic_io.save_png(_BrokenFigure(), out)
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"the old figure")
    with pytest.raises(RuntimeError):
        atomic_io.save_png(_BrokenFigure(), out)
    assert out.read_bytes() == b"the old figure" and [p.name for p in out.parent.iterdir()] == ["a.png"]


def test_save_png_writes_a_figure(tmp_path):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    assert atomic_io.save_png(fig, tmp_path / "f.png", dpi=50) == tmp_path / "f.png"
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_csv_takes_every_key_and_leaves_missing_ones_empty(tmp_path):
    rows = [{"a": 1, "b": 0.5}, {"a": 2, "c": "x,y"}]
    atomic_io.write_csv(tmp_path / "t.csv", rows)
    raw = (tmp_path / "t.csv").read_bytes().decode()
    assert raw.startswith("a,b,c\n") and "\r" not in raw
    assert list(csv.DictReader(io.StringIO(raw))) == [{"a": "1", "b": "0.5", "c": ""}, {"a": "2", "b": "", "c": "x,y"}]
    atomic_io.write_csv(tmp_path / "u.csv", rows, ["c", "b", "a"])
    assert (tmp_path / "u.csv").read_text().splitlines() == ["c,b,a", ",0.5,1", '"x,y",,2']
    with pytest.raises(ValueError, match="'b'"):       # a column left out would be lost: an error
        atomic_io.write_csv(tmp_path / "v.csv", rows, ["c", "a"])
    assert not (tmp_path / "v.csv").exists()
