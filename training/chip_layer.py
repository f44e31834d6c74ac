"""What training sees of a chip: per layer the weights it computes with, its leak, thresholds and delay.

Training for a chip (`ttfs train --hw`) runs every batch on the network as one drawn chip computes
it; the chip's model (conductance levels, clipping, variation, noise, the passive column's leak)
lives in hwmodel (hwmodel.aware), which is above training, so training only knows this interface:

- `ChipView.draw(weights, step)`: the layers of the chip drawn for optimiser step `step` (seeded by
  it: the same step draws the same chip, so a resumed run trains the same way);
- `ChipView.nominal(weights)`: the layers without random draws (the chip a run is evaluated on);
- `ChipView.refresh(weights)`: called at the start of every epoch, to re-solve what is too slow to
  solve every step (hwmodel's exact wires), which draws then use until the next refresh;
- `ChipView.record()`: the chip's hardware config as a mapping (the run folder's hw.yaml);
- `ChipView.pull_back(weights, layers, grad_w, grad_lam)`: dLoss/dweights from the gradients with
  respect to each layer's effective weights and leak (exact where the map is differentiable,
  straight-through where it is not; docs/hwmodel.md, "Training for the chip", says which);
  `grad_rates` adds dLoss/d(each layer's ConductionForm.rates) to it the same way;
- `ChipView.conduction(layers)`: the chip's energy in the form training differentiates
  (`ConductionForm`: per cell pair the energy per model time unit it draws while conducting, the
  neurons' static power, and when the chip stops; training.energy_term computes the energy per
  image from the firing times, reg.energy_strength);
- `ChipView.static_power_w`: the static power of one neuron (W) the view's form counts, which a run
  records and a resumed run must keep.

An ideal run has no view, and training takes the same path bit for bit as before views existed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class ChipLayer:
    """One layer as a chip computes it, in model units."""

    w: np.ndarray                  # (K, n) effective weights
    lam: np.ndarray | None = None  # (n,) leak of each neuron (dv/dt = I - lam v); None: no leak
    v_th: np.ndarray | None = None  # (n,) threshold of each neuron; None: the model's v_th
    delay: float = 0.0             # model time from a crossing to the spike the next layer sees

    @property
    def ideal(self) -> bool:
        """True when the layer is today's ideal neuron with other weights (the fast kernels apply)."""
        return self.lam is None and self.v_th is None


@dataclass(frozen=True)
class ConductionForm:
    """The chip's energy per inference that training differentiates, as a function of firing times
    (model units): the cells' conduction and the neurons' static bias until t_stop.

    Cell pair (j, i) of layer l (input j's cells into neuron i: both rows of a dual-rail input,
    both columns of a differential neuron) draws rates[l][j, i] nanojoules per model time unit
    (v_read^2 tau_s (g_pos + g_neg)) while it conducts: from its input's spike time t_j until
    t_stop, or until min(t_i, t_stop) when `column_stops` (the neuron's own spike time t_i). t_stop
    is the window end, or with `stops_at_decision` min(t_end, t_dec + guard), t_dec the first
    output spike of the image. The neurons of all layers draw static_nj_per_t nanojoules per model
    time unit together (their comparators' and op-amps' bias) from 0 until t_stop."""

    rates: list            # per layer (K, n): nJ per model time unit of each conducting cell pair
    stops_at_decision: bool = False
    guard: float = 0.0     # model time from the first output spike to t_stop
    column_stops: bool = False
    static_nj_per_t: float = 0.0   # the static bias of every neuron of the chip: nJ per model time unit


class ChipView(Protocol):
    static_power_w: float

    def draw(self, weights: list[np.ndarray], step: int) -> list[ChipLayer]: ...

    def nominal(self, weights: list[np.ndarray]) -> list[ChipLayer]: ...

    def refresh(self, weights: list[np.ndarray]) -> None: ...

    def record(self) -> dict: ...

    def canonical(self, saved: dict) -> dict: ...

    def pull_back(self, weights: list[np.ndarray], layers: list[ChipLayer], grad_w: list[np.ndarray],
                  grad_lam: list[np.ndarray | None], grad_rates: list | None = None) -> list[np.ndarray]: ...

    def conduction(self, layers: list[ChipLayer]) -> ConductionForm: ...
