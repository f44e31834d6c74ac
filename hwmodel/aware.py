"""The chip as training sees it: `ChipTraining`, the `training.chip_layer.ChipView` of a hardware config.

Per layer it runs the chain `map_model` + `draw_chip` + `layer_circuit` run, by calling their
functions (mapping.layer_conductances with its clipping, quantise, layer_scale; chip.cell_factors
/ program's draws, comparator_offsets; neurons.layer_circuit), and converts the LayerCircuit

    c_eff dy/dt = sum_j drive_ij [t >= t_j] - g_leak y,   fire at y = theta_v,

to model units (t = t_s / tau_s, v = v_th y / V_th_l with V_th_l the layer's nominal threshold):

    w_eff = v_th tau_s drive / (c_eff V_th_l),  lam = tau_s g_leak / c_eff,  v_th_i = v_th theta_v,i / V_th_l,
    delay = comparator_delay_s / tau_s.

`draw(weights, step)` draws programming variation, stuck cells, comparator offsets and read noise
(one normal per cell pair for the whole batch, with the per-inference noise's std noise_a) on the
streams of `chip.training_instance(step)`, none of which an evaluation chip (trial k) uses;
`nominal` draws nothing. `pull_back` is docs/hwmodel.md's "Training for the chip": exact through
clipping, variation, read noise, the drive and the leak, straight-through across quantisation and
exact wires; the full-scale weight (so k_l, C_l and V_th_l) is a constant within a step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infra.errors import ConfigError

from hwmodel.chip import apply_factors, cell_factors, comparator_offsets, read_noise_draws, training_instance
from hwmodel.config import HardwareConfig
from hwmodel.mapping import layer_conductances, layer_scale, quantise
from hwmodel.neurons import layer_circuit
from hwmodel.wire_model import LayerWires, has_wires, layer_wires
from infra.shapes import check_shape
from training.chip_layer import ChipLayer, ConductionForm
from training.config import ModelConfig

_RANDOM_OFF = dict(prog_sigma=0.0, stuck_on_fraction=0.0, stuck_off_fraction=0.0,
                   comparator_offset_sigma_v=0.0, read_noise_rel=0.0)


@dataclass(frozen=True)
class _Chain:
    """What pull_back needs of one drawn layer (all fixed within the step)."""

    k: float                     # model weight per siemens
    fs: float                    # full-scale weight
    a: np.ndarray                # (n,) w_eff per ampere of drive: v_th tau / (c_eff V_th_l)
    mult: np.ndarray | None      # (2, K, n) programming multipliers
    stuck: np.ndarray | None     # (2, K, n) True where the cell is stuck
    g_eff: tuple                 # (g_pos_eff, g_neg_eff) the drive's conductances (read-noise derivative)
    eps: np.ndarray | None       # (K, n) read-noise normals
    d_drive: tuple | None        # d g_eff / d g_cell per cell (+, -): wires; None = 1
    d_leak: tuple | None         # d g_self / d g_cell per cell (+, -), broadcastable; None = 1
    leak_per_g: np.ndarray | None  # (n,) d lam / d g_self (None: no leak)
    g_cond: np.ndarray | None = None   # (K, n) g_pos + g_neg the conduction energy counts (S)
    d_cond: tuple | None = None        # d g_cond / d g_cell per cell (+, -): first-order wires; None = 1


@dataclass(frozen=True)
class HwLayer(ChipLayer):
    """A ChipLayer drawn by ChipTraining, carrying its chain for `pull_back`."""

    chain: _Chain | None = field(default=None, repr=False, compare=False)


def _ratio(eff: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """eff / cell, 1 where the cell has no conductance."""
    safe = np.where(cell > 0, cell, 1.0)
    return np.where(cell > 0, eff / safe, 1.0)


class ChipTraining:
    """ChipView of the chip `hw` for a network of `model` (training.chip_layer); static_power_w is
    one neuron's static power (W, energy.config.EnergyConfig.static_power_w), which the energy
    term counts for every neuron until the chip stops (0: conduction only)."""

    def __init__(self, hw: HardwareConfig, model: ModelConfig, static_power_w: float = 0.0):
        if not (np.isfinite(static_power_w) and static_power_w >= 0):
            raise ConfigError(f"static_power_w: {static_power_w!r} W is not a finite power >= 0; check the "
                              "energy config's p_comparator_static_w and p_opamp_static_w")
        window_s = model.t_end * hw.time_scale_s
        if hw.comparator_delay_s >= window_s:
            raise ConfigError(f"hw.comparator_delay_s: {hw.comparator_delay_s:g} s is not shorter than the window "
                              f"(model.t_end x hw.time_scale_s = {window_s:g} s), so no spike would be seen in it; "
                              "lower it or lengthen hw.time_scale_s")
        self.hw, self.model = hw, model
        self.static_power_w = float(static_power_w)
        self._nominal_hw = hw.with_(**_RANDOM_OFF)
        self._exact_wires = has_wires(hw) and hw.wire_model == "exact"
        self._wire_ratios: list | None = None      # per layer (r_pos, r_neg, r_self), exact wires

    # -- ChipView ---------------------------------------------------------------------------------
    def draw(self, weights, step: int) -> list[ChipLayer]:
        """The chip of training step `step`: every random draw fresh, seeded by hw.seed and the step."""
        return self._layers(weights, self.hw, training_instance(step))

    def nominal(self, weights) -> list[ChipLayer]:
        """The chip without random draws: variation at its median, no stuck cells, systematic offset
        only, no read noise (quantisation, clipping, leak, delay and wires as drawn)."""
        return self._layers(weights, self._nominal_hw, training_instance(0))

    def refresh(self, weights) -> None:
        """Solve the exact wires (hwmodel.wire_model) for the nominal chip of `weights` and keep, per
        cell, effective / own conductance (and per neuron g_self / G_tot): draws use these ratios
        until the next refresh (the trainer calls this once per epoch). Without exact wires: nothing."""
        if not self._exact_wires:
            return
        ratios = []
        for l, w in enumerate(weights):
            gp, gn, *_ = layer_conductances(np.asarray(w, dtype=np.float64), self.hw, l, len(weights))
            qp, qn = quantise(gp, self.hw), quantise(gn, self.hw)
            lw = layer_wires(qp, qn, self.hw)
            ratios.append((_ratio(lw.g_pos_s, qp), _ratio(lw.g_neg_s, qn),
                           _ratio(lw.g_self_s, (qp + qn).sum(axis=0))))
        self._wire_ratios = ratios

    def record(self) -> dict:
        """The hardware config as the run folder saves it (hw.yaml)."""
        return self.hw.to_dict()

    def canonical(self, saved: dict) -> dict:
        """A record() saved by an earlier version as this one writes it: keys added since at their
        defaults (off), so a run trained before a key existed still trains for the same chip."""
        return HardwareConfig.from_dict(saved).to_dict()

    def _nj_per_unit(self) -> float:
        """One watt drawn for one model time unit, in nJ: tau_s x 1e9."""
        return self.hw.time_scale_s * 1e9

    def _rate_per_s(self) -> float:
        """A conduction rate per siemens of cell conductance: v_read^2 tau_s in nJ per model time unit."""
        return self.hw.v_read_v ** 2 * self._nj_per_unit()

    def conduction(self, layers) -> ConductionForm | None:
        """The energy of layers this view drew (training.chip_layer.ConductionForm): rates
        v_read^2 tau_s (g_pos + g_neg) in nJ per model time unit, with the cells the energy model
        counts (energy.model's conduction, exact form: the programmed cells, their first-order
        effective conductances with first-order wires, and with exact wires the cells themselves,
        i.e. without the wires' share), the static power static_power_w x (neurons of all layers)
        x tau_s in nJ per model time unit (energy.model's static), and hw.gating's stop. None for
        passive columns, whose cells conduct g (v_row - v_col): not this form (docs/regularizers.md)."""
        if self.hw.neuron != "integrator":
            return None
        per_s = self._rate_per_s()
        rates = []
        for l, layer in enumerate(layers):
            c = getattr(layer, "chain", None)
            if c is None:
                raise TypeError(f"layer {l}: conduction needs layers drawn by this ChipTraining (draw or nominal)")
            rates.append(c.g_cond * per_s)
        gating = self.hw.gating
        n_neurons = sum(r.shape[1] for r in rates)
        return ConductionForm(rates, stops_at_decision=gating != "none",
                              guard=self.hw.decision_guard_s / self.hw.time_scale_s, column_stops=gating == "column",
                              static_nj_per_t=self.static_power_w * n_neurons * self._nj_per_unit())

    def pull_back(self, weights, layers, grad_w, grad_lam, grad_rates=None) -> list[np.ndarray]:
        """dLoss/dweights from dLoss/dw_eff (grad_w) and dLoss/dlam (grad_lam, None entries allowed)
        of layers this view drew (or nominal), plus dLoss/d`conduction(layers)`.rates (grad_rates)."""
        out = []
        v_read = self.hw.v_read_v
        per_s = self._rate_per_s()
        for l, (w, layer) in enumerate(zip(weights, layers)):
            c = getattr(layer, "chain", None)
            if c is None:
                raise TypeError(f"layer {l}: pull_back needs layers drawn by this ChipTraining (draw or nominal)")
            w = np.asarray(w, dtype=np.float64)
            check_shape(f"grad_w[{l}]", grad_w[l], w.shape)
            g_drive = np.asarray(grad_w[l], dtype=np.float64) * c.a[None, :]    # dL / d drive_a
            d_pos, d_neg = g_drive * v_read, g_drive * -v_read                  # dL / d g_eff
            if c.eps is not None:
                gpe, gne = c.g_eff
                norm = np.sqrt(gpe * gpe + gne * gne)
                scale = g_drive * c.eps * (self.hw.read_noise_rel * v_read) / np.where(norm > 0, norm, 1.0)
                d_pos, d_neg = d_pos + scale * gpe, d_neg + scale * gne
            if c.d_drive is not None:
                d_pos, d_neg = d_pos * c.d_drive[0], d_neg * c.d_drive[1]
            gl = grad_lam[l] if grad_lam is not None else None
            if gl is not None and c.leak_per_g is not None:
                check_shape(f"grad_lam[{l}]", gl, (w.shape[1],))
                g_self = (np.asarray(gl, dtype=np.float64) * c.leak_per_g)[None, :]
                lp, ln = c.d_leak if c.d_leak is not None else (1.0, 1.0)
                d_pos, d_neg = d_pos + g_self * lp, d_neg + g_self * ln
            if grad_rates is not None and grad_rates[l] is not None:
                check_shape(f"grad_rates[{l}]", grad_rates[l], w.shape)
                g_c = np.asarray(grad_rates[l], dtype=np.float64) * per_s            # dL / d g_cond
                cp, cn = c.d_cond if c.d_cond is not None else (1.0, 1.0)
                d_pos, d_neg = d_pos + g_c * cp, d_neg + g_c * cn
            if c.mult is not None:
                d_pos, d_neg = d_pos * c.mult[0], d_neg * c.mult[1]
            if c.stuck is not None:
                d_pos, d_neg = np.where(c.stuck[0], 0.0, d_pos), np.where(c.stuck[1], 0.0, d_neg)
            # quantisation: straight through; g_pos = g_min + max(w, 0) / k, g_neg = g_min + max(-w, 0) / k
            dw = np.where(w > 0, d_pos, np.where(w < 0, -d_neg, 0.5 * (d_pos - d_neg))) / c.k
            out.append(np.where(np.abs(w) <= c.fs, dw, 0.0))
        return out

    # -- the chain ----------------------------------------------------------------------------------
    def _layers(self, weights, hw: HardwareConfig, key) -> list[ChipLayer]:
        if self._exact_wires and self._wire_ratios is None:
            self.refresh(weights)
        return [self._layer(np.asarray(w, dtype=np.float64), hw, key, l, len(weights))
                for l, w in enumerate(weights)]

    def _wires(self, gp, gn, l: int):
        """(LayerWires, d_drive, d_leak) of programmed cells gp, gn (None: no wires)."""
        if self._exact_wires:
            r_pos, r_neg, r_self = self._wire_ratios[l]
            wires = LayerWires(gp * r_pos, gn * r_neg, r_self * (gp + gn).sum(axis=0))
            return wires, (r_pos, r_neg), (r_self[None, :], r_self[None, :])
        wires = layer_wires(gp, gn, self.hw)
        if not has_wires(self.hw):
            return wires, None, None
        # first order g / (1 + g R): d/dg = (eff / g)**2, and g_self sums the effective cells
        d = (_ratio(wires.g_pos_s, gp) ** 2, _ratio(wires.g_neg_s, gn) ** 2)
        return wires, d, d

    def _layer(self, w: np.ndarray, hw: HardwareConfig, key, l: int, n_layers: int) -> HwLayer:
        model, tau = self.model, hw.time_scale_s
        gp, gn, k, fs, _ = layer_conductances(w, hw, l, n_layers)
        mult, on, off = cell_factors(w.shape, hw, key, l)
        pp = apply_factors(quantise(gp, hw), hw, *(f if f is None else f[0] for f in (mult, on, off)))
        pn = apply_factors(quantise(gn, hw), hw, *(f if f is None else f[1] for f in (mult, on, off)))
        c_mem_f, v_th_l = layer_scale(k, model, hw, l)
        wires, d_drive, d_leak = self._wires(pp, pn, l)
        circ = layer_circuit(pp, pn, comparator_offsets(w.shape[1], hw, key, l), c_mem_f, v_th_l, hw, wires)
        drive, eps = circ.drive_a, None
        if hw.read_noise_rel > 0:
            eps = read_noise_draws(w.shape, hw, key, l)
            drive = drive + circ.noise_a * eps
        a = model.v_th * tau / (circ.c_eff_f * v_th_l)
        leaky = hw.neuron == "passive" or hw.opamp_gain is not None
        lam = tau * circ.g_leak_s / circ.c_eff_f if leaky else None
        leak_per_g = None
        if leaky:
            g_self = wires.g_self_s
            leak_per_g = tau * _ratio(circ.g_leak_s, g_self) / circ.c_eff_f     # g_leak is linear in g_self
        offsets = hw.comparator_offset_v != 0 or hw.comparator_offset_sigma_v > 0
        first_order = has_wires(hw) and not self._exact_wires
        g_cond = wires.g_pos_s + wires.g_neg_s if first_order else pp + pn
        chain = _Chain(k=k, fs=fs, a=a, mult=mult, stuck=None if on is None else (on | off),
                       g_eff=(wires.g_pos_s, wires.g_neg_s), eps=eps, d_drive=d_drive, d_leak=d_leak,
                       leak_per_g=leak_per_g, g_cond=g_cond, d_cond=d_drive if first_order else None)
        if offsets and np.any(circ.theta_v <= 0):
            raise ConfigError(f"hw.comparator_offset_sigma_v: a drawn comparator offset put layer {l}'s threshold at or "
                              f"below 0 V (min {circ.theta_v.min():.3g} V), which training cannot model (the comparator "
                              "would be high from the start); lower hw.comparator_offset_sigma_v or "
                              "hw.comparator_offset_v, or raise the threshold")
        return HwLayer(w=np.ascontiguousarray(drive * a[None, :]), lam=lam,
                       v_th=model.v_th * circ.theta_v / v_th_l if offsets else None,
                       delay=hw.comparator_delay_s / tau, chain=chain)


def nominal_chip_of(run_dir, weights, model: ModelConfig) -> list | None:
    """The nominal chip (ChipTraining.nominal) of the chip run `run_dir` trains for, with `weights`
    (its saved ones), as training evaluates its epochs; None for a run trained for ideal neurons."""
    from training.trainer import saved_hw

    hw = saved_hw(run_dir)
    return None if hw is None else ChipTraining(HardwareConfig.from_dict(hw), model).nominal(weights)
