"""Trainer: checkpoint round trip, resume equal to an uninterrupted run, bad checkpoints rejected."""
import json

import numpy as np
import pytest
import yaml

from training.checkpoint import load_model
from training.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from infra.errors import CheckpointError
from training.trainer import train


def _cfg(epochs):
    return RunConfig(seed=3, data=DataConfig(train_limit=300, test_limit=100),
                     model=ModelConfig(layers=(784, 20, 10)), train=TrainConfig(epochs=epochs, batch_size=50))


def test_checkpoint_round_trip(tmp_path):
    train(_cfg(1), tmp_path / "run", progress=False)
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
    train(_cfg(2), tmp_path / "straight", progress=False)
    train(_cfg(1), tmp_path / "resumed", progress=False)
    # an epoch's metrics line half-written by a crash must not survive the resume
    with open(tmp_path / "resumed" / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 2, "trunc')
    train(_cfg(2), tmp_path / "resumed", resume=True, progress=False)
    a, b = load_model(tmp_path / "straight"), load_model(tmp_path / "resumed")
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(x, y)
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


def test_existing_run_needs_resume_and_same_config(tmp_path):
    train(_cfg(1), tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="--resume"):
        train(_cfg(1), tmp_path / "run", progress=False)
    other = RunConfig(seed=4, data=_cfg(1).data, model=_cfg(1).model, train=_cfg(2).train)
    with pytest.raises(CheckpointError, match="seed"):
        train(other, tmp_path / "run", resume=True, progress=False)


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


def test_shift_images_moves_each_image_by_its_own_offset():
    from training.augment import shift_images
    rng = np.random.default_rng(0)
    images = np.zeros((200, 28, 28), np.uint8)
    images[:, 10:18, 9:20] = rng.integers(1, 256, (200, 8, 11))   # content away from the border
    moved = shift_images(images, 2, np.random.default_rng(5))
    again = shift_images(images, 2, np.random.default_rng(5))
    np.testing.assert_array_equal(moved, again)                    # same seed, same shifts
    offsets = set()
    for a, b in zip(images, moved):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(np.roll(a, (dy, dx), axis=(0, 1)), b)]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) == 25                                      # every offset in [-2, 2]^2 drawn
    # content moved past the border is cut and black comes in
    edge = np.full((20, 28, 28), 200, np.uint8)
    out = shift_images(edge, 3, np.random.default_rng(1))
    black_rows = [(o == 0).all(axis=1).sum() + (o == 0).all(axis=0).sum() for o in out]
    assert max(black_rows) > 0 and out.max() == 200 and set(np.unique(out)) <= {0, 200}
    assert shift_images(images, 0, np.random.default_rng(0)) is images


def test_flip_images_mirrors_about_half_and_nothing_else():
    from training.augment import augment_images, flip_images
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (400, 28, 28)).astype(np.uint8)
    out = flip_images(images, np.random.default_rng(3))
    np.testing.assert_array_equal(out, flip_images(images, np.random.default_rng(3)))
    mirrored = np.array([np.array_equal(o, a[:, ::-1]) for a, o in zip(images, out)])
    same = np.array([np.array_equal(o, a) for a, o in zip(images, out)])
    assert (mirrored ^ same).all()                                # each image kept or mirrored
    assert 150 < mirrored.sum() < 250                             # with probability 1/2
    # no augmentation asked: the images themselves
    assert augment_images(images, 0, False, 0, 0) is images
    # flip on top of a shift: the same shifted images, some mirrored
    shifted = augment_images(images, 1, False, 7, 2)
    both = augment_images(images, 1, True, 7, 2)
    assert all(np.array_equal(b, s) or np.array_equal(b, s[:, ::-1]) for s, b in zip(shifted, both))
    assert not np.array_equal(both, shifted)


def test_resume_with_augmentation_equals_an_uninterrupted_run(tmp_path):
    def cfg(epochs):
        base = _cfg(epochs)
        return RunConfig(seed=base.seed, data=base.data, model=base.model,
                         train=TrainConfig(epochs=epochs, batch_size=50, shift_px=2, flip=True))
    train(cfg(2), tmp_path / "straight", progress=False)
    train(cfg(1), tmp_path / "resumed", progress=False)
    train(cfg(2), tmp_path / "resumed", resume=True, progress=False)
    plain = tmp_path / "plain"
    train(_cfg(2), plain, progress=False)
    a, b, c = load_model(tmp_path / "straight"), load_model(tmp_path / "resumed"), load_model(plain)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.weights[0], c.weights[0])        # augmentation changed training


def test_init_from_starts_at_another_runs_weights(tmp_path):
    from infra.errors import ConfigError
    train(_cfg(1), tmp_path / "base", progress=False)
    base = load_model(tmp_path / "base")
    tiny = RunConfig(seed=3, data=_cfg(1).data, model=_cfg(1).model,
                     train=TrainConfig(epochs=1, batch_size=50, lr=1e-12, init_from=str(tmp_path / "base")))
    rec = train(tiny, tmp_path / "tuned", progress=False)
    tuned = load_model(tmp_path / "tuned")
    for a, b in zip(base.weights, tuned.weights):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-9)        # Adam moves a weight by ~lr per step
    assert rec["test_accuracy"] == pytest.approx(base.meta["test_accuracy"], abs=0.011)
    other = RunConfig(seed=3, data=_cfg(1).data, model=ModelConfig(layers=(784, 21, 10)),
                      train=TrainConfig(epochs=1, batch_size=50, init_from=str(tmp_path / "base")))
    with pytest.raises(ConfigError, match=r"train.init_from: .* has layers \(784, 20, 10\) but this run has layers"):
        train(other, tmp_path / "bad", progress=False)
    missing = RunConfig(seed=3, data=_cfg(1).data, model=_cfg(1).model,
                        train=TrainConfig(epochs=1, init_from=str(tmp_path / "nowhere")))
    with pytest.raises(CheckpointError, match="nowhere"):
        train(missing, tmp_path / "bad2", progress=False)


def test_weight_average_is_the_debiased_moving_average_of_the_steps():
    from training.optim import WeightAverage
    rng = np.random.default_rng(1)
    steps = [[rng.normal(size=(3, 2)), rng.normal(size=(2, 4))] for _ in range(7)]
    avg = WeightAverage([(3, 2), (2, 4)], 0.8)
    for ws in steps:
        avg.update(ws)
    coef = np.array([0.2 * 0.8 ** (6 - s) for s in range(7)])
    coef /= coef.sum()                                             # = /(1 - 0.8^7)
    for l in range(2):
        expected = sum(c * ws[l] for c, ws in zip(coef, steps))
        np.testing.assert_allclose(avg.weights()[l], expected, rtol=1e-12)
    one = WeightAverage([(3, 2)], 0.999)
    one.update([steps[0][0]])
    np.testing.assert_allclose(one.weights()[0], steps[0][0], rtol=1e-12)   # no pull towards zero
    with pytest.raises(ValueError, match="no step"):
        WeightAverage([(3, 2)], 0.9).weights()


def test_ema_run_saves_the_average_and_resumes_exactly(tmp_path):
    def cfg(epochs, ema):
        base = _cfg(epochs)
        return RunConfig(seed=base.seed, data=base.data, model=base.model,
                         train=TrainConfig(epochs=epochs, batch_size=50, ema_decay=ema))
    train(cfg(2, 0.9), tmp_path / "straight", progress=False)
    train(cfg(1, 0.9), tmp_path / "resumed", progress=False)
    train(cfg(2, 0.9), tmp_path / "resumed", resume=True, progress=False)
    train(cfg(2, None), tmp_path / "plain", progress=False)
    a, b = load_model(tmp_path / "straight"), load_model(tmp_path / "resumed")
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(x, y)
    # averaging does not change the steps: the stepped weights equal the plain run's
    state, plain = np.load(tmp_path / "straight" / "state.npz"), load_model(tmp_path / "plain")
    for l, w in enumerate(plain.weights):
        np.testing.assert_array_equal(state[f"w{l}"], w)
        assert not np.array_equal(a.weights[l], w)                 # model.npz holds the average
    # model.yaml describes the saved (averaged) weights
    from training.data import load_split
    from training.evaluate import evaluate
    test = load_split("mnist", "test", None, 100)
    meta = yaml.safe_load((tmp_path / "straight" / "model.yaml").read_text())
    got = evaluate(a.weights, a.model, test.images, test.labels)
    assert meta["test_accuracy"] == got["accuracy"]
    assert meta["spikes_per_neuron"] == got["spikes_per_neuron"]
    metrics = [json.loads(x) for x in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    plain_metrics = [json.loads(x) for x in (tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()]
    assert [m["test_accuracy_last_weights"] for m in metrics] == [m["test_accuracy"] for m in plain_metrics]
    with pytest.raises(CheckpointError, match="train.ema_decay"):
        train(cfg(3, 0.5), tmp_path / "straight", resume=True, progress=False)


def test_adam_layer_scales_multiply_each_arrays_learning_rate():
    from training.optim import Adam
    rng = np.random.default_rng(2)
    w0 = [rng.normal(size=(4, 3)), rng.normal(size=(3, 2))]
    grads = [[rng.normal(size=(4, 3)), rng.normal(size=(3, 2))] for _ in range(5)]
    scaled = [w.copy() for w in w0]
    opt = Adam([w.shape for w in w0], 1e-2, lr_scales=[0.5, 3.0])
    for g in grads:
        opt.step(scaled, g)
    for l, lr in enumerate([0.5e-2, 3e-2]):
        alone = [w0[l].copy()]
        ref = Adam([w0[l].shape], lr)
        for g in grads:
            ref.step(alone, [g[l]])
        np.testing.assert_allclose(scaled[l], alone[0], rtol=1e-13)
    with pytest.raises(ValueError, match="1 lr_scales for 2"):
        Adam([(4, 3), (3, 2)], 1e-2, lr_scales=[1.0])


def test_run_saved_before_the_new_keys_resumes_and_rejects_adding_them(tmp_path):
    run = tmp_path / "old"
    train(_cfg(1), run, progress=False)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    del saved["train"]["ema_decay"], saved["train"]["lr_layer_scale"]     # as written before they existed
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    train(_cfg(2), run, resume=True, progress=False)
    train(_cfg(2), tmp_path / "straight", progress=False)
    for x, y in zip(load_model(run).weights, load_model(tmp_path / "straight").weights):
        np.testing.assert_array_equal(x, y)
    base = _cfg(3)
    for changed, key in ((TrainConfig(epochs=3, batch_size=50, ema_decay=0.9), "train.ema_decay"),
                         (TrainConfig(epochs=3, batch_size=50, lr_layer_scale=(1.0, 2.0)), "train.lr_layer_scale")):
        cfg = RunConfig(seed=base.seed, data=base.data, model=base.model, train=changed)
        with pytest.raises(CheckpointError, match=key):
            train(cfg, run, resume=True, progress=False)


def test_lr_layer_scale_run_resumes_exactly_and_changes_training(tmp_path):
    def cfg(epochs, scale):
        base = _cfg(epochs)
        return RunConfig(seed=base.seed, data=base.data, model=base.model,
                         train=TrainConfig(epochs=epochs, batch_size=50, lr_layer_scale=scale))
    train(cfg(2, (0.5, 3.0)), tmp_path / "straight", progress=False)
    train(cfg(1, (0.5, 3.0)), tmp_path / "resumed", progress=False)
    train(cfg(2, (0.5, 3.0)), tmp_path / "resumed", resume=True, progress=False)
    train(cfg(2, (1.0, 1.0)), tmp_path / "ones", progress=False)
    train(_cfg(2), tmp_path / "plain", progress=False)
    a, b = load_model(tmp_path / "straight"), load_model(tmp_path / "resumed")
    ones, plain = load_model(tmp_path / "ones"), load_model(tmp_path / "plain")
    for l in range(2):
        np.testing.assert_array_equal(a.weights[l], b.weights[l])
        np.testing.assert_array_equal(ones.weights[l], plain.weights[l])    # factors of 1 change nothing
        assert not np.array_equal(a.weights[l], plain.weights[l])
