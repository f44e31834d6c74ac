"""The output-folder lock (infra.folder_lock): a second command into a held folder stops with the
holder's PID, and the lock cleans up what killed or failed commands left (stale .part files, empty folders)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from infra.folder_lock import folder_lock
from training.checkpoint import model_meta, save_model
from training.config import ModelConfig
from ttfs.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs" / "mnist-784-400-10.yaml")
TINY = ["--set", "model.layers=[784, 8, 10]", "--set", "data.train_limit=100", "--set", "data.test_limit=50",
        "--set", "train.batch_size=50", "--set", "train.epochs=1"]
HOLD = ("import sys\nfrom infra.folder_lock import folder_lock\nwith folder_lock(sys.argv[1], sys.argv[2]):\n"
        "    print('locked', flush=True)\n    sys.stdin.readline()\n")
TRY = ("import sys\nfrom infra.folder_lock import folder_lock\nfrom infra.errors import FolderInUseError\ntry:\n"
       "    with folder_lock(sys.argv[1], 'probe'):\n        sys.exit(0)\nexcept FolderInUseError:\n    sys.exit(3)\n")


@pytest.fixture(scope="module")
def run_and_design(tmp_path_factory):
    root = tmp_path_factory.mktemp("lock")
    rng = np.random.default_rng(0)
    model = ModelConfig(layers=(784, 5, 3))
    w = [rng.normal(2.0 / 784, 1.0 / np.sqrt(784), (784, 5)), rng.normal(2.5 / 5, 0.8 / np.sqrt(5), (5, 3))]
    save_model(root / "run", w, model_meta(model, "mnist", {}))
    save_design(map_model(w, model, HardwareConfig(comparator_delay_s=1e-9)), root / "design")
    return root / "run", root / "design"


def _hold(folder: Path, command: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), command], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _release(proc: subprocess.Popen) -> None:
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(timeout=30) == 0


def test_every_command_refuses_a_folder_another_process_holds(run_and_design, tmp_path, capsys):
    run, design = run_and_design
    out = tmp_path / "busy"
    commands = {
        "train": ["train", "--config", CONFIG, "--out", str(out), "--quiet", *TINY],
        "sweep": ["sweep", "--config", CONFIG, "--reg", "m-ssr", "--strengths", "1e-3", "--out", str(out),
                  "--no-plots", "--quiet", *TINY],
        "map": ["map", str(run), "--hw", "configs/hw/ideal.yaml", "--out", str(out)],
        "hw-sweep": ["hw-sweep", str(design), "--param", "bits", "--values", "4", "--limit", "10",
                     "--out", str(out), "--quiet"],
        "simulate": ["simulate", str(design), "--limit", "1", "--out", str(out), "--quiet"],
        "energy-report": ["energy-report", str(design), "--hw", "configs/hw/ideal.yaml", "--limit", "10",
                          "--out", str(out), "--quiet"],
        "demo": ["demo", "--out", str(out), "--profile", "tiny", "--quiet"],
        "plot": ["plot", str(run), "--out", str(out)],
    }
    holder = _hold(out, "ttfs simulate")
    try:
        for name, argv in commands.items():
            capsys.readouterr()
            assert main(argv) == 2, name
            err = capsys.readouterr().err
            assert f"ttfs {name}: error: {out} is in use by PID {holder.pid} (ttfs simulate); wait for it or " \
                   "choose another --out" in err, (name, err)
            assert sorted(p.name for p in out.iterdir()) == [".lock"], name      # nothing was written
    finally:
        _release(holder)
    assert main(commands["simulate"]) == 0                  # free again once the holder has ended
    assert (out / "results.jsonl").is_file()


def test_lock_is_reentrant_cleans_stale_part_files_and_removes_the_empty_folder_it_made(tmp_path):
    target = tmp_path / "a" / "b"
    with folder_lock(target, "ttfs test"):
        assert (target / ".lock").read_text().split() == [str(os.getpid()), "ttfs", "test"]
    assert not (tmp_path / "a").exists()                    # created for nothing: removed, parents too
    with folder_lock(target, "ttfs test"):
        (target / "kept.txt").write_text("x")
    assert [p.name for p in target.iterdir()] == ["kept.txt"]   # the lock file goes with its holder

    stale = [target / ".model.npz.ttfs-k2j3ab_9.part", target / "cache" / ".x.json.ttfs-a1b2c3d4.part"]
    other = target / "run" / ".state.npz.ttfs-zzzzzzzz.part"      # a subfolder with its own lock is its owner's
    foreign = target / "cache" / ".notes.txt.k2j3ab_9.part"         # another program's: not the toolkit's mark
    for p in stale + [other, foreign]:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"half")
    (target / "run" / ".lock").write_text("")
    probe = [sys.executable, "-c", TRY, str(target)]
    with folder_lock(target, "ttfs test"):
        assert not any(p.exists() for p in stale) and other.exists() and foreign.exists()
        with folder_lock(target, "ttfs test"):              # the same process may take it again
            pass
        assert subprocess.run(probe, cwd=ROOT).returncode == 3   # ... and still holds it afterwards
    assert subprocess.run(probe, cwd=ROOT).returncode == 0


def test_failed_commands_leave_no_folder_behind(run_and_design, tmp_path, capsys):
    run, design = run_and_design
    out = tmp_path / "new" / "run"
    assert main(["train", "--config", CONFIG, "--out", str(out), "--data-dir", str(tmp_path / "no-data"),
                 "--quiet", *TINY]) == 2
    assert "not found" in capsys.readouterr().err and not (tmp_path / "new").exists()
    report = tmp_path / "report"                            # fails after the lock was taken
    assert main(["energy-report", str(design), "--hw", "configs/hw/ideal.yaml", "--rate", "1e7", "--limit", "5",
                 "--out", str(report), "--quiet"]) == 2
    assert "--rate" in capsys.readouterr().err and not report.exists()
    (tmp_path / "file").write_text("x")
    assert main(["simulate", str(design), "--limit", "1", "--out", str(tmp_path / "file"), "--quiet"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
