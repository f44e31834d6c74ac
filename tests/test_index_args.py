"""Index and count flags: a negative or zero value is a usage error naming the flag (argparse types in
ttfs/args.py), an index past the end of the test set an error naming the flag and the valid range
(training.data.select); neither simulates a wrapped-around or shorter set of images."""
import numpy as np
import pytest

from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from idx_files import real_test_subset
from infra.errors import DataError
from training.checkpoint import model_meta, save_model
from training.config import ModelConfig
from training.data import load_split, select
from ttfs.cli import main

N = 5      # test images in the data folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("index-args")
    model = ModelConfig(layers=(784, 4, 10))
    rng = np.random.default_rng(1)
    w = [rng.normal(2.0 / 784, 1.0 / 28, (784, 4)), rng.normal(0.5, 0.3, (4, 10))]
    save_model(root / "run", w, model_meta(model, "mnist", {}))
    save_design(map_model(w, model, HardwareConfig(), str(root / "run"), "mnist"), root / "design")
    return {"RUN": str(root / "run"), "DESIGN": str(root / "design"),
            "DATA": str(real_test_subset(root / "data", N)), "OUT": str(root / "out")}


def _argv(setup, template):
    return [setup.get(x, x) for x in template.split()]


USAGE = [  # (command line, flag, bad value, what argparse says)
    *[(f"eval RUN --limit {v}", "--limit", ">= 1") for v in ("0", "-1", "x")],
    ("spikes RUN --out OUT --limit -2", "--limit", ">= 1"),
    ("hw-eval DESIGN --limit 0", "--limit", ">= 1"),
    ("hw-eval DESIGN --trials 0", "--trials", ">= 1"),
    ("hw-eval DESIGN --trials -3", "--trials", ">= 1"),
    ("hw-sweep DESIGN --param bits --values 4 --out OUT --limit -1", "--limit", ">= 1"),
    ("hw-sweep DESIGN --param bits --values 4 --out OUT --trials 0", "--trials", ">= 1"),
    ("export-netlist DESIGN --out OUT --sample -1", "--sample", ">= 0"),
    ("export-netlist DESIGN --out OUT --t-rise-s=-1e-9", "--t-rise-s", "> 0"),
    ("export-netlist DESIGN --out OUT --max-step-s 0", "--max-step-s", "> 0"),
    ("simulate DESIGN --out OUT --limit 0", "--limit", ">= 1"),
    ("simulate DESIGN --out OUT --limit 1 --start -1", "--start", ">= 0"),
    ("simulate DESIGN --out OUT --limit 1 --workers 0", "--workers", ">= 1"),
    *[(f"simulate DESIGN --out OUT --limit 1 --timeout-s {v}", "--timeout-s", "> 0") for v in ("0", "-5", "inf", "nan")],
    ("simulate DESIGN --out OUT --limit 1 --t-rise-s 0", "--t-rise-s", "> 0"),
    ("plot RUN --out OUT --image -1", "--image", ">= 0"),
    ("energy-report RUN --hw configs/hw/ideal.yaml --out OUT --limit 0", "--limit", ">= 1"),
    *[(f"energy-report RUN --hw configs/hw/ideal.yaml --out OUT --rate {v}", "--rate", "> 0") for v in ("0", "-1", "inf")],
    ("energy-validate DESIGN --limit 0", "--limit", ">= 1"),
]


@pytest.mark.parametrize("template, flag, bound", USAGE)
def test_negative_or_zero_values_are_usage_errors_naming_the_flag(setup, capsys, template, flag, bound):
    with pytest.raises(SystemExit) as exc:
        main(_argv(setup, template))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    command = template.split()[0]
    assert f"ttfs {command}: error: argument {flag}: expected " in err and bound in err


PAST_END = [  # (command line, flag, valid range)
    ("eval RUN --limit 6", "--limit 6", "use 1 to 5"),
    ("spikes RUN --out OUT --limit 99", "--limit 99", "use 1 to 5"),
    ("hw-eval DESIGN --limit 6", "--limit 6", "use 1 to 5"),
    ("hw-sweep DESIGN --param bits --values 4 --out OUT --limit 6 --quiet", "--limit 6", "use 1 to 5"),
    ("export-netlist DESIGN --out OUT --sample 5", "--sample 5", "use 0 to 4"),
    ("simulate DESIGN --out OUT --limit 1 --start 5 --quiet", "--start 5", "use 0 to 4"),
    ("simulate DESIGN --out OUT --limit 3 --start 3 --quiet", "--limit 3", "use 1 to 2 from --start 3"),
    ("plot RUN --out OUT --image 5", "--image 5", "use 0 to 4"),
    ("energy-report RUN --hw configs/hw/ideal.yaml --out OUT --limit 6 --quiet", "--limit 6", "use 1 to 5"),
    ("energy-validate DESIGN --limit 6 --quiet", "--limit 6", "use 1 to 5"),
]


@pytest.mark.parametrize("template, flag, valid", PAST_END)
def test_indices_past_the_end_of_the_test_set_are_errors(setup, tmp_path, capsys, template, flag, valid):
    argv = [tmp_path / "out" if a == setup["OUT"] else a for a in _argv(setup, template)]
    assert main([str(a) for a in argv] + ["--data-dir", setup["DATA"]]) == 2
    err = capsys.readouterr().err.strip()
    command = template.split()[0]
    assert err == f"ttfs {command}: error: {flag}: out of range; the mnist test set has {N} images, {valid}"


def test_the_last_valid_index_is_accepted(setup, tmp_path, capsys):
    assert main(["eval", setup["RUN"], "--limit", str(N), "--json", "--data-dir", setup["DATA"]]) == 0
    assert f'"n": {N}' in capsys.readouterr().out
    out = tmp_path / "x.cir"
    assert main(["export-netlist", setup["DESIGN"], "--sample", str(N - 1), "--out", str(out),
                 "--data-dir", setup["DATA"]]) == 0
    assert f"test sample {N - 1} of mnist" in out.read_text()


def test_select_checks_every_bound_for_library_callers():
    data = load_split("mnist", "test", limit=10)
    part = select(data, start=7)
    assert len(part) == 3 and part.labels.tolist() == data.labels[7:].tolist()
    assert select(data, start=2, limit=3).labels.tolist() == data.labels[2:5].tolist()
    for kwargs, match in (({"start": -1}, "--start -1: out of range.* use 0 to 9"),
                          ({"start": 10}, "--start 10"),
                          ({"limit": 0}, "--limit 0: out of range.* use 1 to 10"),
                          ({"limit": -4}, "--limit -4"),
                          ({"start": 8, "limit": 3}, "--limit 3: .*use 1 to 2 from --start 8"),
                          ({"start": -3, "start_flag": "--image"}, "--image -3")):
        with pytest.raises(DataError, match=match):
            select(data, **kwargs)
