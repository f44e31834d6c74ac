"""train.lr_schedule: the learning rate of every epoch for each kind, and runs that use them."""
import json
import logging
import math

import numpy as np
import pytest

from infra.config import load_config
from infra.errors import CheckpointError, ConfigError
from training.checkpoint import load_model
from training.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from training.optim import WeightAverage
from training.trainer import train


def test_exponential_is_the_default_and_gives_todays_rates_exactly():
    assert TrainConfig().lr_schedule == "exponential"
    for lr, decay in ((1e-3, 0.95), (1e-4, 0.99), (5e-4, 1.0), (2e-4, 0.98)):
        tc = TrainConfig(epochs=120, lr=lr, lr_decay=decay)
        for epoch in range(120):
            assert tc.epoch_lr(epoch) == lr * decay ** epoch      # the trainer's rate before the key existed


def test_cosine_falls_from_lr_towards_the_floor_over_the_epochs():
    tc = TrainConfig(epochs=4, lr=1e-3, lr_schedule="cosine")
    assert [tc.epoch_lr(e) for e in range(4)] == pytest.approx([1e-3, 1e-3 * (1 + math.sqrt(0.5)) / 2, 0.5e-3,
                                                                1e-3 * (1 - math.sqrt(0.5)) / 2], rel=1e-15)
    floor = TrainConfig(epochs=10, lr=1e-3, lr_schedule="cosine", lr_min=1e-4)
    rates = [floor.epoch_lr(e) for e in range(10)]
    assert rates[0] == 1e-3 and all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] > 1e-4
    assert rates[5] == pytest.approx((1e-3 + 1e-4) / 2, rel=1e-15)      # half way: the mean of lr and floor
    assert TrainConfig(epochs=1, lr=3e-4, lr_schedule="cosine").epoch_lr(0) == 3e-4


def test_constant_keeps_lr():
    tc = TrainConfig(epochs=5, lr=2e-4, lr_schedule="constant")
    assert [tc.epoch_lr(e) for e in range(5)] == [2e-4] * 5


@pytest.mark.parametrize("overrides, text", [
    (["train.lr_schedule=step"], "train.lr_schedule: must be one of exponential, cosine, constant"),
    (["train.lr_schedule=cosine", "train.lr_decay=0.9"], "train.lr_decay: is used by lr_schedule exponential only"),
    (["train.lr_schedule=constant", "train.lr_min=1e-4"], "train.lr_min: is used by lr_schedule cosine only"),
    (["train.lr_schedule=cosine", "train.lr=1e-4", "train.lr_min=1e-4"], r"train.lr_min: must be in \[0, train.lr\)"),
])
def test_schedule_keys_that_would_be_ignored_or_wrong_are_errors(overrides, text):
    with pytest.raises(ConfigError, match=text):
        load_config(None, RunConfig, overrides)


def _cfg(epochs: int, **train) -> RunConfig:
    return RunConfig(seed=5, data=DataConfig(train_limit=200, test_limit=50), model=ModelConfig(layers=(784, 12, 10)),
                     train=TrainConfig(epochs=epochs, batch_size=50, lr=3e-3, lr_schedule="cosine", **train))


class _StopAfterFirstEpoch(logging.Handler):
    """Raises KeyboardInterrupt on the trainer's "epoch 1/..." line: a Ctrl-C right after epoch 1 was committed."""

    def emit(self, record):
        if record.getMessage().startswith("epoch 1/"):
            raise KeyboardInterrupt


def test_a_resumed_cosine_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    train(_cfg(3, lr_min=1e-4, ema_decay=0.9), tmp_path / "straight", progress=False)
    trainer_log, stop = logging.getLogger("training.trainer"), _StopAfterFirstEpoch()
    trainer_log.addHandler(stop)
    level = trainer_log.level
    trainer_log.setLevel(logging.INFO)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(_cfg(3, lr_min=1e-4, ema_decay=0.9), tmp_path / "resumed", progress=False)
    finally:
        trainer_log.removeHandler(stop)
        trainer_log.setLevel(level)
    assert load_model(tmp_path / "resumed").meta["epochs_completed"] == 1
    train(_cfg(3, lr_min=1e-4, ema_decay=0.9), tmp_path / "resumed", resume=True, progress=False)
    a, b = load_model(tmp_path / "straight"), load_model(tmp_path / "resumed")
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(x, y)
    lrs = [json.loads(x)["lr"] for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert lrs == [_cfg(3, lr_min=1e-4).train.epoch_lr(e) for e in range(3)] and lrs[0] > lrs[1] > lrs[2]


def test_a_cosine_run_cannot_resume_with_other_epochs(tmp_path):
    train(_cfg(1), tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match=r"differs from the saved one in train\.epochs"):
        train(_cfg(2), tmp_path / "run", resume=True, progress=False)


def test_weight_average_restarts_entries_at_given_values():
    avg = WeightAverage([(3, 2)], 0.9)
    for k in range(4):
        avg.update([np.full((3, 2), float(k))])
    before = avg.weights()[0]
    avg.restart_at(0, (slice(None), np.array([True, False])), np.array([[7.0], [8.0], [9.0]]))
    after = avg.weights()[0]
    np.testing.assert_allclose(after[:, 0], [7.0, 8.0, 9.0], rtol=1e-15)
    np.testing.assert_array_equal(after[:, 1], before[:, 1])
