"""A trained run as a NIR graph (Neuromorphic Intermediate Representation, the `nir` package).

Two forms, per weight layer l (docs/nir.md):
- exact: `Linear(w.T) -> I(r = 1) -> IF(r = 1/s, v_threshold = v_th, v_reset = 0)`. Input spikes are
  unit-area Dirac deltas; I integrates them into the model's step synaptic current
  `sum_j w_ij [t > t_j]`, IF integrates that into `v_i = sum_j w_ij max(0, t - t_j)`.
- portable: `Linear(w.T) -> CubaLIF` with `tau_syn = tau_mem = tau = tau_over_window * t_end * s`,
  `w_in = tau_syn`, `r = tau_mem / s`, `v_leak = 0`: the same dynamics to first order in t / tau,
  for importers that read CubaLIF but not I (snnTorch, Norse, Lava, chips).

s is the graph's time per model time unit: 1 by default (NIR time = model time), or time_scale_s
when the graph is written in seconds. NIR cannot say that a neuron fires at most
once, the window t_end, the pixel-to-time encoding or the time unit; they go in the graph's metadata.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import nir
import numpy as np

from infra import atomic_io, provenance
from infra.errors import ConfigError
from training.checkpoint import TrainedModel, load_model, model_meta

FORMAT = "ttfs-nir/1"
TAU_OVER_WINDOW = 1e4       # portable form: tau_syn = tau_mem = TAU_OVER_WINDOW * t_end
MIN_TAU_OVER_WINDOW = 10.0  # the leak changes potentials by up to 1 / tau_over_window of their size


def _package_version() -> str:
    return provenance.provenance()[provenance.DISTRIBUTION] or "unknown"


def _check(portable: bool, tau_over_window: float, time_scale_s: float | None) -> None:
    if portable and not (math.isfinite(tau_over_window) and tau_over_window >= MIN_TAU_OVER_WINDOW):
        raise ConfigError(f"tau_over_window (--tau-over-window): must be >= {MIN_TAU_OVER_WINDOW:g} so the "
                          f"portable neurons' leak stays a small correction (got {tau_over_window:g}; default "
                          f"{TAU_OVER_WINDOW:g})")
    if time_scale_s is not None and not (math.isfinite(time_scale_s) and time_scale_s > 0):
        raise ConfigError(f"time_scale_s (--time-scale-s): must be a positive number of seconds per model "
                          f"time unit (got {time_scale_s:g})")


def _metadata(run: TrainedModel, portable: bool, tau: float, tau_over_window: float,
              time_scale_s: float | None, source_run: str) -> dict:
    m = run.model
    unit = 1.0 if time_scale_s is None else time_scale_s     # graph time per model time unit
    encoding = dict(run.meta.get("encoding") or model_meta(m, run.dataset, {})["encoding"])
    encoding.update(t_in=m.t_in * unit, inputs="one spike per pixel, the image flattened row by row")
    meta = {
        "format": FORMAT,
        "form": "portable" if portable else "exact",
        "layers": [int(n) for n in m.layers],
        "v_th": m.v_th,
        "t_in": m.t_in * unit,
        "t_end": m.t_end * unit,
        "time_unit": "model" if time_scale_s is None else "s",
        "fire_at_most_once": True,
        "encoding": encoding,
        "readout": "class = the output neuron that fires first; a silent output never wins",
        "notes": {
            "time": ("all times here and in the nodes are in the graph's time unit: the model's "
                     "dimensionless time unit" if time_scale_s is None else
                     f"all times here and in the nodes are in seconds; one model time unit is {time_scale_s:g} s"),
            "spikes": "unit-area Dirac deltas in the graph's time unit",
            "fire_at_most_once": ("every neuron fires at most once: block it after its first spike for the rest "
                                  "of the window (NIR's reset cannot say this; v_reset = 0 is a placeholder)"),
            "window": "an inference runs from t = 0 to t_end; a neuron that has not fired by t_end is silent",
        },
        "dataset": run.dataset,
        "source_run": source_run,
        "ttfs_version": _package_version(),
        "nir_version": nir.version,
    }
    if time_scale_s is not None:
        meta["model_time_unit_s"] = time_scale_s
    if portable:
        meta["portable"] = {
            "tau_over_window": tau_over_window,
            "tau": tau,
            "leak_error": ("in model time units, with u_j = max(0, t - t_j) and T = tau_over_window * t_end: "
                           "the potential is sum_j w_ij u_j exp(-u_j / T) instead of sum_j w_ij u_j, smaller "
                           "by at most sum_j |w_ij| u_j^2 / T; a first spike comes later by "
                           "sum_j w_ij u_j^2 / (T S_i) to first order, S_i the slope at firing"),
        }
    accuracy = run.meta.get("test_accuracy")
    if isinstance(accuracy, (int, float)):
        meta["test_accuracy"] = float(accuracy)
    return meta


def _per_neuron(n: int):
    """x -> a length-n float64 array of x (NIR neuron parameters are per neuron)."""
    return lambda x: np.full(n, float(x))


def to_nir(run: TrainedModel, portable: bool = False, tau_over_window: float | None = None,
           time_scale_s: float | None = None, source_run: str = "") -> nir.NIRGraph:
    """The NIR graph of a trained model: input -> (linear{l} -> current{l} -> neuron{l})... -> output
    (exact form) or input -> (linear{l} -> neuron{l})... -> output (portable, CubaLIF; tau_over_window
    defaults to TAU_OVER_WINDOW)."""
    tau_over_window = TAU_OVER_WINDOW if tau_over_window is None else float(tau_over_window)
    _check(portable, tau_over_window, time_scale_s)
    m = run.model
    unit = 1.0 if time_scale_s is None else time_scale_s
    tau = tau_over_window * m.t_end * unit
    nodes = {"input": nir.Input(input_type={"input": np.array([m.layers[0]])})}
    chain = ["input"]
    for l, w in enumerate(run.weights):
        full = _per_neuron(w.shape[1])
        nodes[f"linear{l}"] = nir.Linear(weight=np.ascontiguousarray(w.T, dtype=np.float64))
        chain.append(f"linear{l}")
        if portable:
            nodes[f"neuron{l}"] = nir.CubaLIF(tau_syn=full(tau), tau_mem=full(tau), r=full(tau / unit),
                                              v_leak=full(0), v_threshold=full(m.v_th), v_reset=full(0),
                                              w_in=full(tau))
        else:
            nodes[f"current{l}"] = nir.I(r=full(1))
            nodes[f"neuron{l}"] = nir.IF(r=full(1 / unit), v_threshold=full(m.v_th), v_reset=full(0))
            chain.append(f"current{l}")
        chain.append(f"neuron{l}")
    nodes["output"] = nir.Output(output_type={"output": np.array([m.layers[-1]])})
    chain.append("output")
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain[:-1], chain[1:])),
                        metadata=_metadata(run, portable, tau, tau_over_window, time_scale_s, source_run))


def write_nir(graph: nir.NIRGraph, path: str | Path) -> None:
    """nir.write into memory, then one atomic write: a crash never leaves half an HDF5 file."""
    buf = io.BytesIO()
    nir.write(buf, graph)
    atomic_io.write_bytes(path, buf.getvalue())


def export_nir(run_dir: str | Path, out: str | Path, portable: bool = False,
               tau_over_window: float | None = None, time_scale_s: float | None = None) -> nir.NIRGraph:
    """Read a run folder, write its NIR graph to `out` and return the graph."""
    out = Path(out)
    graph = to_nir(load_model(run_dir), portable, tau_over_window, time_scale_s, source_run=str(run_dir))
    write_nir(graph, out)
    return graph
