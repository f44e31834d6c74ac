"""`ttfs plot` trusts nothing in a sweep's tradeoff.csv (training.sweep.read_tradeoff, infra.paths.within).

Every number is finite and in range (epochs an integer >= 1, accuracy in [0, 1], spikes per neuron
>= 0), else a one-line error naming the file, row and column; a run name is a folder directly inside
the sweep folder, so a table saying `../x` or an absolute path never makes plot load a model elsewhere.
"""
import numpy as np
import pytest

from infra.errors import CheckpointError
from infra.paths import within
from tests.idx_files import write_split
from training.checkpoint import model_meta, save_model
from training.config import ModelConfig
from training.sweep import write_tradeoff
from ttfs.cli import main

HEADER = "run,dataset,layers,kind,strength,epochs,accuracy,spikes_per_neuron_mean"


def _plot(sweep, out, capsys, *more):
    code = main(["plot", str(sweep), "--out", str(out), *more])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("column, row", [
    ("epochs", "none,mnist,784-8-10,none,0,inf,0.9,1"),
    ("epochs", "none,mnist,784-8-10,none,0,nan,0.9,1"),
    ("epochs", "none,mnist,784-8-10,none,0,,0.9,1"),
    ("epochs", "none,mnist,784-8-10,none,0,-1,0.9,1"),
    ("epochs", "none,mnist,784-8-10,none,0,0,0.9,1"),
    ("epochs", "none,mnist,784-8-10,none,0,1.5,0.9,1"),
    ("accuracy", "none,mnist,784-8-10,none,0,1,1.5,1"),
    ("accuracy", "none,mnist,784-8-10,none,0,1,nan,1"),
    ("spikes_per_neuron_mean", "none,mnist,784-8-10,none,0,1,0.9,nan"),
    ("spikes_per_neuron_mean", "none,mnist,784-8-10,none,0,1,0.9,-0.5"),
    ("strength", "m-ssr_s1,mnist,784-8-10,m-ssr,inf,1,0.9,1"),
    ("strength", "m-ssr_s1,mnist,784-8-10,m-ssr,1e-4;nan,1,0.9,1"),
])
def test_bad_number_is_one_line_naming_file_and_column(tmp_path, capsys, column, row):
    sweep = tmp_path / "SW"
    sweep.mkdir()
    (sweep / "tradeoff.csv").write_text(f"{HEADER}\n{row}\n")
    code, err = _plot(sweep, tmp_path / "P", capsys)
    assert code == 2, err
    assert err.startswith("ttfs plot: error:") and "\n" not in err
    assert str(sweep / "tradeoff.csv") in err and f"column '{column}'" in err and "row 1" in err
    assert "delete it" in err and "Traceback" not in err
    assert not list((tmp_path / "P").glob("*.png"))


def test_in_range_numbers_still_plot(tmp_path, capsys):
    """The neighbours of the bad values (accuracy 0 and 1, spikes 0, v_hat and layer cells empty) pass."""
    sweep = tmp_path / "SW"
    sweep.mkdir()
    (sweep / "tradeoff.csv").write_text(f"{HEADER},v_hat,spikes_per_neuron_l2\n"
                                        "m-ssr_s1,mnist,784-8-10,m-ssr,1e-4,2,1,0,,\n"
                                        "m-ssr_s2,mnist,784-8-10,m-ssr,1e-3,2.0,0,0.5,,1\n")
    code, err = _plot(sweep, tmp_path / "P", capsys)
    assert code == 0, err
    assert [p.name for p in (tmp_path / "P").glob("*.png")] == ["mnist-784-8-10-tradeoff.png"]


def _run(folder, seed=0):
    rng = np.random.default_rng(seed)
    save_model(folder, [rng.normal(0.01, 0.05, (784, 8)), rng.normal(0.3, 0.5, (8, 10))],
               model_meta(ModelConfig(layers=(784, 8, 10)), "mnist", {}))


def _sweep_naming(sweep, baseline: str):
    """A sweep table whose baseline row names `baseline` and whose M-SSR run lies in the sweep."""
    _run(sweep / "m-ssr_s0.001", 1)
    row = dict(dataset="mnist", layers="784-8-10", epochs=1, v_hat="", output_spikes_per_neuron=1.0)
    write_tradeoff(sweep, [dict(row, run=baseline, kind="none", strength=0.0, accuracy=0.9,
                                spikes_per_neuron_mean=1.0),
                           dict(row, run="m-ssr_s0.001", kind="m-ssr", strength=1e-3, accuracy=0.8,
                                spikes_per_neuron_mean=0.5)])


def test_run_names_outside_the_sweep_are_refused(tmp_path, capsys, monkeypatch):
    import training.checkpoint

    data = write_split(tmp_path / "data", np.zeros((1, 28, 28)), np.zeros(1))
    loaded = []
    real = training.checkpoint.load_model
    monkeypatch.setattr(training.checkpoint, "load_model", lambda d: loaded.append(d) or real(d))

    # the control: a plain name of a run in the sweep plots its raster
    sweep = tmp_path / "ok" / "SW"
    _run(sweep / "none")
    _sweep_naming(sweep, "none")
    code, err = _plot(sweep, tmp_path / "ok" / "P", capsys, "--data-dir", str(data))
    assert code == 0, err
    assert (tmp_path / "ok" / "P" / "mnist-784-8-10-raster.png").is_file()
    assert loaded == [sweep / "none", sweep / "m-ssr_s0.001"]

    outside = tmp_path / "bad" / "x"
    _run(outside)                                          # a valid run the table points at
    for i, name in enumerate([str(outside), "../x", "a/b", "..", ".", ""]):
        sweep = tmp_path / "bad" / f"SW{i}"
        _run(sweep / "a" / "b")
        _sweep_naming(sweep, name)
        loaded.clear()
        code, err = _plot(sweep, tmp_path / "bad" / f"P{i}", capsys, "--data-dir", str(data))
        assert code == 2, (name, err)
        assert err.startswith("ttfs plot: error:") and "\n" not in err
        assert str(sweep / "tradeoff.csv") in err and "column 'run'" in err and repr(name) in err
        assert loaded == [] and not list((tmp_path / "bad" / f"P{i}").glob("*.png"))


def test_within_joins_only_direct_subfolders(tmp_path):
    root = tmp_path / "SW"
    (root / "run").mkdir(parents=True)
    assert within(root, "run") == root / "run"
    assert within(root, "not-yet") == root / "not-yet"
    (root / "link").symlink_to(tmp_path)
    (root / "loop").symlink_to(root / "loop")
    for name in ("/etc", "../SW", "a/b", "a\\b", "..", ".", "", "link", "loop", "x\0y"):
        with pytest.raises(CheckpointError, match="tradeoff.csv: row 3") as exc:
            within(root, name, "tradeoff.csv: row 3", "delete it")
        assert str(exc.value).endswith("; delete it") and "\n" not in str(exc.value)
