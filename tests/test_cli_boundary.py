"""The command-line boundary: OS errors, corrupt files, bad --out and --dask, a closed or full
stdout and Ctrl-C each end in one line on stderr (no traceback) and a defined exit status."""
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwmodel.config import HardwareConfig
from hwmodel.design import save_design
from hwmodel.mapping import map_model
from infra import atomic_io
from ttfs.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIG = "configs/mnist-784-400-10.yaml"


def one_line(err: str) -> str:
    """stderr holds exactly one line and no traceback; returns it."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def cli(*argv, **kw):
    """`python -m ttfs.cli ARGV` from the repo root (the worktree's code)."""
    return subprocess.run([sys.executable, "-m", "ttfs.cli", *map(str, argv)], cwd=REPO,
                          stderr=subprocess.PIPE, text=True, timeout=120, **kw)


@pytest.fixture(scope="module")
def design_dir(run_dir):
    from training.checkpoint import load_model
    run = load_model(run_dir)
    design = run_dir.parent / "design"
    save_design(map_model(run.weights, run.model, HardwareConfig()), design)
    return design


# Every command whose --out is a folder, with its other required arguments (never reached).
FOLDER_COMMANDS = {
    "train": ["--config", CONFIG],
    "sweep": ["--config", CONFIG, "--reg", "m-ssr", "--strengths", "0"],
    "plot": ["RUN"],
    "map": ["RUN", "--hw", "configs/hw/ideal.yaml"],
    "hw-sweep": ["RUN", "--param", "variation", "--values", "0"],
    "simulate": ["DESIGN", "--limit", "1"],
    "energy-report": ["RUN", "--hw", "configs/hw/ideal.yaml"],
    "demo": [],
}


@pytest.mark.parametrize("command", FOLDER_COMMANDS)
def test_out_naming_a_file_is_refused_before_any_work(command, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    argv = [command, *FOLDER_COMMANDS[command]]
    assert main([*argv, "--out", str(taken)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"--out {taken}: is a file" in line and line.startswith(f"ttfs {command}: error:")
    assert taken.read_text() == "keep me"
    assert main([*argv, "--out", str(taken / "sub")]) == 2          # a path through a file
    assert f"{taken} is a file, not a folder" in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == [taken]


def test_read_only_output_folder(run_dir, capsys):
    """sysfs refuses mkdir even to root (EPERM), so this works where the tests run as root
    (a chmod 0o500 folder would not stop root); as another user os.access already says no."""
    out = Path("/sys") / f"ttfs-test-{os.getpid()}"
    assert main(["map", str(run_dir), "--hw", "configs/hw/ideal.yaml", "--out", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("ttfs map: error: ") and str(out) in line
    assert "permitted" in line or "not writable" in line
    assert not out.exists()


def test_full_disk_names_the_file_and_leaves_no_part(run_dir, tmp_path, monkeypatch, capsys):
    def full(fd):                     # what fsync says on a full disk: no file name
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(atomic_io.os, "fsync", full)
    out = tmp_path / "design"
    assert main(["map", str(run_dir), "--hw", "configs/hw/ideal.yaml", "--out", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"{out / 'design.npz'}: No space left on device; the disk is full" in line
    assert not out.exists()                    # no .part file left, nor the folder the command made


def test_file_out_naming_a_folder(run_dir, tmp_path, capsys):
    assert main(["spikes", str(run_dir), "--limit", "2", "--out", str(tmp_path)]) == 2
    assert one_line(capsys.readouterr().err) == f"ttfs spikes: error: {tmp_path}: Is a directory; name a file, not a folder"
    assert list(tmp_path.iterdir()) == []


def test_corrupt_and_non_utf8_inputs(run_dir, tmp_path, capsys):
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_bytes(b"seed: 0\nmodel: \xff\xfe\n")
    assert main(["train", "--config", str(bad_config), "--out", str(tmp_path / "r")]) == 2
    assert f"{bad_config}: not UTF-8 text" in one_line(capsys.readouterr().err)
    broken = tmp_path / "run"
    broken.mkdir()
    (broken / "model.yaml").write_bytes((run_dir / "model.yaml").read_bytes())
    (broken / "model.npz").write_bytes((run_dir / "model.npz").read_bytes()[:300])   # truncated
    assert main(["eval", str(broken)]) == 2
    assert f"{broken / 'model.npz'}: not a readable .npz archive" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("address", ["foo", "tcp://", "http://x:y", "tcp://127.0.0.1:99999"])
def test_malformed_dask_address(address, design_dir, tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", str(design_dir), "--limit", "1", "--dask", address, "--out", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"--dask {address!r}: expected a scheduler address tcp://HOST:PORT" in line
    assert not out.exists()


def test_unreachable_dask_scheduler_fails_fast(design_dir, tmp_path, capsys):
    with socket.socket() as s:        # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "sim"
    start = time.perf_counter()
    assert main(["simulate", str(design_dir), "--limit", "1", "--dask", f"tcp://127.0.0.1:{port}",
                 "--out", str(out)]) == 2
    assert time.perf_counter() - start < 10
    line = one_line(capsys.readouterr().err)
    assert f"--dask tcp://127.0.0.1:{port}: no scheduler answers" in line and "dask scheduler" in line
    assert not out.exists()


def test_reader_closing_the_pipe_exits_quietly(run_dir):
    """`ttfs eval RUN --json | head -c0`: the pipe's reader is gone before anything is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        p = cli("eval", run_dir, "--limit", "5", "--json", stdout=write_end)
    finally:
        os.close(write_end)
    assert p.returncode == 141 and p.stderr == ""


def test_full_stdout_is_one_line(run_dir):
    with open("/dev/full", "w") as full:
        p = cli("eval", run_dir, "--limit", "5", "--json", stdout=full)
    assert p.returncode == 2
    assert one_line(p.stderr) == ("ttfs eval: error: standard output: No space left on device; the disk is full; "
                                  "free some space or choose a location on another disk")


def test_interrupt_wrapped_by_numba_is_an_interrupt(tmp_path, monkeypatch, capsys):
    """Ctrl-C inside a numba kernel surfaces as SystemError('... returned a result with an
    exception set') caused by the KeyboardInterrupt: still exit 130 with the --resume hint."""
    import training.trainer as trainer

    def interrupted(*a, **k):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("CPUDispatcher(<function forward>) returned a result with an exception set") from exc
    monkeypatch.setattr(trainer, "train_epoch", interrupted)
    assert main(["train", "--config", CONFIG, "--out", str(tmp_path / "run"), "--quiet",
                 "--set", "model.layers=[784, 8, 10]", "--set", "data.train_limit=50",
                 "--set", "data.test_limit=20"]) == 130
    assert one_line(capsys.readouterr().err) == ("ttfs train: interrupted; rerun with --resume to continue from "
                                                 "the last completed epoch")


def test_sigint_during_training(tmp_path):
    """A real Ctrl-C: SIGINT once training has started (config.yaml is written just before the
    first epoch), wherever it lands (numba kernel or Python)."""
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "ttfs.cli", "train", "--config", CONFIG, "--out", str(out),
                          "--quiet", "--set", "model.layers=[784, 100, 10]", "--set", "data.train_limit=20000",
                          "--set", "data.test_limit=100", "--set", "train.epochs=3"],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         # a test run started in the background inherits SIGINT ignored (POSIX shells
                         # do that for asynchronous jobs); the child must see Ctrl-C as a user's would
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not (out / "config.yaml").exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    line = one_line(err)
    assert line.startswith("ttfs train: interrupted;") and "--resume" in line


def test_a_bug_keeps_its_traceback(monkeypatch):
    import ttfs.cmd_train as cmd_train
    monkeypatch.setattr(cmd_train, "load_model", lambda run: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["eval", "anything"])
