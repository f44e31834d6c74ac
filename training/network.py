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
from training import kernels, kernels_ref
from training.config import FIRE_PENALTY_ON, LossConfig, ModelConfig

BACKENDS = {"numba": kernels, "numpy": kernels_ref}
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


def init_weights(layers, mean_gain: float, std_gain: float, seed: int) -> list[np.ndarray]:
    """w[l] ~ N(mean_gain / n_in, (std_gain / sqrt(n_in))^2), shape (n_in, n_out)."""
    rng = np.random.default_rng(seed)
    return [draw_weights(rng, n_in, n_out, mean_gain, std_gain) for n_in, n_out in zip(layers[:-1], layers[1:])]


def draw_weights(rng: np.random.Generator, n_in: int, n_out: int, mean_gain: float, std_gain: float) -> np.ndarray:
    """One (n_in, n_out) layer from the initial distribution of `init_weights`."""
    return rng.normal(mean_gain / n_in, std_gain / np.sqrt(n_in), size=(n_in, n_out))


def forward(weights, t_input, model: ModelConfig, backend: str = "numba") -> list[LayerState]:
    """Exact firing times of every layer for a batch of input spike times (B, n_in)."""
    k = BACKENDS[backend]
    states = []
    t = np.ascontiguousarray(t_input, dtype=np.float64)
    check_shape("input spike times", t, (None, None))
    check_chain("weights", [np.shape(w) for w in weights], t.shape[1], f"the input spike times have {t.shape[1]} columns")
    for w in weights:
        t_out, order, n_valid, kf, slope = k.forward(t, w, model.v_th, model.t_end)
        states.append(LayerState(t, t_out, order, n_valid, kf, slope))
        t = t_out
    return states


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
    there is none), which `gradients` chains into the layers below.
    """

    values: np.ndarray
    gw: list
    gt: list


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


def fire_penalty(weights, states, model: ModelConfig, coef: float, on: str = "dead") -> FirePenalty:
    """The firing penalty coef * sum_{hidden l} sum_{chosen (b, i)} relu(v_th - v_bi(t_end)).

    A neuron that is silent in the window has v(t_end) <= v_th (its potential starts at 0 and is
    continuous, so reaching v_th by t_end would be a crossing), so the term is the distance to
    threshold at the window's end; relu only absorbs rounding. Which pairs are chosen (`on`, see
    `penalised_pairs`) and which inputs have arrived are constant between the weights at which a
    neuron starts or stops firing, so the gradient is exact there: dw = ramps.T @ g and
    dt_in = -(g @ w.T) on arrived inputs, with g = dP/dv = -coef on the chosen pairs below v_th.
    """
    n_layers = len(weights)
    values = np.zeros(len(states[0].t_in))
    gw, gt = [None] * n_layers, [None] * n_layers
    for l in range(n_layers - 1):
        s = states[l]
        cols = np.flatnonzero(penalised_pairs(s.t_out, on).any(axis=0))   # neurons with a term
        if len(cols) == 0:
            continue
        w = weights[l][:, cols]
        v_end, ramps = potential_at_end(s.t_in, w, model.t_end)
        gap = np.where(penalised_pairs(s.t_out[:, cols], on), np.maximum(model.v_th - v_end, 0.0), 0.0)
        values += coef * gap.sum(axis=1)
        g = np.where(gap > 0.0, -coef, 0.0)
        gw[l] = np.zeros_like(weights[l])
        gw[l][:, cols] = ramps.T @ g
        if l > 0:
            gt[l - 1] = np.where(s.t_in < model.t_end, -(g @ w.T), 0.0)
    return FirePenalty(values, gw, gt)


def regularizer_theta(kind: str, model: ModelConfig, v_hat: float | None) -> float:
    return v_hat if kind == "membrane" else model.v_th


def gradients(weights, states, delta_out, model: ModelConfig, backend: str = "numba",
              reg_kind: str = "none", reg_coefs=(), v_hat=None, penalty: FirePenalty | None = None):
    """dLoss/dw for every layer, plus the regulariser's value per sample.

    delta_out: dLoss/dt_out of the output layer (B, n_out), already divided by the batch size
    if the loss is a mean. reg_coefs: one coefficient per hidden layer multiplying that layer's
    per-sample regulariser sum in the loss (0 skips the layer). penalty: the batch's firing
    penalty (`fire_penalty`), whose gradient is added (None: no penalty, today's path).
    """
    k = BACKENDS[backend]
    n_chunks = numba.get_num_threads()
    grads = [None] * len(weights)
    reg_values = np.zeros(len(delta_out))
    delta = delta_out
    for l in range(len(weights) - 1, -1, -1):
        s = states[l]
        kf, slope, t_f = s.kf, s.slope, s.t_out
        if penalty is not None and penalty.gt[l] is not None:
            delta = delta + penalty.gt[l]
        if l == len(weights) - 1:
            silent = ~np.isfinite(s.t_out)
            if silent.any():
                kf = np.where(silent, s.n_valid[:, None], s.kf)
                slope = np.where(silent, np.maximum(s.slope, model.v_th / model.t_end), s.slope)
                t_f = np.where(silent, model.t_end, s.t_out)
        gw, gt = k.backward(s.t_in, weights[l], s.order, kf, slope, t_f, delta, n_chunks, need_gt=l > 0)
        coef = reg_coefs[l] if (reg_kind != "none" and l < len(reg_coefs)) else 0.0
        if coef > 0.0:
            theta = regularizer_theta(reg_kind, model, v_hat)
            values, rgw, rgt = k.regularizer(s.t_in, weights[l], s.order, s.n_valid,
                                             REG_CODES[reg_kind], theta, model.t_end, coef, n_chunks)
            reg_values += coef * values
            gw += rgw
            gt += rgt
        if penalty is not None and penalty.gw[l] is not None:
            gw = gw + penalty.gw[l]
        grads[l] = gw
        delta = gt
    return grads, reg_values
