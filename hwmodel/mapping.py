"""Model weights to conductances, capacitances and thresholds (the weight-to-siemens scale).

Per layer l, a full-scale weight W_l (the `hw.full_scale_percentile` percentile of |w|; 100 =
max |w|; or the fixed `hw.full_scale_weight`, which lets several networks share one chip design)
maps to g_max - g_min, so k_l = W_l / (g_max - g_min) model weight per siemens, and

    g_pos = g_min + max(w, 0) / k_l,   g_neg = g_min + max(-w, 0) / k_l,   w = k_l (g_pos - g_neg).

The ideal integrator reproduces the model when w = G V_read tau_s v_th / (C V_th_phys), i.e.

    k_l = v_th tau_s V_read / (C_l V_th_l),

so one of C_l, V_th_l is fixed by the config and the other chosen per layer (`hw.scale_by`):
`threshold` keeps C = hw.c_mem_f and sets V_th_l = v_th tau_s V_read / (C k_l); `capacitance`
keeps V_th = hw.v_th_v and sets C_l = v_th tau_s V_read / (k_l V_th). Then each cell is rounded to
one of 2**bits levels from g_min to g_max (a zero weight stays exactly zero: both cells at g_min),
and chip instance 0 of the random non-idealities is drawn (hwmodel.chip).
"""
from __future__ import annotations

import numpy as np

from hwmodel.chip import draw_chip
from hwmodel.config import HardwareConfig
from hwmodel.design import Design
from training.config import ModelConfig
from infra.errors import ConfigError


def quantise(g: np.ndarray, hw: HardwareConfig) -> np.ndarray:
    """Nearest of 2**bits equally spaced levels in [g_min_s, g_max_s] (unchanged when bits is None)."""
    if hw.bits is None:
        return g
    step = (hw.g_max_s - hw.g_min_s) / (2 ** hw.bits - 1)
    return hw.g_min_s + np.round((g - hw.g_min_s) / step) * step


def full_scale(w: np.ndarray, percentile: float) -> float:
    a = np.abs(w).ravel()
    fs = float(a.max()) if percentile >= 100 else float(np.percentile(a, percentile))
    return fs if fs > 0 else 1.0   # an all-zero layer: any scale represents it


def common_full_scale(weight_sets, percentile: float = 100.0) -> tuple[float, ...]:
    """Per layer, the largest full-scale weight among networks of one architecture. Mapped with it
    (`hw.full_scale_weight`), they share one chip design: same siemens per unit weight, same
    thresholds, so their energies and accuracies compare on the same hardware."""
    shapes = {tuple(w.shape for w in ws) for ws in weight_sets}
    if len(shapes) != 1:
        raise ConfigError(f"a common full scale needs networks of one architecture (got layer shapes {sorted(shapes)})")
    return tuple(max(full_scale(ws[l], percentile) for ws in weight_sets) for l in range(len(weight_sets[0])))


def with_common_scale(hw: HardwareConfig, weight_sets) -> HardwareConfig:
    """`hw` with `full_scale_weight` set to the common full scale of networks of one architecture
    (`common_full_scale` at hw.full_scale_percentile): mapped with it, they share one chip design."""
    return hw.with_(full_scale_weight=common_full_scale(weight_sets, hw.full_scale_percentile))


def layer_conductances(w: np.ndarray, hw: HardwareConfig, layer: int, n_layers: int = 1):
    """(g_pos, g_neg, k, full-scale weight, number clipped) before quantisation."""
    fixed = hw.full_scale_of(layer, n_layers)
    fs = fixed if fixed is not None else full_scale(w, hw.full_scale_percentile)
    excess = np.abs(w) - fs
    n_over = int((excess > 0).sum())
    if n_over and not hw.clip_weights:
        worst = float(excess.max())
        fix = (f"raise hw.full_scale_weight (now {hw.full_scale_weight})" if fixed is not None else
               f"raise hw.full_scale_percentile (now {hw.full_scale_percentile})")
        raise ConfigError(
            f"layer {layer} (w{layer}): {n_over} weights exceed the representable range |w| <= {fs:.6g} "
            f"(g_max_s - g_min_s); the largest by {worst:.6g} ({100 * worst / fs:.1f}% of full scale). "
            f"Set hw.clip_weights: true to clip them, or {fix}")
    k = fs / (hw.g_max_s - hw.g_min_s)
    wc = np.clip(w, -fs, fs)
    g_pos = hw.g_min_s + np.maximum(wc, 0.0) / k
    g_neg = hw.g_min_s + np.maximum(-wc, 0.0) / k
    return g_pos, g_neg, k, fs, n_over


def layer_scale(k: float, model: ModelConfig, hw: HardwareConfig, layer: int) -> tuple[float, float]:
    """(C_l, V_th_l) of a layer with k model weight per siemens: C_l V_th_l = v_th tau_s V_read / k,
    one of them fixed by `hw.scale_by`; a passive threshold it can never reach is a ConfigError."""
    scale = model.v_th * hw.time_scale_s * hw.v_read_v / k   # = C_l * V_th_l
    if hw.scale_by == "threshold":
        c_mem_f, v_th_v = hw.c_mem_f, scale / hw.c_mem_f
    else:
        c_mem_f, v_th_v = scale / hw.v_th_v, hw.v_th_v
    if hw.neuron == "passive" and v_th_v + hw.comparator_offset_v >= hw.v_read_v:
        raise ConfigError(
            f"hw.v_th_v: layer {layer}'s threshold {v_th_v:.4g} V (+ offset {hw.comparator_offset_v} V) is not "
            f"below hw.v_read_v = {hw.v_read_v} V, so a passive column can never reach it; raise "
            f"hw.c_mem_f, or use hw.scale_by: capacitance with hw.v_th_v well below hw.v_read_v")
    return c_mem_f, v_th_v


def map_model(weights, model: ModelConfig, hw: HardwareConfig, source_run: str = "",
              dataset: str = "mnist") -> Design:
    """Map trained weights (model time, threshold model.v_th) onto the hardware `hw`."""
    g_pos_nom, g_neg_nom, ks, fss, clipped, caps, ths = [], [], [], [], [], [], []
    for l, w in enumerate(weights):
        gp, gn, k, fs, n_over = layer_conductances(np.asarray(w, dtype=np.float64), hw, l, len(weights))
        g_pos_nom.append(quantise(gp, hw))
        g_neg_nom.append(quantise(gn, hw))
        ks.append(k)
        fss.append(fs)
        clipped.append(n_over)
        c_mem_f, v_th_v = layer_scale(k, model, hw, l)
        caps.append(c_mem_f)
        ths.append(v_th_v)
    chip = draw_chip(g_pos_nom, g_neg_nom, hw, trial=0)
    return Design(
        source_run=str(source_run), dataset=dataset, layers=tuple(model.layers),
        t_in_s=model.t_in * hw.time_scale_s, t_end_s=model.t_end * hw.time_scale_s, c_mem_f=tuple(caps),
        v_th_v=tuple(ths), weight_per_siemens=tuple(ks),
        full_scale_weight=tuple(fss), n_clipped=tuple(clipped), hw=hw, model=model,
        g_pos=chip.g_pos, g_neg=chip.g_neg, g_pos_nominal=g_pos_nom, g_neg_nominal=g_neg_nom,
        offset_v=chip.offset_v, weights=[np.asarray(w, dtype=np.float64) for w in weights],
        noise_seed=chip.noise_seed)


def remap(design: Design, **hw_changes) -> Design:
    """The same model mapped again with some hardware keys changed (for sweeps)."""
    return map_model(design.weights, design.model, design.hw.with_(**hw_changes), design.source_run,
                     design.dataset)
