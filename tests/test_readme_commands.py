"""Every README.md command block marked `<!-- runnable -->` runs, as written, on tiny inputs.

The blocks work on the folder `ttfs demo --out demo-out` makes; here the tiny demo makes it, so the
networks are 784-16-10 on a few hundred images. Training commands get tiny overrides appended
(TINY_TRAIN); nothing else of a command's text changes.
"""
import re
import shlex
import sys
from pathlib import Path

import pytest

from ttfs.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- runnable -->"
TINY_TRAIN = ["--set", "model.layers=[784, 16, 10]", "--set", "data.train_limit=300", "--set", "data.test_limit=200",
              "--set", "train.epochs=1", "--set", "train.batch_size=20"]


def runnable_blocks(text: str) -> list[list[str]]:
    """The command lines (comments and blank lines dropped) of each ```bash block right after MARKER."""
    blocks = re.findall(re.escape(MARKER) + r"\s*\n```bash\n(.*?)\n```", text, flags=re.S)
    return [[ln.split(" #")[0].strip() for ln in b.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
            for b in blocks]


def test_the_marker_finds_the_blocks():
    text = README.read_text()
    blocks = runnable_blocks(text)
    assert len(blocks) == text.count(MARKER) >= 5
    assert all(line.startswith("ttfs ") for b in blocks for line in b)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("readme")
    assert main(["demo", "--out", str(cwd / "demo-out"), "--profile", "tiny", "--quiet"]) == 0
    return cwd


@pytest.mark.slow     # about 30 s CPU: the tiny demo, a sweep, explore, ngspice
def test_every_runnable_readme_block(demo_folder, monkeypatch, capsys):
    monkeypatch.chdir(demo_folder)
    ran = []
    for block in runnable_blocks(README.read_text()):
        for line in block:
            argv = shlex.split(line)[1:]
            if argv[0] in ("train", "sweep"):
                argv += TINY_TRAIN
            assert main(argv) == 0, line
            ran.append(argv[0])
    capsys.readouterr()
    # the three daily jobs and the steps before and after them are all among the blocks
    for cmd in ("train", "map", "export-netlist", "simulate", "energy-report", "explore", "hw-eval", "eval"):
        assert cmd in ran, cmd


DASK_MARKER = "<!-- runnable: dask -->"
# appended to the README's scheduler line here: this machine only, any free port, no dashboard port
SCHEDULER_HERE = ["--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0"]


def _scheduler_address(proc, log: Path, timeout_s: float = 60.0) -> str:
    """The tcp:// address `dask scheduler` writes to its log once it listens."""
    import time
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and proc.poll() is None:
        found = re.search(r"Scheduler at:\s*(tcp://\S+)", log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.5)
    raise AssertionError(f"dask scheduler printed no address: {log.read_text()[-2000:]}")


@pytest.mark.slow     # a dask scheduler and two workers on this machine, ngspice on 20 tiny images
def test_the_dask_block_runs_on_a_local_scheduler(demo_folder, tmp_path, monkeypatch):
    import json
    import subprocess
    text = README.read_text()
    block = re.findall(re.escape(DASK_MARKER) + r"\s*\n```bash\n(.*?)\n```", text, flags=re.S)
    assert len(block) == 1 == text.count(DASK_MARKER)
    lines = [ln.split(" #")[0].strip() for ln in block[0].splitlines() if ln.strip()]
    assert [ln.split()[:2] for ln in lines] == [["dask", "scheduler"], ["dask", "worker"], ["ttfs", "simulate"]]
    monkeypatch.chdir(demo_folder)
    procs = []
    logs = [tmp_path / "scheduler.log", tmp_path / "worker.log"]
    try:
        with open(logs[0], "w") as log:
            procs.append(subprocess.Popen(shlex.split(lines[0]) + SCHEDULER_HERE, stderr=log, stdout=log))
        address = _scheduler_address(procs[0], logs[0])
        with open(logs[1], "w") as log:
            procs.append(subprocess.Popen(shlex.split(lines[1].replace("tcp://HOST:8786", address)),
                                          stderr=log, stdout=log))
        argv = shlex.split(lines[2].replace("tcp://HOST:8786", address))[1:]
        done = subprocess.run([sys.executable, "-m", "ttfs", *argv], capture_output=True, text=True, timeout=900,
                              stdin=subprocess.DEVNULL)     # a worker that never connects fails, not hangs
        assert done.returncode == 0, (lines[2], done.stderr[-2000:])
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=60)
    out = demo_folder / argv[argv.index("--out") + 1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dask"] == address and summary["n_ok"] == 20 and summary["n_failed"] == 0
