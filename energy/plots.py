"""Plots of an energy report (PNG): breakdown per run, energy against accuracy. Drawn on matplotlib
Figures, without pyplot, so importing this module leaves the caller's backend as it is."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from energy.model import COMPONENTS
from infra import atomic_io
from training.plots import KIND_STYLE, style_key

DPI = 110
COLORS = {"comparator": "tab:red", "row_switching": "tab:purple", "conduction": "tab:blue",
          "capacitor": "tab:orange", "clamp": "tab:brown", "static": "tab:gray"}


def _save(fig, path: Path) -> None:
    atomic_io.save_png(fig, path, dpi=DPI, bbox_inches="tight")


def plot_breakdown(runs: list[dict], path: Path) -> None:
    """Stacked bars of energy per inference (nJ) by component, one bar per run."""
    names = [r["name"] for r in runs]
    x = np.arange(len(runs))
    fig = Figure(figsize=(max(5.0, 0.7 * len(runs) + 2), 4.2))
    ax = fig.subplots()
    bottom = np.zeros(len(runs))
    for c in COMPONENTS:
        v = np.array([r["breakdown_j"][c] for r in runs]) * 1e9
        ax.bar(x, v, bottom=bottom, color=COLORS[c], label=c.replace("_", " "))
        bottom += v
    for xi, r in zip(x, runs):
        if r is not runs[0]:
            ax.annotate(f"{-r['savings_pct']:+.1f}%", (xi, bottom[xi]), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("energy per inference (nJ)")
    ax.set_title("Energy per inference by component (labels: change vs the first run)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, path)


def plot_energy_vs_accuracy(runs: list[dict], path: Path) -> None:
    """Energy per inference (nJ) against accuracy (%), one point per run: the total, and the part
    driven by the network's own spikes (comparator, rows and conduction of hidden and output spikes,
    without the input rows, which all switch once per image)."""
    fig = Figure(figsize=(10, 4.2))
    axes = fig.subplots(1, 2)
    for ax, key, title in ((axes[0], "energy_per_inference_j", "total energy per inference"),
                           (axes[1], "neuron_spike_energy_j", "energy driven by the neurons' spikes")):
        seen = set()
        for r in runs:
            kind = style_key(r["reg"]["kind"], r["reg"].get("energy_strength"))
            color, marker = KIND_STYLE.get(kind, ("tab:gray", "x"))
            ax.scatter(100 * r["accuracy"], r[key] * 1e9, color=color, marker=marker,
                       label=None if kind in seen else kind, s=40)
            seen.add(kind)
            ax.annotate(r["name"].split("/")[-1], (100 * r["accuracy"], r[key] * 1e9), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("accuracy on the test images (%)")
        ax.set_ylabel(("total energy" if key == "energy_per_inference_j" else "neuron-spike energy")
                      + " per inference (nJ)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)
