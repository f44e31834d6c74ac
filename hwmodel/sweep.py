"""Vary one non-ideality of a design, re-map, and measure accuracy: CSV and a labelled plot.

Each point re-maps the design's source weights with one hardware key changed (every other key as
in the design) and runs the Monte-Carlo evaluation. Draws use common random numbers (see
hwmodel.chip), so neighbouring points differ by the swept parameter, not by luck.

`wire` (ohm per pitch, rows and columns) and `tile` (square tiles of N physical rows and columns;
none = one tile) evaluate each point with both wire models: the row's `accuracy` is the design's
hw.wire_model, and `accuracy_exact` / `accuracy_first_order` (with their stds) are side by side.
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
        if name == "tile":
            size = None if value is None else int(value)
            return {"tile_rows": size, "tile_cols": size}
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
    "tile": SweepParam("tile size, physical rows = columns per tile", 1.0),
}
NONE_OK = ("bits", "tile")                          # 'none': analog cells | one tile
WIRE_MODELS = {"exact": "exact", "first-order": "first_order"}   # wire_model -> CSV column suffix
SIDE_BY_SIDE = ("wire", "tile")                     # params evaluated with both wire models


def parse_values(param: str, raw) -> list:
    """Values from the command line ('none' allowed for bits: analog)."""
    out = []
    for item in raw:
        for tok in str(item).replace(",", " ").split():
            if param in NONE_OK and tok.lower() in ("none", "null", "analog"):
                out.append(None)
                continue
            try:
                out.append(int(tok) if param in NONE_OK else float(tok))
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
        changes = spec.changes(param, value)
        d = remap(design, **changes)
        r = evaluate(d, images, labels, trials=trials, progress=progress)
        row = {"param": param, "value": value, "accuracy": r["accuracy"], "accuracy_std": r["accuracy_std"],
               "model_accuracy": r["model_accuracy"], "spikes_per_neuron_mean": r["spikes_per_neuron_mean"],
               "t_error_max": r["t_error_max"], "trials": trials, "n": r["n"], "wire_model": d.hw.wire_model}
        if param in SIDE_BY_SIDE:
            wired = d.hw.r_wire_row_ohm > 0 or d.hw.r_wire_col_ohm > 0
            for model, suffix in WIRE_MODELS.items():
                other = r if model == d.hw.wire_model or not wired else evaluate(
                    remap(design, **changes, wire_model=model), images, labels, trials=trials, progress=progress)
                row[f"accuracy_{suffix}"] = other["accuracy"]
                row[f"accuracy_{suffix}_std"] = other["accuracy_std"]
        rows.append(row)
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
    series = ([(f"accuracy_{suffix}", f"{model} wires") for model, suffix in WIRE_MODELS.items()]
              if param in SIDE_BY_SIDE else [("accuracy", "hardware")])
    for k, (key, name) in enumerate(series):
        y = np.array([r[key] for r in pts], dtype=float) * 100
        e = np.array([r[f"{key}_std"] for r in pts], dtype=float) * 100
        if len(pts):
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, color=f"C{2 * k}",
                        label=f"{name} (mean, std over chips)")
        for r in rows:
            if r["value"] is None:
                ax.axhline(r[key] * 100, color=f"C{2 * k + 1}", ls=":",
                           label=f"{name}, one tile" if param == "tile" else "analog (no quantisation)")
    if len(pts) and param in SIDE_BY_SIDE and x.min() > 0 and x.max() > 10 * x.min():
        ax.set_xscale("log")
    ax.axhline(rows[0]["model_accuracy"] * 100, color="gray", ls="--", label="trained model")
    ax.set_xlabel(spec.label)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"accuracy against {param} ({rows[0]['n']} images, {rows[0]['trials']} chip(s))")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_io.save_png(fig, png_path, dpi=120)
    return csv_path, png_path
