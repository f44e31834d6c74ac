"""The chip's energy per image as a loss term (reg.energy_strength), with exact gradients.

For integrator columns (at virtual ground) cell pair (j, i) of layer l draws rates[l][j, i] nJ per
model time unit from its input's spike time t_j until it stops, and the chip's neurons together
draw static_nj_per_t nJ per model time unit (their bias) until t_stop (training.chip_layer.ConductionForm):

    E = sum_l sum_j sum_i rates[l][j, i] (a_i - t_j)^+  +  static_nj_per_t t_stop,
    a_i = t_stop, or min(t_i, t_stop) (column gating),

t_stop = t_end, or min(t_end, t_dec + guard) with t_dec the first output spike (decision gating).
It is piecewise linear in the firing times and linear in the rates, so its gradients are exact
(kinks where an input's spike crosses t_stop or t_i, or the first output neuron changes):
dE/dt_j = -sum_i rates_ji [t_j < a_i], dE/dt_i = sum_j rates_ji [t_j < t_i] while t_i < t_stop,
dE/dt_stop = the rate of every pair conducting at t_stop + static_nj_per_t, passed to the first
output neuron when t_dec + guard < t_end (else t_stop is the constant t_end), dE/drates_ji =
(a_i - t_j)^+. Firing-time gradients join the network's exact backward pass (network.backprop's
`extra_gt`), rate gradients the chip's pull-back (ChipView.pull_back's `grad_rates`).
docs/regularizers.md, "Energy-aware training".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infra.errors import DataError
from infra.shapes import check_shape
from training import kernels, kernels_ref
from training.chip_layer import ConductionForm

_COLUMN = {"numba": kernels.column_conduction, "numpy": kernels_ref.column_conduction}


@dataclass
class EnergyTerm:
    """One batch's energy: conduction per image and layer and static per image (nJ), and the
    coef-weighted gradients of their sum."""

    per_layer_nj: np.ndarray     # (B, L): crossbar l's conduction energy per image
    gt: list                     # per layer l: d(coef sum_b E_b)/dt_out of layer l (B, n_l), None if zero
    g_rates: list                # per layer: d(coef sum_b E_b)/d rates[l] (K, n)
    static_nj: np.ndarray        # (B,): the neurons' static energy per image (all layers)

    @property
    def conduction_nj(self) -> np.ndarray:
        """(B,) the conduction energy of every image, nJ."""
        return self.per_layer_nj.sum(axis=1)

    @property
    def values_nj(self) -> np.ndarray:
        """(B,) the energy of every image the term counts (conduction + static), nJ."""
        return self.conduction_nj + self.static_nj


def decision_stop(t_out: np.ndarray, t_end: float, guard: float, gated: bool) -> tuple[np.ndarray, np.ndarray]:
    """The one rule of a gated chip's stop time (docs/hwmodel.md, "Gating"), in any time unit: per
    image t_stop = min(t_end, first output spike + guard) when `gated`, else t_end; returns (t_stop
    (B,), the first output neuron (B,), -1 where t_stop is the window end). hwmodel.behavioural's
    stop_times is this rule in seconds."""
    t_out = np.asarray(t_out, dtype=np.float64)
    b = len(t_out)
    if not gated or t_out.shape[1] == 0:
        return np.full(b, float(t_end)), np.full(b, -1)
    first = np.argmin(t_out, axis=1)
    t_stop = t_out[np.arange(b), first] + guard
    decided = t_stop < t_end
    return np.where(decided, t_stop, float(t_end)), np.where(decided, first, -1)


def stop_times(form: ConductionForm, t_out_last: np.ndarray, t_end: float) -> tuple[np.ndarray, np.ndarray]:
    """(t_stop (B,), the first output neuron (B,), -1 where t_stop is the window end)."""
    return decision_stop(t_out_last, t_end, form.guard, form.stops_at_decision)


def conduction_energy(form: ConductionForm, t_input, layer_times, t_end: float, coef: float = 1.0,
                      backend: str = "numba") -> EnergyTerm:
    """The energy of a batch (conduction and static) from its input spike times (B, n_in) and every
    layer's spike times [(B, n_l)] (model units, inf = silent, as network.forward's t_out), with
    gradients of coef x the batch's sum."""
    n_layers = len(form.rates)
    if len(layer_times) != n_layers:
        raise DataError(f"layer_times: {len(layer_times)} layers of spike times for a chip of {n_layers} layers")
    drivers = [np.asarray(t_input, dtype=np.float64)] + [np.asarray(t, dtype=np.float64) for t in layer_times]
    b = len(drivers[0])
    for l, rates in enumerate(form.rates):
        check_shape(f"spike times into layer {l}", drivers[l], (b, rates.shape[0]))
        check_shape(f"spike times of layer {l}", drivers[l + 1], (b, rates.shape[1]))
    t_stop, first = stop_times(form, drivers[-1], t_end)
    per_layer = np.zeros((b, n_layers))
    gt: list = [None] * n_layers
    g_rates = []
    g_stop = np.full(b, float(form.static_nj_per_t))
    for l, rates in enumerate(form.rates):
        rates = np.ascontiguousarray(rates, dtype=np.float64)
        t_in = drivers[l]
        if form.column_stops:
            t_own = drivers[l + 1]
            own_first = t_own < t_stop[:, None]
            a = np.ascontiguousarray(np.where(own_first, t_own, t_stop[:, None]))
            values, g_r, g_tin, g_a = _COLUMN[backend](np.ascontiguousarray(t_in), a, rates)
            gt[l] = _add(gt[l], coef * np.where(own_first, g_a, 0.0))
            g_stop += np.where(own_first, 0.0, g_a).sum(axis=1)
        else:
            row = rates.sum(axis=1)
            on = t_in < t_stop[:, None]
            rem = np.where(on, t_stop[:, None] - np.where(on, t_in, 0.0), 0.0)
            values = rem @ row
            g_r = np.repeat(rem.sum(axis=0)[:, None], rates.shape[1], axis=1)
            g_tin = np.where(on, -row[None, :], 0.0)
            g_stop += on @ row
        per_layer[:, l] = values
        g_rates.append(coef * g_r)
        if l > 0:
            gt[l - 1] = _add(gt[l - 1], coef * g_tin)
    decided = first >= 0
    if decided.any():
        g_out = np.zeros_like(drivers[-1])
        g_out[np.flatnonzero(decided), first[decided]] = coef * g_stop[decided]
        gt[-1] = _add(gt[-1], g_out)
    return EnergyTerm(per_layer, gt, g_rates, form.static_nj_per_t * t_stop)


def _add(a, b):
    return b if a is None else a + b
