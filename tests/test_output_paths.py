"""No output path leaves the folder the user named, whatever names a file holds (infra.paths.inside).

`ttfs plot` names its PNGs from the data set field of a sweep's tradeoff.csv (or of its runs'
config.yaml when there is no table): a `../../escape` there is sanitised into a plain file name
inside --out; a name that resolves outside --out through a planted symlink is refused.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from infra.errors import CheckpointError
from infra.paths import inside
from training.checkpoint import model_meta, save_model
from training.config import ModelConfig
from training.sweep import write_tradeoff
from ttfs.cli import main


def _row(kind, strength, acc, spikes, dataset="../../escape", layers="784-3-2"):
    return {"run": f"{kind}_s{strength}", "dataset": dataset, "layers": layers, "kind": kind,
            "strength": strength, "v_hat": 0.5 if kind == "membrane" else "", "epochs": 1, "accuracy": acc,
            "spikes_per_neuron_l1": spikes, "spikes_per_neuron_mean": spikes, "output_spikes_per_neuron": 1.0}


def _files(root: Path) -> set:
    return {p for p in root.rglob("*") if not p.is_dir()}


def test_inside_keeps_every_name_in_root(tmp_path):
    root = tmp_path / "out"
    for name in ("../../escape", "..", ".", "", "/etc/passwd", "a/../../b", "x\n.control", "\u00e9\x00"):
        p = inside(root, name)
        assert p.parent == root and p.resolve().parent == root.resolve(), (name, p)
    assert inside(root, "mnist-784-400-10-tradeoff.png") == root / "mnist-784-400-10-tradeoff.png"
    root.mkdir()
    (root / "link.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(CheckpointError, match="outside"):
        inside(root, "link.png", "sweep/tradeoff.csv")


def test_plot_names_from_tradeoff_csv_stay_inside_out(tmp_path, capsys):
    sweep, out = tmp_path / "a" / "b" / "sweep", tmp_path / "a" / "b" / "figs"
    sweep.mkdir(parents=True)
    write_tradeoff(sweep, [_row("m-ssr", 1e-4, 0.9, 0.5), _row("m-ssr", 1e-3, 0.8, 0.2),
                           _row("membrane", 1e-4, 0.85, 0.3)])
    before = _files(tmp_path)
    assert main(["plot", str(sweep), "--out", str(out)]) == 0
    made = _files(tmp_path) - before
    assert {p.name for p in made} == {"___.._escape-784-3-2-tradeoff.png", "___.._escape-784-3-2-membrane-vs-mssr.png"}
    assert all(p.parent == out for p in made)
    for p in made:
        assert p.read_bytes()[:4] == b"\x89PNG"
    assert "escape" in capsys.readouterr().out

    # a symlink planted at the sanitised name, pointing out of --out: refused, the target untouched
    target = tmp_path / "victim.png"
    target.write_bytes(b"keep")
    (out / "___.._escape-784-3-2-tradeoff.png").unlink()
    (out / "___.._escape-784-3-2-tradeoff.png").symlink_to(target)
    assert main(["plot", str(sweep), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ttfs plot: error:") and "outside" in err and "\n" not in err
    assert target.read_bytes() == b"keep"


def test_plot_of_runs_whose_files_name_dataset_parent_dirs(tmp_path, capsys):
    """A sweep without tradeoff.csv whose run's config.yaml and model.yaml say dataset `../x`."""
    sweep, out = tmp_path / "s" / "sweep", tmp_path / "s" / "figs"
    run = sweep / "m-ssr_s0.0001"
    model = ModelConfig(layers=(784, 3, 2))
    rng = np.random.default_rng(0)
    save_model(run, [rng.normal(size=(784, 3)), rng.normal(size=(3, 2))], model_meta(model, "../x", {}))
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"dataset": "../x"}, "model": {"layers": [784, 3, 2]},
                                                     "reg": {"kind": "m-ssr", "strength": 1e-4}}))
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "test_accuracy": 0.5, "spikes_per_neuron": [0.4],
                                                   "spikes_per_neuron_mean": 0.4,
                                                   "output_spikes_per_neuron": 1.0}) + "\n")
    before = _files(tmp_path)
    assert main(["plot", str(sweep), "--out", str(out)]) == 0
    made = _files(tmp_path) - before
    assert {p.relative_to(tmp_path).as_posix() for p in made} == {"s/sweep/tradeoff.csv",
                                                                  "s/figs/___x-784-3-2-tradeoff.png"}
    # the run itself: its data set is not one we know, a one-line error and nothing written
    before = _files(tmp_path)
    assert main(["plot", str(run), "--out", str(tmp_path / "runfigs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ttfs plot: error:") and "'../x'" in err and "\n" not in err
    assert _files(tmp_path) == before
