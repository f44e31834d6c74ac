"""A fully connected TTFS network: forward pass, output loss and exact gradients.

The one non-exact gradient (allowed by the model notes): an output neuron silent in the window
enters the loss at t_end, and its gradient is that of a neuron firing at t_end through all inputs
that arrived by then, with slope max(S(t_end), v_th / t_end). It raises v(t_end) for a neuron
the loss wants earlier, i.e. it pushes the silent neuron towards threshold.

The firing penalty (`fire_penalty`, loss.fire_penalty > 0) is an added loss term, with its exact
gradient, on the potential at t_end of silent hidden neurons: silent neurons pass no gradient
through their firing time, so without it a hidden neuron that stops firing stays silent for good.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from infra.shapes import check_chain, check_shape
from training import kernels, kernels_ref, leaky, leaky_ref, leaky_reg, leaky_reg_ref
from training.chip_layer import ChipLayer
from training.config import FIRE_PENALTY_ON, LossConfig, ModelConfig

BACKENDS = {"numba": kernels, "numpy": kernels_ref}
# the leaky neuron (training/leaky.py, docs/model.md): its firing times, gradients, end potential; its regularisers
LEAKY_BACKENDS = {"numba": (leaky, leaky_reg), "numpy": (leaky_ref, leaky_reg_ref)}
REG_CODES = {"m-ssr": 0, "membrane": 0, "f-ssr": 1}


@dataclass
class LayerState:
    """What the backward pass needs from one layer's forward pass."""

    t_in: np.ndarray     # (B, K) input spike times
    t_out: np.ndarray    # (B, n) firing times, inf when silent
    order: np.ndarray    # (B, K)
    n_valid: np.ndarray  # (B,)
    kf: np.ndarray       # (B, n) causal-set sizes
    slope: np.ndarray    # (B, n)
    chip: ChipLayer | None = None   # the layer as a chip computes it (None: the ideal neuron)
    crossing: np.ndarray | None = None   # the threshold crossings when the chip layer has a delay (else t_out)

    @property
    def leaky(self) -> bool:
        """The layer runs on the leaky kernels (a leak or per-neuron thresholds)."""
        return self.chip is not None and not self.chip.ideal

    @property
    def delay(self) -> float:
        return 0.0 if self.chip is None else self.chip.delay

    @property
    def t_cross(self) -> np.ndarray:
        """The threshold crossings (t_out less the layer's delay): what the gradients differentiate."""
        return self.t_out if self.crossing is None else self.crossing


def init_weights(layers, mean_gain: float, std_gain: float, seed: int) -> list[np.ndarray]:
    """w[l] ~ N(mean_gain / n_in, (std_gain / sqrt(n_in))^2), shape (n_in, n_out)."""
    rng = np.random.default_rng(seed)
    return [draw_weights(rng, n_in, n_out, mean_gain, std_gain) for n_in, n_out in zip(layers[:-1], layers[1:])]


def draw_weights(rng: np.random.Generator, n_in: int, n_out: int, mean_gain: float, std_gain: float) -> np.ndarray:
    """One (n_in, n_out) layer from the initial distribution of `init_weights`."""
    return rng.normal(mean_gain / n_in, std_gain / np.sqrt(n_in), size=(n_in, n_out))


def forward(weights, t_input, model: ModelConfig, backend: str = "numba",
            chip: list[ChipLayer] | None = None) -> list[LayerState]:
    """Exact firing times of every layer for a batch of input spike times (B, n_in).

    chip: the layers as a chip computes them (training.chip_layer); their weights replace
    `weights`. A layer with a leak or per-neuron thresholds runs on the leaky kernels; a layer's
    delay d makes a crossing at t_c a spike at t_c + d, and a crossing after t_end - d is not seen
    within the window (silent), as in hwmodel.behavioural."""
    k = BACKENDS[backend]
    if chip is not None:
        weights = [c.w for c in chip]
    states = []
    t = np.ascontiguousarray(t_input, dtype=np.float64)
    check_shape("input spike times", t, (None, None))
    check_chain("weights", [np.shape(w) for w in weights], t.shape[1], f"the input spike times have {t.shape[1]} columns")
    hint = None     # the previous layer's firing order: this layer's input order, where it is (kernels.forward_ordered)
    for l, w in enumerate(weights):
        c = None if chip is None else chip[l]
        if c is None or c.ideal:
            t_lim = model.t_end if c is None else model.t_end - c.delay
            t_out, order, n_valid, kf, slope, hint = k.forward_ordered(t, w, model.v_th, t_lim, hint)
        else:
            lam, v_th = leak_and_thresholds(c, model)
            t_out, order, n_valid, kf, slope = LEAKY_BACKENDS[backend][0].forward(t, w, lam, v_th, model.t_end - c.delay)
            hint = None
        crossing = None
        if c is not None and c.delay:
            crossing, t_out = t_out, t_out + c.delay
        states.append(LayerState(t, t_out, order, n_valid, kf, slope, c, crossing))
        t = t_out
    return states


def leak_and_thresholds(c: ChipLayer, model: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """(lam (n,), v_th (n,)) of a chip layer, shape-checked, the model's where the chip has none."""
    n = c.w.shape[1]
    lam = np.zeros(n) if c.lam is None else np.ascontiguousarray(c.lam, dtype=np.float64)
    v_th = np.full(n, model.v_th) if c.v_th is None else np.ascontiguousarray(c.v_th, dtype=np.float64)
    check_shape("chip layer leak", lam, (n,), f"one per neuron of a layer with {n}")
    check_shape("chip layer thresholds", v_th, (n,), f"one per neuron of a layer with {n}")
    return lam, v_th


NO_DECISION = -1


def predict(t_out: np.ndarray) -> np.ndarray:
    """Class = the output neuron that fires first (ties: the lowest index), for (B, n_out) firing
    times (inf = silent); NO_DECISION (-1, never a label, so counted wrong) when none fires."""
    t_out = np.asarray(t_out, dtype=np.float64)
    return np.where(np.isfinite(t_out).any(axis=1), np.argmin(t_out, axis=1), NO_DECISION)


def output_loss(t_out, labels, model: ModelConfig, loss: LossConfig):
    """Per-sample loss and dLoss/dt_out; silent outputs enter at t_end."""
    t = np.where(np.isfinite(t_out), t_out, model.t_end)
    z = -t / loss.tau_soft
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    idx = np.arange(len(labels))
    ce = -np.log(np.maximum(p[idx, labels], 1e-300))
    penalty = loss.gamma_t * ((t - loss.t_ref) ** 2).sum(axis=1)
    onehot = np.zeros_like(p)
    onehot[idx, labels] = 1.0
    delta = -(p - onehot) / loss.tau_soft + 2.0 * loss.gamma_t * (t - loss.t_ref)
    return ce + penalty, delta


@dataclass
class FirePenalty:
    """The firing penalty of one batch: per-sample values and their exact gradient.

    values (B,): coef * sum over the chosen hidden (sample, neuron) pairs of v_th - v_i(t_end);
    gw[l]: d(sum of values)/dw[l] (None for a layer without penalty, i.e. the output layer);
    gt[l]: d(sum of values)/dt_out of layer l, through the input times of layer l + 1 (None if
    there is none), which `gradients` chains into the layers below;
    glam[l]: d(sum of values)/d(leak of layer l) for a leaky chip layer (else None).
    """

    values: np.ndarray
    gw: list
    gt: list
    glam: list


def potential_at_end(t_in: np.ndarray, w: np.ndarray, t_end: float):
    """v_i(t_end) = sum over inputs j with t_j < t_end of w_ji (t_end - t_j), for a batch (B, n),
    and the ramp lengths (t_end - t_j)_+ of the arrived inputs (B, K) it is the product of."""
    ramps = np.where(t_in < t_end, t_end - np.where(np.isfinite(t_in), t_in, 0.0), 0.0)
    return ramps @ w, ramps


def penalised_pairs(t_out: np.ndarray, on: str) -> np.ndarray:
    """(B, n) mask of the (sample, neuron) pairs the firing penalty sums over: "silent" every silent
    pair, "dead" every pair of a neuron silent for all samples of the batch."""
    silent = ~np.isfinite(t_out)
    if on == "dead":
        return np.broadcast_to(silent.all(axis=0), silent.shape)
    if on == "silent":
        return silent
    raise ValueError(f"fire penalty on {on!r}: must be one of {', '.join(FIRE_PENALTY_ON)}")


def fire_penalty(weights, states, model: ModelConfig, coef: float, on: str = "dead",
                 backend: str = "numba") -> FirePenalty:
    """The firing penalty coef * sum_{hidden l} sum_{chosen (b, i)} relu(v_th - v_bi(t_end)).

    A neuron that is silent in the window has v(t_end) <= v_th (its potential starts at 0 and is
    continuous, so reaching v_th by t_end would be a crossing), so the term is the distance to
    threshold at the window's end; relu only absorbs rounding. Which pairs are chosen (`on`, see
    `penalised_pairs`) and which inputs have arrived are constant between the weights at which a
    neuron starts or stops firing, so the gradient is exact there: dw = ramps.T @ g and
    dt_in = -(g @ w.T) on arrived inputs, with g = dP/dv = -coef on the chosen pairs below v_th.
    On a chip layer (states[l].chip) the window ends at t_end less the layer's delay, and a leaky
    layer takes its own potential, thresholds and leak gradient (training.leaky.end_potential).
    """
    n_layers = len(weights)
    values = np.zeros(len(states[0].t_in))
    gw, gt, glam = [None] * n_layers, [None] * n_layers, [None] * n_layers
    for l in range(n_layers - 1):
        s = states[l]
        w_all = weights[l] if s.chip is None else s.chip.w
        cols = np.flatnonzero(penalised_pairs(s.t_out, on).any(axis=0))   # neurons with a term
        if len(cols) == 0:
            continue
        w = w_all[:, cols]
        t_lim = model.t_end - s.delay
        if s.leaky:
            w = np.ascontiguousarray(w)
            lam_all, v_th_all = leak_and_thresholds(s.chip, model)
            lam, v_th = np.ascontiguousarray(lam_all[cols]), v_th_all[cols]
            v_end = LEAKY_BACKENDS[backend][0].end_potential(s.t_in, w, lam, t_lim)
        else:
            v_th = model.v_th
            v_end, ramps = potential_at_end(s.t_in, w, t_lim)
        gap = np.where(penalised_pairs(s.t_out[:, cols], on), np.maximum(v_th - v_end, 0.0), 0.0)
        values += coef * gap.sum(axis=1)
        g = np.where(gap > 0.0, -coef, 0.0)
        gw[l] = np.zeros_like(w_all)
        if s.leaky:
            gwc, gtc, glc = LEAKY_BACKENDS[backend][0].end_potential_backward(
                s.t_in, w, lam, t_lim, np.ascontiguousarray(g), numba.get_num_threads())
            gw[l][:, cols] = gwc
            glam[l] = np.zeros(w_all.shape[1])
            glam[l][cols] = glc
            if l > 0:
                gt[l - 1] = gtc
            continue
        gw[l][:, cols] = ramps.T @ g
        if l > 0:
            gt[l - 1] = np.where(s.t_in < t_lim, -(g @ w.T), 0.0)
    return FirePenalty(values, gw, gt, glam)


def regularizer_theta(kind: str, model: ModelConfig, v_hat: float | None) -> float:
    return v_hat if kind == "membrane" else model.v_th


def gradients(weights, states, delta_out, model: ModelConfig, backend: str = "numba",
              reg_kind: str = "none", reg_coefs=(), v_hat=None, penalty: FirePenalty | None = None):
    """dLoss/dw for every layer, plus the regulariser's value per sample (`backprop` without the
    leak gradients: for networks without chip layers)."""
    back = backprop(weights, states, delta_out, model, backend, reg_kind, reg_coefs, v_hat, penalty)
    return back.gw, back.reg


@dataclass
class Backprop:
    """Gradients of a batch's loss: per layer w.r.t. the weights the layer computed with (a chip
    layer's effective weights) and its leak (None for a layer without), and the regulariser's
    value per sample."""

    gw: list
    glam: list
    reg: np.ndarray


def backprop(weights, states, delta_out, model: ModelConfig, backend: str = "numba",
             reg_kind: str = "none", reg_coefs=(), v_hat=None, penalty: FirePenalty | None = None,
             extra_gt: list | None = None) -> Backprop:
    """dLoss/dw (and d/dlam of leaky chip layers) for every layer, plus the regulariser's values.

    delta_out: dLoss/dt_out of the output layer (B, n_out), already divided by the batch size
    if the loss is a mean. reg_coefs: one coefficient per hidden layer multiplying that layer's
    per-sample regulariser sum in the loss (0 skips the layer). penalty: the batch's firing
    penalty (`fire_penalty`), whose gradient is added (None: no penalty, today's path). extra_gt:
    per layer dLoss/dt_out of a further loss term on the firing times (None entries: none; the
    conduction energy, training.energy_term), chained like the rest. A chip
    layer (states[l].chip) is differentiated with its own weights, leak, thresholds and window
    t_end - delay; a delay shifts a spike without changing its derivatives.
    """
    k = BACKENDS[backend]
    n_chunks = numba.get_num_threads()
    grads = [None] * len(weights)
    glams = [None] * len(weights)
    reg_values = np.zeros(len(delta_out))
    delta = delta_out
    for l in range(len(weights) - 1, -1, -1):
        s = states[l]
        w = weights[l] if s.chip is None else s.chip.w
        t_lim = model.t_end - s.delay
        lam, v_th = leak_and_thresholds(s.chip, model) if s.leaky else (None, model.v_th)
        kf, slope, t_f = s.kf, s.slope, s.t_cross
        if penalty is not None and penalty.gt[l] is not None:
            delta = delta + penalty.gt[l]
        if extra_gt is not None and extra_gt[l] is not None:
            delta = delta + extra_gt[l]
        if l == len(weights) - 1:
            silent = ~np.isfinite(s.t_out)
            if silent.any():
                kf = np.where(silent, s.n_valid[:, None], s.kf)
                slope = np.where(silent, np.maximum(s.slope, v_th / t_lim), s.slope)
                t_f = np.where(silent, t_lim, t_f)
        glam = None
        if s.leaky:
            gw, gt, glam = LEAKY_BACKENDS[backend][0].backward(s.t_in, w, lam, s.order, kf, slope, t_f, delta,
                                                                n_chunks, need_gt=l > 0)
        else:
            gw, gt = k.backward(s.t_in, w, s.order, kf, slope, t_f, delta, n_chunks, need_gt=l > 0)
        coef = reg_coefs[l] if (reg_kind != "none" and l < len(reg_coefs)) else 0.0
        if coef > 0.0:
            theta = regularizer_theta(reg_kind, model, v_hat)
            if s.leaky:
                thetas = v_th if reg_kind != "membrane" else np.full(w.shape[1], theta)
                values, rgw, rgt, rglam = LEAKY_BACKENDS[backend][1].regularizer(
                    s.t_in, w, lam, s.order, s.n_valid, REG_CODES[reg_kind], thetas, t_lim, coef, n_chunks)
                glam = glam + rglam
            else:
                values, rgw, rgt = k.regularizer(s.t_in, w, s.order, s.n_valid, REG_CODES[reg_kind], theta,
                                                 t_lim, coef, n_chunks)
            reg_values += coef * values
            gw += rgw
            gt += rgt
        if penalty is not None and penalty.gw[l] is not None:
            gw = gw + penalty.gw[l]
            if penalty.glam[l] is not None:
                glam = glam + penalty.glam[l]
        grads[l] = gw
        glams[l] = glam
        delta = gt
    return Backprop(grads, glams, reg_values)
