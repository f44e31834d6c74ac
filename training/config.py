"""Typed, frozen configuration of a training run; every default lives here.

Each dataclass checks its own ranges on construction and raises ConfigError naming the key
(`model.t_end: must be > model.t_in (got 0.5 <= 1.0)`). Loading YAML into these (unknown keys,
types, dotted overrides) is `infra.config`'s job.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from infra.config import require
from training.data import DATASETS


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and neuron constants (model time is dimensionless)."""

    layers: tuple[int, ...] = (784, 400, 10)
    v_th: float = 1.0            # firing threshold
    t_in: float = 1.0            # a black pixel spikes at t_in, a white one at 0
    t_end: float = 4.0           # window end: a neuron not at threshold by then is silent
    init_mean_gain: float = 2.0  # initial weights ~ N(init_mean_gain / n_in, (init_std_gain / sqrt(n_in))^2)
    init_std_gain: float = 1.4

    def __post_init__(self):
        require(len(self.layers) >= 2, "model.layers", f"needs at least input and output sizes (got {list(self.layers)})")
        require(all(int(n) == n and n >= 1 for n in self.layers), "model.layers",
                f"sizes must be positive integers (got {list(self.layers)})")
        require(self.v_th > 0, "model.v_th", f"must be > 0 (got {self.v_th})")
        require(self.t_in > 0, "model.t_in", f"must be > 0 (got {self.t_in})")
        require(self.t_end > self.t_in, "model.t_end", f"must be > model.t_in (got {self.t_end} <= {self.t_in})")
        require(self.init_std_gain >= 0, "model.init_std_gain", f"must be >= 0 (got {self.init_std_gain})")

    @property
    def n_hidden_layers(self) -> int:
        return len(self.layers) - 2


FIRE_PENALTY_ON = ("dead", "silent")


@dataclass(frozen=True)
class LossConfig:
    """Softmax cross-entropy on -t_out/tau_soft plus gamma_t * sum_k (t_out_k - t_ref)^2, plus the
    firing penalty fire_penalty * (batch mean of the sum over the silent hidden (sample, neuron)
    pairs that fire_penalty_on selects of v_th - v(t_end)); docs/model.md."""

    tau_soft: float = 0.5
    gamma_t: float = 1e-3
    t_ref: float = 2.0
    fire_penalty: float = 0.0        # 0: off (the training of a config without the key)
    fire_penalty_on: str = "dead"    # "dead": neurons silent for the whole batch; "silent": every silent pair
    fire_penalty_epochs: int | None = None  # the penalty acts in the first N epochs only (None: in every epoch)

    def __post_init__(self):
        require(self.tau_soft > 0, "loss.tau_soft", f"must be > 0 (got {self.tau_soft})")
        require(self.gamma_t >= 0, "loss.gamma_t", f"must be >= 0 (got {self.gamma_t})")
        require(math.isfinite(self.fire_penalty) and self.fire_penalty >= 0, "loss.fire_penalty",
                f"must be a finite number >= 0 (got {self.fire_penalty})")
        require(self.fire_penalty_on in FIRE_PENALTY_ON, "loss.fire_penalty_on",
                f"must be one of {', '.join(FIRE_PENALTY_ON)} (got {self.fire_penalty_on!r})")
        require(self.fire_penalty_epochs is None or self.fire_penalty_epochs >= 0, "loss.fire_penalty_epochs",
                f"must be >= 0, or null for every epoch (got {self.fire_penalty_epochs})")
        require(self.fire_penalty_epochs is None or self.fire_penalty > 0, "loss.fire_penalty_epochs",
                "limits the firing penalty to the first epochs, so it needs loss.fire_penalty > 0")

    def fire_coef(self, epoch: int) -> float:
        """The firing penalty's lambda in epoch `epoch` (0-based): 0 from epoch fire_penalty_epochs on."""
        if self.fire_penalty_epochs is not None and epoch >= self.fire_penalty_epochs:
            return 0.0
        return self.fire_penalty


REG_KINDS = ("none", "m-ssr", "f-ssr", "membrane")


@dataclass(frozen=True)
class RegConfig:
    """Sparse-firing regulariser on the hidden layers (strength multiplies the per-image sum), and the
    chip's energy: its cells' conduction and its neurons' static bias until the stop
    (energy_strength: loss per nanojoule per image, docs/regularizers.md; needs a run trained for a
    chip, 0 = off)."""

    kind: str = "none"
    strength: float | tuple[float, ...] = 0.0
    v_hat: float | None = None
    energy_strength: float = 0.0

    def __post_init__(self):
        require(self.kind in REG_KINDS, "reg.kind", f"must be one of {', '.join(REG_KINDS)} (got {self.kind!r})")
        values = self.strength if isinstance(self.strength, tuple) else (self.strength,)
        require(all(s >= 0 for s in values), "reg.strength", f"must be >= 0 (got {self.strength})")
        require(isinstance(self.energy_strength, (int, float)) and math.isfinite(self.energy_strength)
                and self.energy_strength >= 0, "reg.energy_strength",
                f"must be a finite number >= 0, in loss per nJ per image (got {self.energy_strength})")
        if self.kind == "membrane":
            require(self.v_hat is not None, "reg.v_hat", "is required when reg.kind is 'membrane'")
            require(math.isfinite(self.v_hat) and self.v_hat >= 0, "reg.v_hat",
                    f"must be a finite value >= 0 (got {self.v_hat})")

    def strengths(self, n_hidden: int) -> tuple[float, ...]:
        """One strength per hidden layer (all zero when kind is 'none')."""
        if self.kind == "none":
            return (0.0,) * n_hidden
        if isinstance(self.strength, tuple):
            require(len(self.strength) == n_hidden, "reg.strength",
                    f"has {len(self.strength)} values but the model has {n_hidden} hidden layers")
            return self.strength
        return (float(self.strength),) * n_hidden


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"
    train_limit: int | None = None   # use only the first N training images
    test_limit: int | None = None
    data_dir: str | None = None

    def __post_init__(self):
        require(self.dataset in DATASETS, "data.dataset",
                f"must be one of {', '.join(DATASETS)} (got {self.dataset!r})")
        for key in ("train_limit", "test_limit"):
            value = getattr(self, key)
            require(value is None or value >= 1, f"data.{key}", f"must be >= 1 (got {value})")


LR_SCHEDULES = ("exponential", "cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "exponential"  # learning rate of each epoch (`epoch_lr`; docs/model.md)
    lr_decay: float = 1.0          # exponential: learning rate multiplied by this after every epoch
    lr_min: float = 0.0            # cosine: the rate it falls towards at the end of train.epochs
    lr_layer_scale: tuple[float, ...] | None = None  # one factor per weight layer on lr (None: all 1)
    shift_px: int = 0              # augmentation: move each training image by up to this many pixels
    flip: bool = False             # augmentation: mirror half the training images left to right (Fashion-MNIST)
    init_from: str | None = None   # a run folder whose saved model.npz starts this run (fine-tuning)
    ema_decay: float | None = None # evaluate and save the moving average of the weights over steps (None: last weights)
    backend: str = "numba"         # or "numpy" (the reference path; slow)

    def __post_init__(self):
        require(self.epochs >= 1, "train.epochs", f"must be >= 1 (got {self.epochs})")
        require(self.batch_size >= 1, "train.batch_size", f"must be >= 1 (got {self.batch_size})")
        require(self.lr > 0, "train.lr", f"must be > 0 (got {self.lr})")
        require(0 < self.lr_decay <= 1, "train.lr_decay", f"must be in (0, 1] (got {self.lr_decay})")
        require(self.lr_schedule in LR_SCHEDULES, "train.lr_schedule",
                f"must be one of {', '.join(LR_SCHEDULES)} (got {self.lr_schedule!r})")
        require(self.lr_decay == 1 or self.lr_schedule == "exponential", "train.lr_decay",
                f"is used by lr_schedule exponential only (got {self.lr_decay} with {self.lr_schedule}); "
                "set train.lr_decay=1")
        require(0 <= self.lr_min < self.lr, "train.lr_min", f"must be in [0, train.lr) (got {self.lr_min})")
        require(self.lr_min == 0 or self.lr_schedule == "cosine", "train.lr_min",
                f"is used by lr_schedule cosine only (got {self.lr_min} with {self.lr_schedule}); set train.lr_min=0")
        require(self.lr_layer_scale is None or all(x > 0 for x in self.lr_layer_scale), "train.lr_layer_scale",
                f"factors must be > 0 (got {self.lr_layer_scale})")
        require(0 <= self.shift_px <= 8, "train.shift_px", f"must be in [0, 8] pixels (got {self.shift_px})")
        require(self.ema_decay is None or 0 < self.ema_decay < 1, "train.ema_decay",
                f"must be in (0, 1), or null for no averaging (got {self.ema_decay})")
        require(self.backend in ("numba", "numpy"), "train.backend",
                f"must be 'numba' or 'numpy' (got {self.backend!r})")

    def epoch_lr(self, epoch: int) -> float:
        """The learning rate of (0-based) epoch `epoch` of `epochs`:
        exponential: lr lr_decay^epoch; constant: lr;
        cosine: lr_min + (lr - lr_min) (1 + cos(pi epoch / epochs)) / 2, lr in the first epoch,
        falling to just above lr_min in the last (it would reach lr_min at epoch = epochs)."""
        if self.lr_schedule == "exponential":
            return self.lr * self.lr_decay ** epoch
        if self.lr_schedule == "cosine":
            return self.lr_min + (self.lr - self.lr_min) * 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))
        return self.lr


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs; `seed` feeds every random draw."""

    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    reg: RegConfig = field(default_factory=RegConfig)

    def __post_init__(self):
        require(self.seed >= 0, "seed", f"must be >= 0 (got {self.seed})")
        require(self.model.layers[0] == 784, "model.layers",
                f"the first size must be 784 for 28x28 images (got {self.model.layers[0]})")
        self.reg.strengths(self.model.n_hidden_layers)  # checks a per-layer list's length
        scale = self.train.lr_layer_scale
        require(scale is None or len(scale) == len(self.model.layers) - 1, "train.lr_layer_scale",
                f"has {len(scale or ())} factors but the model has {len(self.model.layers) - 1} weight layers")
