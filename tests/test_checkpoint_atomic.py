"""A run's epoch is one atomic unit: `ttfs train` killed between any two writes of a checkpoint (by the
TTFS_TEST_EXIT_AT hook, infra.killpoints) leaves a run at one epoch, which --resume finishes with the
weights and metrics of an uninterrupted run; and train never overwrites a folder holding other files."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from infra.errors import CheckpointError
from training.checkpoint import load_model
from training.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from training.trainer import run_is_complete, train
from ttfs.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs" / "mnist-784-400-10.yaml")
SETS = ["--set", "model.layers=[784, 8, 10]", "--set", "data.train_limit=100", "--set", "data.test_limit=50",
        "--set", "train.batch_size=50"]


def _train_argv(out, epochs, *extra):
    return ["train", "--config", CONFIG, "--out", str(out), "--quiet", *SETS, "--set", f"train.epochs={epochs}", *extra]


def _killed_train(out, epochs, point):
    env = dict(os.environ, TTFS_TEST_EXIT_AT=point)
    proc = subprocess.run([sys.executable, "-m", "ttfs.cli", *_train_argv(out, epochs)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 137, proc.stderr


def _committed(run) -> int:
    with np.load(run / "state.npz") as z:
        return int(z["epoch"]) + 1


def _metrics(run) -> list:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _without_seconds(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def _parts(run) -> list:
    return [p.name for p in run.iterdir() if p.name.endswith(".part")]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("atomic") / "straight"
    assert main(_train_argv(out, 3)) == 0
    return out


# kill point (second pass = epoch 2 of 3) -> (epoch state.npz holds, epoch load_model reads; None: an error)
KILLS = {
    "before_replace.state.npz:2": (1, 1),  # state.npz half written: still epoch 1, a .part file left
    "train.after_state:2": (2, None),      # epoch 2 committed, model and metrics still of epoch 1
    "train.after_model_npz:2": (2, None),  # model.npz of epoch 2, model.yaml of epoch 1
    "train.after_model_yaml:2": (2, 2),    # only metrics.jsonl misses epoch 2's line
}


@pytest.mark.parametrize("point", list(KILLS))
def test_a_kill_between_checkpoint_writes_leaves_one_epoch_and_resume_matches_a_straight_run(
        point, straight, tmp_path, capsys):
    run = tmp_path / "run"
    _killed_train(run, 3, point)
    epoch, model_epoch = KILLS[point]
    assert _committed(run) == epoch
    assert bool(_parts(run)) == point.startswith("before_replace")
    # what other tools read is the committed epoch, all of it, or a clear error naming --resume
    if model_epoch is None:
        with pytest.raises(CheckpointError, match="--resume"):
            load_model(run)
    else:
        assert load_model(run).meta["epochs_completed"] == model_epoch
    assert run_is_complete(run, epoch) == (epoch == 1)      # a sweep does not take a torn epoch 2 as done
    assert main(_train_argv(run, 3, "--resume")) == 0
    for a, b in zip(load_model(straight).weights, load_model(run).weights):
        np.testing.assert_array_equal(a, b)
    assert _without_seconds(_metrics(run)) == _without_seconds(_metrics(straight))
    assert load_model(run).meta["epochs_completed"] == 3 and run_is_complete(run, 3)
    assert _parts(run) == []                                # the stale .part file was cleaned up


def test_resume_of_a_run_killed_in_its_last_save_repairs_it_without_training(straight, tmp_path):
    run = tmp_path / "run"
    _killed_train(run, 2, "train.after_state:2")
    assert not run_is_complete(run, 2)
    assert main(_train_argv(run, 2, "--resume")) == 0
    assert run_is_complete(run, 2)
    assert [r["epoch"] for r in _metrics(run)] == [1, 2]
    assert _without_seconds(_metrics(run)) == _without_seconds(_metrics(straight)[:2])
    with np.load(run / "state.npz") as z:
        for l, w in enumerate(load_model(run).weights):
            np.testing.assert_array_equal(w, z[f"w{l}"])


def _cfg(epochs):
    return RunConfig(seed=3, data=DataConfig(train_limit=100, test_limit=50),
                     model=ModelConfig(layers=(784, 8, 10)), train=TrainConfig(epochs=epochs, batch_size=50))


def test_a_run_saved_before_state_npz_held_the_whole_epoch_still_resumes(tmp_path):
    old = tmp_path / "old"
    train(_cfg(1), old, progress=False)
    with np.load(old / "state.npz") as z:                   # the layout written before this change
        state = {k: z[k] for k in z.files if k not in ("history", "model_yaml") and not k.startswith("model_w")}
    np.savez(old / "state.npz", **state)
    assert run_is_complete(old, 1)
    train(_cfg(2), old, resume=True, progress=False)
    train(_cfg(2), tmp_path / "straight", progress=False)
    for a, b in zip(load_model(old).weights, load_model(tmp_path / "straight").weights):
        np.testing.assert_array_equal(a, b)
    assert [r["epoch"] for r in _metrics(old)] == [1, 2]


def test_train_refuses_a_folder_holding_anything_but_this_runs_files(tmp_path, capsys):
    other = tmp_path / "other"
    train(_cfg(1), other, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    for name in ("model.npz", "model.yaml"):               # another run's model, without its training state
        (foreign / name).write_bytes((other / name).read_bytes())
    before = {p.name: p.read_bytes() for p in foreign.iterdir()}
    for flag in ([], ["--resume"]):
        assert main(_train_argv(foreign, 1, *flag)) == 2
        assert "no state.npz" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in foreign.iterdir()} == before
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    assert main(_train_argv(notes, 1)) == 2
    assert "notes.txt" in capsys.readouterr().err and (notes / "notes.txt").read_text() == "mine"
    # an empty folder is fine; one holding only this run's config (stopped in epoch 1) too; another config is not
    (tmp_path / "empty").mkdir()
    train(_cfg(1), tmp_path / "empty", progress=False)
    started = tmp_path / "started"
    started.mkdir()
    (started / "config.yaml").write_text((other / "config.yaml").read_text())
    train(_cfg(1), started, progress=False)
    changed = yaml.safe_load((other / "config.yaml").read_text())
    changed["seed"] = 4
    (tmp_path / "changed").mkdir()
    (tmp_path / "changed" / "config.yaml").write_text(yaml.safe_dump(changed))
    with pytest.raises(CheckpointError, match="seed"):
        train(_cfg(1), tmp_path / "changed", progress=False)
