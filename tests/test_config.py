"""YAML configs into frozen dataclasses: errors name the key."""
import dataclasses
from pathlib import Path

import pytest

from training.config import RunConfig
from infra.errors import ConfigError
from infra.config import load_config

CONFIGS = sorted(Path(__file__).parent.parent.glob("configs/*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_training_configs_load(path):
    cfg = load_config(path, RunConfig)
    assert cfg.model.layers[0] == 784 and cfg.model.layers[-1] == 10


def test_overrides_with_dotted_keys():
    cfg = load_config(CONFIGS[0], RunConfig, ["train.epochs=3", "train.batch_size=32", "train.lr=2e-3",
                                              "data.train_limit=100", "seed=7", "model.layers=[784, 50, 10]"])
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.data.train_limit, cfg.seed) == (3, 32, 2e-3, 100, 7)
    assert cfg.model.layers == (784, 50, 10)
    cfg = load_config(CONFIGS[0], RunConfig, ["train.lr_layer_scale=[0.5, 2.5]", "train.ema_decay=0.999"])
    assert (cfg.train.lr_layer_scale, cfg.train.ema_decay) == ((0.5, 2.5), 0.999)
    assert load_config(CONFIGS[0], RunConfig, ["train.ema_decay=null"]).train.ema_decay is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1


@pytest.mark.parametrize("override, message", [
    ("train.epoch=3", r"train\.epoch: unknown key"),
    ("bogus=1", r"bogus: unknown key"),
    ("train.lr=fast", r"train\.lr: expected a number"),
    ("train.epochs=2.5", r"train\.epochs: expected an integer"),
    ("train.lr=-1", r"train\.lr: must be > 0"),
    ("model.t_end=0.5", r"model\.t_end: must be > model\.t_in"),
    ("reg.kind=l2", r"reg\.kind: must be one of"),
    ("model.layers=[784, 0, 10]", r"model\.layers"),
    ("data.dataset=cifar", r"data\.dataset"),
    ("reg.kind=membrane", r"reg\.v_hat: is required"),
    ("train.lr_layer_scale=[1.0]", r"train\.lr_layer_scale: has 1 factors but the model has 2"),
    ("train.lr_layer_scale=[1.0, 0]", r"train\.lr_layer_scale: factors must be > 0"),
    ("train.ema_decay=1", r"train\.ema_decay: must be in \(0, 1\)"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS[0], RunConfig, [override])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", RunConfig)
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, RunConfig)


@pytest.mark.parametrize("v_hat, ok", [("0", True), ("0.5", True), ("-0.1", False), (".inf", False)])
def test_membrane_v_hat_from_zero_up(v_hat, ok):
    """The membrane loss's reference may be 0 (the potential's rest, the paper's lowest v_hat)."""
    overrides = ["reg.kind=membrane", "reg.strength=1e-6", f"reg.v_hat={v_hat}"]
    if ok:
        assert load_config(CONFIGS[0], RunConfig, overrides).reg.v_hat == float(v_hat)
    else:
        with pytest.raises(ConfigError, match=r"reg\.v_hat"):
            load_config(CONFIGS[0], RunConfig, overrides)
