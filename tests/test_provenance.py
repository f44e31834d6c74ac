"""model.yaml, design.yaml, simulate's summary.json and report.json say what made them (infra.provenance):
the toolkit's version and git commit, and the versions of Python, numpy, numba, PySpice and ngspice."""
import json
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

import numba
import numpy
import PySpice
import pytest
import yaml

from hwmodel.design import load_design
from infra import provenance
from infra.fingerprint import file_digest
from netlists.ngspice import find_executable
from training.checkpoint import load_model
from ttfs.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "model.layers=[784, 6, 10]", "--set", "data.train_limit=100", "--set", "data.test_limit=50",
        "--set", "train.batch_size=50", "--set", "train.epochs=1"]


def _git(*args) -> str | None:
    p = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else None


def expected() -> dict:
    """What each file must say, found here independently of infra.provenance."""
    head = _git("rev-parse", "HEAD")
    git = {} if head is None else {"git_commit": head.strip(),
                                   "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no").strip())}
    return {"ttfs-codesign": metadata.version("ttfs-codesign"), **git, "python": platform.python_version(),
            "numpy": numpy.__version__, "numba": numba.__version__, "PySpice": PySpice.__version__}


def ngspice_version() -> str:
    banner = subprocess.run([find_executable(), "--version"], capture_output=True, text=True).stdout
    return re.search(r"ngspice-(\S+)", banner).group(1)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A tiny run, its design, one simulated image and an energy report."""
    root = tmp_path_factory.mktemp("provenance")
    assert main(["train", "--config", "mnist-784-400-10", "--out", str(root / "run"), "--quiet", *TINY]) == 0
    assert main(["map", str(root / "run"), "--hw", "ideal", "--out", str(root / "design")]) == 0
    assert main(["simulate", str(root / "design"), "--limit", "1", "--out", str(root / "sim"), "--quiet"]) == 0
    assert main(["energy-report", str(root / "design"), "--hw", "ideal", "--limit", "10",
                 "--out", str(root / "report"), "--quiet"]) == 0
    return root


def test_the_four_files_hold_the_provenance(chain):
    files = {"model.yaml": yaml.safe_load((chain / "run" / "model.yaml").read_text()),
             "design.yaml": yaml.safe_load((chain / "design" / "design.yaml").read_text()),
             "summary.json": json.loads((chain / "sim" / "summary.json").read_text()),
             "report.json": json.loads((chain / "report" / "report.json").read_text())}
    want = expected()
    for name, content in files.items():
        got = dict(content[provenance.KEY])
        ngspice = got.pop("ngspice")
        assert got == want, name
        assert ngspice in (None, ngspice_version()), name     # known only once ngspice was loaded
    assert files["summary.json"][provenance.KEY]["ngspice"] == ngspice_version()   # it simulated


def test_files_without_provenance_still_load(chain, tmp_path):
    for folder, name, loader in (("run", "model.yaml", load_model), ("design", "design.yaml", load_design)):
        old = tmp_path / folder
        old.mkdir()
        for f in (chain / folder).iterdir():
            if f.is_file():
                (old / f.name).write_bytes(f.read_bytes())
        meta = yaml.safe_load((old / name).read_text())
        del meta[provenance.KEY]
        (old / name).write_text(yaml.safe_dump(meta, sort_keys=False))
        assert tuple(loader(old).model.layers if folder == "run" else loader(old).layers) == (784, 6, 10)


def test_a_yaml_fingerprint_ignores_the_provenance(chain, tmp_path):
    """Re-mapping the same design at another commit keeps simulate's and energy-report's cached results."""
    text = (chain / "design" / "design.yaml").read_text()
    meta = yaml.safe_load(text)
    variants = {}
    for name, change in (("other-commit", {"git_commit": "0" * 40, "git_dirty": True, "ngspice": "99"}),
                         ("none", None)):
        m = dict(meta)
        if change is None:
            del m[provenance.KEY]
        else:
            m[provenance.KEY] = {**m[provenance.KEY], **change}
        variants[name] = tmp_path / f"{name}.yaml"
        variants[name].write_text(yaml.safe_dump(m, sort_keys=False))
    same = file_digest(chain / "design" / "design.yaml")
    assert file_digest(variants["other-commit"]) == same == file_digest(variants["none"])
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace(f"noise_seed: {meta['noise_seed']}", f"noise_seed: {meta['noise_seed'] + 1}"))
    assert file_digest(changed) != same


def _commit(repo: Path) -> str:
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.txt").write_text("a\n")
    subprocess.run(["git", "-C", str(repo), "add", "a.txt"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a"],
                   check=True)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def test_git_state_of_a_checkout_an_installed_copy_and_no_git(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    head = _commit(repo)
    monkeypatch.setattr(provenance, "SOURCE", repo)
    assert provenance.git_state() == {"git_commit": head, "git_dirty": False}
    (repo / "a.txt").write_text("changed\n")
    assert provenance.git_state() == {"git_commit": head, "git_dirty": True}
    installed = repo / "venv" / "lib" / "site-packages"        # a virtual environment inside a checkout
    installed.mkdir(parents=True)
    monkeypatch.setattr(provenance, "SOURCE", installed)
    assert provenance.git_state() == {}
    monkeypatch.setattr(provenance, "SOURCE", tmp_path)        # not a checkout at all
    assert provenance.git_state() == {}
    monkeypatch.setattr(provenance, "SOURCE", repo)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))        # git missing
    assert provenance.git_state() == {}


def test_nir_export_records_the_package_version():
    from training import nir_export
    assert nir_export._package_version() == provenance.provenance()["ttfs-codesign"] == metadata.version("ttfs-codesign")


def test_a_rerun_and_workers_keep_the_ngspice_version(chain, tmp_path, monkeypatch):
    """A rerun that simulates nothing (ngspice never loaded) and images simulated by worker processes
    still name the ngspice that produced them: each results.jsonl record carries its version."""
    records = [json.loads(line) for line in (chain / "sim" / "results.jsonl").read_text().splitlines()]
    assert [r["ngspice"] for r in records] == [ngspice_version()]
    monkeypatch.setitem(provenance._RECORDED, "ngspice", None)     # a fresh process: nothing loaded yet
    assert main(["simulate", str(chain / "design"), "--limit", "1", "--out", str(chain / "sim"), "--quiet"]) == 0
    summary = json.loads((chain / "sim" / "summary.json").read_text())
    assert summary[provenance.KEY]["ngspice"] == ngspice_version()
    assert main(["simulate", str(chain / "design"), "--limit", "2", "--workers", "2", "--out", str(tmp_path / "w"),
                 "--quiet"]) == 0
    assert provenance.provenance()["ngspice"] is None             # this process never loaded ngspice
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["n_ok"] == 2 and summary[provenance.KEY]["ngspice"] == ngspice_version()
