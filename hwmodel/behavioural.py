"""Exact, event-driven behavioural model of a design, and Monte-Carlo evaluation over chips.

`layer_times(design, t_input_s)` gives every layer's firing times in seconds (inf = silent). A
comparator that switches at t_c drives the next layer's rows from t_c + comparator_delay_s to the
end of the window; a switch later than t_end_s is not seen (silent). The ideal integrator runs on
the training sweep (`training.kernels.forward`, with weights in volts per second and the
threshold in volts); leaky or noisy columns run on `hwmodel.kernels.column_forward`, and passive
columns coupled by exact wires on `hwmodel.coupled.coupled_forward`. With kT/C noise on, each
column starts every inference at its sampled reset voltage (`LayerCircuit.ktc_rms_v` times
`kernels.reset_normals`, keyed by `chip.ktc_seed` and the global image index).

Gating (hw.gating decision or column, docs/hwmodel.md "Gating"): the first output spike t_dec plus
hw.decision_guard_s ends the inference at t_stop (`stop_times`); a neuron that would fire later does
not (`gate_times`). A neuron's firing time depends only on what drove it before, so the times up to
t_stop, and the prediction, are the ungated ones; column gating changes no firing time either.
"""
from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from hwmodel import coupled, kernels, kernels_ref
from hwmodel.chip import Chip, draw_chip, ktc_seed
from hwmodel.design import Design
from hwmodel.neurons import LayerCircuit, layer_circuit
from hwmodel.wire_model import chip_wires
from infra.errors import CheckpointError
from infra.shapes import check_shape
from training import kernels as train_kernels
from training import kernels_ref as train_kernels_ref
from training import network
from training.energy_term import decision_stop
from training.encoding import encode_pixels

_BACKENDS = {"numba": (train_kernels, kernels, coupled.coupled_forward),
             "numpy": (train_kernels_ref, kernels_ref, coupled.coupled_forward_ref)}


def circuits(design: Design, chip: Chip | None = None, wires: list | None = None) -> list[LayerCircuit]:
    """Every layer's circuit for one chip (default: the stored one), its wires from `chip_wires`
    unless the caller has them (`wires`, that chip's)."""
    chip = chip or design.stored_chip()
    wires = wires if wires is not None else chip_wires(design, chip)
    return [layer_circuit(chip.g_pos[l], chip.g_neg[l], chip.offset_v[l], design.c_mem_f[l],
                          design.v_th_v[l], design.hw, wires[l]) for l in range(design.n_layers)]


def fire(circ: LayerCircuit, t_in_s: np.ndarray, t_end_s: float, delay_s: float, seed: int,
         sample_offset: int = 0, backend: str = "numba", reset_seed: int = 0) -> np.ndarray:
    """Output spike times (B, n) in seconds of one layer for input times t_in_s (B, K); seed keys
    the read noise, reset_seed the kT/C reset voltages (if circ has them)."""
    sweep, column, coupled_forward = _BACKENDS[backend]
    t_in_s = np.ascontiguousarray(t_in_s, dtype=np.float64)
    k_in, n = circ.drive_a.shape
    check_shape("input spike times", t_in_s, (None, k_in), f"the layer's crossbar has {k_in} rows", CheckpointError)
    for name in ("noise_a", "g_leak_s", "c_eff_f", "theta_v"):
        check_shape(f"layer circuit {name}", getattr(circ, name), (k_in, n) if name == "noise_a" else (n,),
                    error=CheckpointError)
    b_size = len(t_in_s)
    t_lim = t_end_s - delay_s            # a crossing after this is seen only after the window
    if t_lim <= 0:
        return np.full((b_size, n), np.inf)
    always = circ.theta_v <= 0           # comparator high from the start
    theta = np.where(always, 1.0, circ.theta_v)
    if circ.ideal:
        # V(t) = sum_j (drive_ij / C) (t - t_j): the training model with weights in V/s.
        w = circ.drive_a / circ.c_eff_f[None, :]
        if np.all(theta == theta[0]):
            t_out = sweep.forward(t_in_s, np.ascontiguousarray(w), float(theta[0]), t_lim)[0]
        else:
            t_out = sweep.forward(t_in_s, np.ascontiguousarray(w / theta[None, :]), 1.0, t_lim)[0]
    elif circ.modes is not None:
        assert circ.ktc_rms_v is None, "HardwareConfig rejects kT/C noise on coupled passive columns"
        m = circ.modes
        t_out = coupled_forward(t_in_s, np.ascontiguousarray(circ.drive_a), np.ascontiguousarray(circ.noise_a),
                                m.e, m.lam_per_s, m.bounds, np.ascontiguousarray(theta), t_lim,
                                np.uint64(seed % 2 ** 64), sample_offset)
    else:
        v0 = None
        if circ.ktc_rms_v is not None:
            v0 = circ.ktc_rms_v * column.reset_normals(np.uint64(reset_seed % 2 ** 64), sample_offset, b_size, n)
        t_out = column.column_forward(t_in_s, np.ascontiguousarray(circ.drive_a),
                                      np.ascontiguousarray(circ.noise_a), circ.g_leak_s, circ.c_eff_f,
                                      np.ascontiguousarray(theta), t_lim, np.uint64(seed % 2 ** 64),
                                      sample_offset, v0)
    t_out[:, always] = 0.0
    return t_out + delay_s


def stop_times(t_out_s: np.ndarray, t_end_s: float, gating: str, guard_s: float) -> np.ndarray:
    """t_stop per image (N,) in seconds from the output layer's firing times (N, n_out): the window
    end with gating none, else min(t_end_s, first output spike + guard_s) (inf + guard: t_end_s);
    the rule is training.energy_term.decision_stop's (the energy-aware term's)."""
    return decision_stop(t_out_s, t_end_s, guard_s, gating != "none")[0]


def gate_times(times_s: list[np.ndarray], t_end_s: float, gating: str, guard_s: float) -> tuple[list, np.ndarray]:
    """(every layer's firing times with those after t_stop set to inf, t_stop (N,)): the firing
    times of a gated chip from its ungated ones (idempotent; gating none returns them unchanged)."""
    t_stop = stop_times(times_s[-1], t_end_s, gating, guard_s)
    if gating == "none":
        return list(times_s), t_stop
    return [np.where(t > t_stop[:, None], np.inf, t) for t in times_s], t_stop


def layer_times(design: Design, t_input_s, chip: Chip | None = None, sample_offset: int = 0,
                backend: str = "numba", circs: list[LayerCircuit] | None = None) -> list[np.ndarray]:
    """Firing times in seconds of every layer, [(N, n_l)], inf = silent, for input times (N, n_in).

    chip: a Monte-Carlo instance (default: the one stored in the design, trial 0). sample_offset:
    the global index of the first row (keys the read noise, so batching does not change results).
    circs: `circuits(design, chip)` if the caller has them (batch loops: the exact wires are solved
    once per chip, not once per batch). With hw.gating, neurons that would fire after t_stop are
    silent (`gate_times`).
    """
    chip = chip or design.stored_chip()
    t = np.asarray(t_input_s, dtype=np.float64)
    reset = ktc_seed(design.hw, chip.trial)
    out = []
    for l, circ in enumerate(circs if circs is not None else circuits(design, chip)):
        t = fire(circ, t, design.t_end_s, design.hw.comparator_delay_s, chip.noise_seed + 7919 * l,
                 sample_offset, backend, reset + 7919 * l)
        out.append(t)
    return gate_times(out, design.t_end_s, design.hw.gating, design.hw.decision_guard_s)[0]


def input_times_s(design: Design, images) -> np.ndarray:
    """Input spike times in seconds for byte images (the training encoding, scaled by tau_s)."""
    return encode_pixels(images, design.model.t_in) * design.time_scale_s


def chip_for_trial(design: Design, trial: int) -> Chip:
    """Trial 0: the stored chip; trial k > 0: a fresh draw from the nominal conductances."""
    if trial == 0:
        return design.stored_chip()
    return draw_chip(design.g_pos_nominal, design.g_neg_nominal, design.hw, trial)


def model_times(design: Design, t_model: np.ndarray, batch_size: int = 2000) -> list[np.ndarray]:
    """The trained model's own firing times (model time) for input times t_model."""
    parts = [[] for _ in design.weights]
    for start in range(0, len(t_model), batch_size):
        for l, s in enumerate(network.forward(design.weights, t_model[start:start + batch_size], design.model)):
            parts[l].append(s.t_out)
    return [np.concatenate(p) for p in parts]


def evaluate(design: Design, images, labels, trials: int = 1, batch_size: int = 2000,
             progress: bool = True) -> dict:
    """Accuracy, spikes per neuron and firing-time error against the trained model, over chips.

    Each trial is one chip (trial 0: the stored one) with its own read-noise draws. Times are
    compared where both the hardware and the model neuron fire; `spike_mismatch` is the fraction
    of (image, neuron) pairs that fire in one and not the other (with gating, up to the chip's
    t_stop: spike counts are the gated chip's). Means and stds are over trials.
    """
    t0 = time.perf_counter()
    labels = np.asarray(labels)
    check_shape("labels", labels, (len(images),), "give one label per image")
    t_model = encode_pixels(images, design.model.t_in)
    t_s = t_model * design.time_scale_s
    ref = model_times(design, t_model, batch_size)
    ref_pred = network.predict(ref[-1])
    n = len(labels)
    n_layers = design.n_layers
    acc, agree, spn, err_max, err_sum, err_cnt, mism = [], [], [], [], [], [], []
    bar = tqdm(total=trials * n, unit="img", desc="hw-eval", disable=not progress, leave=False)
    for trial in range(trials):
        chip = chip_for_trial(design, trial)
        circs = circuits(design, chip)
        pred = np.empty(n, np.int64)
        fired = np.zeros(n_layers)
        e_max, e_sum, e_cnt, mis = 0.0, 0.0, 0, 0
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            hw = layer_times(design, t_s[start:stop], chip, sample_offset=start, circs=circs)
            pred[start:stop] = network.predict(hw[-1])
            t_stop = stop_times(hw[-1], design.t_end_s, design.hw.gating, design.hw.decision_guard_s)
            for l in range(n_layers):
                h = hw[l] / design.time_scale_s
                m = ref[l][start:stop]
                if design.hw.gating != "none":    # the model's spikes after the chip's t_stop are not compared
                    m = np.where(m * design.time_scale_s > t_stop[:, None], np.inf, m)
                fh, fm = np.isfinite(h), np.isfinite(m)
                fired[l] += fh.sum()
                both = fh & fm
                mis += int((fh != fm).sum())
                if both.any():
                    d = np.abs(h[both] - m[both])
                    e_max = max(e_max, float(d.max()))
                    e_sum += float(d.sum())
                    e_cnt += int(both.sum())
            bar.update(stop - start)
        acc.append(float((pred == labels).mean()))
        agree.append(float((pred == ref_pred).mean()))
        spn.append([fired[l] / (n * design.layers[l + 1]) for l in range(n_layers)])
        err_max.append(e_max)
        err_sum.append(e_sum)
        err_cnt.append(e_cnt)
        mism.append(mis / (n * sum(design.layers[1:])))
    bar.close()
    spn = np.array(spn)
    hidden = spn[:, :-1]
    hidden_mean = hidden.mean(axis=1) if hidden.shape[1] else np.zeros(trials)
    ddof = 1 if trials > 1 else 0
    tau = design.time_scale_s
    err_mean = sum(err_sum) / max(1, sum(err_cnt))
    return {
        "n": int(n),
        "trials": int(trials),
        "accuracy": float(np.mean(acc)),
        "accuracy_std": float(np.std(acc, ddof=ddof)),
        "accuracy_trials": acc,
        "model_accuracy": float((ref_pred == labels).mean()),
        "agreement_with_model": float(np.mean(agree)),
        "spikes_per_neuron": [float(x) for x in hidden.mean(axis=0)],
        "spikes_per_neuron_mean": float(hidden_mean.mean()),
        "spikes_per_neuron_std": float(np.std(hidden_mean, ddof=ddof)),
        "output_spikes_per_neuron": float(spn[:, -1].mean()),
        "model_spikes_per_neuron_mean": float(np.mean([np.isfinite(r).mean() for r in ref[:-1]]))
        if n_layers > 1 else 0.0,
        "t_error_max": float(max(err_max) * tau),
        "t_error_max_std": float(np.std(np.array(err_max) * tau, ddof=ddof)),
        "t_error_mean": float(err_mean * tau),
        "t_error_max_model": float(max(err_max)),
        "spike_mismatch": float(np.mean(mism)),
        "time_scale_s": tau,
        "seconds": time.perf_counter() - t0,
    }
