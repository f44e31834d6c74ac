"""Trainer: checkpoint round trip, resume equal to an uninterrupted run, bad checkpoints rejected."""
import json

import numpy as np
import pytest
import yaml

from training.checkpoint import load_model
from training.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from training.errors import CheckpointError
from training.trainer import train


def _cfg(epochs):
    return RunConfig(seed=3, data=DataConfig(train_limit=300, test_limit=100),
                     model=ModelConfig(layers=(784, 20, 10)), train=TrainConfig(epochs=epochs, batch_size=50))


def test_checkpoint_round_trip(tmp_path):
    train(_cfg(1), tmp_path / "run", progress=False, log=lambda *_: None)
    run = load_model(tmp_path / "run")
    state = np.load(tmp_path / "run" / "state.npz")
    for l, w in enumerate(run.weights):
        np.testing.assert_array_equal(w, state[f"w{l}"])
    assert [w.shape for w in run.weights] == [(784, 20), (20, 10)]
    meta = yaml.safe_load((tmp_path / "run" / "model.yaml").read_text())
    for key in ("layers", "v_th", "t_in", "t_end", "encoding", "dataset", "test_accuracy",
                "spikes_per_neuron", "spikes_per_neuron_mean"):
        assert key in meta
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 1 and metrics[0]["test_accuracy"] == meta["test_accuracy"]
    assert len(metrics[0]["spikes_per_neuron"]) == 1


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    train(_cfg(2), tmp_path / "straight", progress=False, log=lambda *_: None)
    train(_cfg(1), tmp_path / "resumed", progress=False, log=lambda *_: None)
    # an epoch's metrics line half-written by a crash must not survive the resume
    with open(tmp_path / "resumed" / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 2, "trunc')
    train(_cfg(2), tmp_path / "resumed", resume=True, progress=False, log=lambda *_: None)
    a, b = load_model(tmp_path / "straight"), load_model(tmp_path / "resumed")
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(x, y)
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


def test_existing_run_needs_resume_and_same_config(tmp_path):
    train(_cfg(1), tmp_path / "run", progress=False, log=lambda *_: None)
    with pytest.raises(CheckpointError, match="--resume"):
        train(_cfg(1), tmp_path / "run", progress=False, log=lambda *_: None)
    other = RunConfig(seed=4, data=_cfg(1).data, model=_cfg(1).model, train=_cfg(2).train)
    with pytest.raises(CheckpointError, match="seed"):
        train(other, tmp_path / "run", resume=True, progress=False, log=lambda *_: None)


def _write(run, weights, layers):
    np.savez(run / "model.npz", **{f"w{l}": w for l, w in enumerate(weights)})
    (run / "model.yaml").write_text(yaml.safe_dump({"layers": layers, "v_th": 1.0, "t_in": 1.0, "t_end": 4.0}))


def test_bad_checkpoints_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path)
    _write(tmp_path, [np.zeros((784, 20)), np.zeros((21, 10))], [784, 20, 10])
    with pytest.raises(CheckpointError, match="do not chain"):
        load_model(tmp_path)
    w = np.zeros((784, 20))
    w[3, 4] = np.nan
    _write(tmp_path, [w, np.zeros((20, 10))], [784, 20, 10])
    with pytest.raises(CheckpointError, match="w0 holds 1 NaN"):
        load_model(tmp_path)
    _write(tmp_path, [np.zeros((784, 20)), np.zeros((20, 10))], [784, 30, 10])
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(tmp_path)
