"""Caches and resume records are keyed on content (infra.fingerprint): energy-report's cache and
simulate's results are recomputed when the data (--data-dir) or the design change, and reused while
only paths or file times do."""
import json
import shutil

import numpy as np
import pytest

import energy.report as report_mod
import netlists.runner as runner
from hwmodel.design import load_design, save_design
from infra.fingerprint import digest, file_digest
from training.data import load_split
from ttfs.cli import main

from test_netlist_runner import design_path  # noqa: F401  (module fixture: a 784-5-3 design)


def _write_idx(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    path.write_bytes(bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
                     + arr.tobytes())


@pytest.fixture(scope="module")
def other_data(tmp_path_factory):
    """A data folder whose first 20 test images are the negatives of MNIST's."""
    folder = tmp_path_factory.mktemp("other-data")
    test = load_split("mnist", "test", limit=20)
    _write_idx(folder / "t10k-images-idx3-ubyte", 255 - test.images)
    _write_idx(folder / "t10k-labels-idx1-ubyte", test.labels)
    return folder


def _energy(design, out, *extra):
    assert main(["energy-report", str(design), "--hw", "configs/hw/ideal.yaml", "--limit", "20", "--out", str(out),
                 "--quiet", *extra]) == 0
    return json.loads((out / "report.json").read_text())["runs"][0]


def _count_energy_calls(monkeypatch):
    calls, real = [], report_mod.design_energy

    def counted(*args, **kw):
        calls.append(1)
        return real(*args, **kw)
    monkeypatch.setattr(report_mod, "design_energy", counted)
    return calls


def test_energy_report_cache_follows_the_data_dir(design_path, other_data, tmp_path):
    out = tmp_path / "report"
    mnist = _energy(design_path, out)
    negative = _energy(design_path, out, "--data-dir", str(other_data))
    assert negative["energy_per_inference_j"] != mnist["energy_per_inference_j"]
    assert negative == _energy(design_path, tmp_path / "fresh", "--data-dir", str(other_data))
    assert _energy(design_path, out) == mnist


def test_energy_report_cache_is_reused_while_the_content_is_the_same(design_path, tmp_path, monkeypatch):
    design = tmp_path / "design"
    shutil.copytree(design_path, design)
    out = tmp_path / "report"
    first = _energy(design, out)
    calls = _count_energy_calls(monkeypatch)
    save_design(load_design(design), design)                # rewritten, same arrays: new file times only
    assert _energy(design, out) == first and calls == []
    d = load_design(design)
    d.g_pos[0][0, :] *= 2.0                                 # re-mapped in place with other conductances
    save_design(d, design)
    assert _energy(design, out) != first and len(calls) == 1


def test_simulate_results_follow_the_data_dir(design_path, other_data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", str(design_path), "--limit", "1", "--out", str(out), "--quiet"]) == 0
    calls, real = [], runner.simulate_image
    monkeypatch.setattr(runner, "simulate_image", lambda c, t, timeout_s=None: (calls.append(1), real(c, t))[1])
    assert main(["simulate", str(design_path), "--limit", "1", "--out", str(out), "--quiet"]) == 0
    assert calls == []
    capsys.readouterr()
    assert main(["simulate", str(design_path), "--limit", "1", "--out", str(out), "--quiet",
                 "--data-dir", str(other_data)]) == 0
    assert len(calls) == 1 and "test data changed" in capsys.readouterr().out


def test_fingerprints_are_of_content_not_of_files_or_key_order(tmp_path):
    a, b = np.arange(6.0).reshape(2, 3), np.ones(4, dtype=np.int32)
    np.savez(tmp_path / "x.npz", a=a, b=b)
    np.savez(tmp_path / "y.npz", b=b, a=a)                  # other bytes (entry order), same arrays
    assert (tmp_path / "x.npz").read_bytes() != (tmp_path / "y.npz").read_bytes()
    assert file_digest(tmp_path / "x.npz") == file_digest(tmp_path / "y.npz")
    np.savez(tmp_path / "z.npz", a=a + 1e-12, b=b)
    assert file_digest(tmp_path / "z.npz") != file_digest(tmp_path / "x.npz")
    assert digest({"lr": 1e-3, "epochs": 2}) == digest({"epochs": 2, "lr": 1e-3})
    assert digest({"lr": 1e-3}) != digest({"lr": 2e-3})
    assert digest(a) != digest(a.astype(np.float32)) and digest(a) != digest(a.reshape(3, 2))
