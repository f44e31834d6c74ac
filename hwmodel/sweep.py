"""Vary one non-ideality of a design, re-map, and measure accuracy: CSV and a labelled plot.

Each point re-maps the design's source weights with one hardware key changed (every other key as
in the design) and runs the Monte-Carlo evaluation. Draws use common random numbers (see
hwmodel.chip), so neighbouring points differ by the swept parameter, not by luck.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwmodel.design import Design
from hwmodel.mapping import remap
from infra import atomic_io
from infra.errors import ConfigError


@dataclass(frozen=True)
class SweepParam:
    label: str          # axis label, with units
    scale: float        # plotted value = config value * scale

    def changes(self, name: str, value: float) -> dict:
        if name == "bits":
            return {"bits": None if value is None else int(value)}
        if name == "variation":
            return {"prog_sigma": float(value)}
        if name == "offset":
            return {"comparator_offset_sigma_v": float(value)}
        if name == "percentile":
            # a fixed full_scale_weight (common-scale designs) would override the percentile
            return {"full_scale_percentile": float(value), "clip_weights": True, "full_scale_weight": None}
        return {"r_wire_row_ohm": float(value), "r_wire_col_ohm": float(value)}


PARAMS = {
    "bits": SweepParam("conductance levels (bits per cell)", 1.0),
    "variation": SweepParam("programming variation, lognormal sigma (%)", 100.0),
    "offset": SweepParam("comparator offset sigma (mV)", 1e3),
    "wire": SweepParam("wire resistance per cell, row and column (ohm)", 1.0),
    "percentile": SweepParam("full-scale percentile of |w| at g_max (larger weights clipped)", 1.0),
}


def parse_values(param: str, raw) -> list:
    """Values from the command line ('none' allowed for bits: analog)."""
    out = []
    for item in raw:
        for tok in str(item).replace(",", " ").split():
            if param == "bits" and tok.lower() in ("none", "null", "analog"):
                out.append(None)
                continue
            try:
                out.append(int(tok) if param == "bits" else float(tok))
            except ValueError:
                raise ConfigError(f"--values: {tok!r} is not a number for --param {param}") from None
    if not out:
        raise ConfigError("--values: give at least one value")
    return out


def sweep(design: Design, param: str, values, images, labels, trials: int = 1, progress: bool = True) -> list[dict]:
    from hwmodel.behavioural import evaluate    # numba: imported when a sweep runs, not with PARAMS

    if param not in PARAMS:
        raise ConfigError(f"--param: must be one of {', '.join(PARAMS)} (got {param!r})")
    spec = PARAMS[param]
    rows = []
    for value in values:
        d = remap(design, **spec.changes(param, value))
        r = evaluate(d, images, labels, trials=trials, progress=progress)
        rows.append({"param": param, "value": value, "accuracy": r["accuracy"], "accuracy_std": r["accuracy_std"],
                     "model_accuracy": r["model_accuracy"], "spikes_per_neuron_mean": r["spikes_per_neuron_mean"],
                     "t_error_max": r["t_error_max"], "trials": trials, "n": r["n"]})
    return rows


def write_sweep(rows: list[dict], out: str | Path, param: str) -> tuple[Path, Path]:
    """DIR/sweep-PARAM.csv and DIR/sweep-PARAM.png."""
    from matplotlib.figure import Figure     # no pyplot: the caller's backend stays as it is

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / f"sweep-{param}.csv", out / f"sweep-{param}.png"
    atomic_io.write_csv(csv_path, rows)

    spec = PARAMS[param]
    pts = [r for r in rows if r["value"] is not None]
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    x = np.array([r["value"] for r in pts], dtype=float) * spec.scale
    y = np.array([r["accuracy"] for r in pts]) * 100
    e = np.array([r["accuracy_std"] for r in pts]) * 100
    ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label="hardware (mean, std over chips)")
    ax.axhline(rows[0]["model_accuracy"] * 100, color="gray", ls="--", label="trained model")
    for r in rows:
        if r["value"] is None:
            ax.axhline(r["accuracy"] * 100, color="C1", ls=":", label="analog (no quantisation)")
    ax.set_xlabel(spec.label)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"accuracy against {param} ({rows[0]['n']} images, {rows[0]['trials']} chip(s))")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_io.save_png(fig, png_path, dpi=120)
    return csv_path, png_path
