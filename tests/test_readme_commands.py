"""Every README.md command block marked `<!-- runnable -->` runs, as written, on tiny inputs.

The blocks work on the folder `ttfs demo --out demo-out` makes; here the tiny demo makes it, so the
networks are 784-16-10 on a few hundred images. Training commands get tiny overrides appended
(TINY_TRAIN); nothing else of a command's text changes.
"""
import re
import shlex
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
