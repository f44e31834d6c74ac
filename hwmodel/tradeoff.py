"""The SSR trade-off on a chip: every run of one or more sweeps mapped onto one hardware config and
evaluated over Monte-Carlo chips (`ttfs hw-tradeoff`).

Each group is one folder given on the command line (a sweep, or a single run or design: a design
keeps the chip it was mapped onto, and `trained_for` compares with that one); a sweep
trained for the chip (`ttfs sweep --hw`) and one trained for ideal neurons are then two curves of
one figure: accuracy on the chip against hidden spikes per neuron on the chip, next to each run's
own software figures on the same images (`ttfs eval`: on the nominal chip it trained for, or on
ideal neurons). Each input's figures are cached in
OUT/cache/ under a fingerprint of everything they depend on (infra.fingerprint), so a rerun, or
a run added to a sweep, computes only what is new.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwmodel.config import HardwareConfig
from hwmodel.sources import Source, load_source, read_mapping, reg_of, resolve_sources, source_run
from infra import atomic_io
from infra.atomic_io import csv_number
from infra.errors import CheckpointError, ConfigError
from infra.fingerprint import digest

FORMAT = "ttfs-hw-tradeoff/2"   # 2: energy_strength per row (cached rows of 1 are recomputed)
CSV_NAME = "hw_tradeoff.csv"
PNG_NAME = "hw_tradeoff.png"
TRAINED_FOR = {"ideal": "trained for ideal neurons", "this chip": "trained for this chip",
               "another chip": "trained for another chip", "unknown": "source run not found"}


def trained_for(run: Path | None, hw: HardwareConfig) -> str:
    """"this chip", "another chip", "ideal" or "unknown": what the run behind an input trained for."""
    from training.trainer import saved_hw

    if run is None:
        return "unknown"
    saved = saved_hw(run)
    if saved is None:
        return "ideal"
    return "this chip" if HardwareConfig.from_dict(saved) == hw else "another chip"


def _source_run(src: Source, design) -> Path | None:
    return src.path if src.kind == "run" else source_run(design)


def input_groups(paths) -> list[tuple[str, list[Source]]]:
    """(group name, its inputs) per folder given: a sweep's runs, or the run or design itself; named
    by the folder, or by its path where two folders share a name."""
    groups = [(Path(p).name, resolve_sources([p])) for p in paths]
    if len({g for g, _ in groups}) != len(groups):
        groups = [(str(p), srcs) for p, (_, srcs) in zip(paths, groups)]
    return groups


def common_dataset(groups) -> str:
    """The one data set every input was trained on (its model.yaml / design.yaml), else a ConfigError
    naming an input without one or one input per data set."""
    dataset_of = {s.path: read_mapping(s.path / ("model.yaml" if s.kind == "run" else "design.yaml")).get("dataset")
                  for _, sources in groups for s in sources}
    unnamed = [str(p) for p, d in dataset_of.items() if not isinstance(d, str)]
    if unnamed:
        raise ConfigError(f"{unnamed[0]}: names no data set in its model.yaml / design.yaml; pass folders written "
                          "by 'ttfs train' or 'ttfs map'")
    datasets = set(dataset_of.values())
    if len(datasets) != 1:
        firsts = {d: p for p, d in reversed(list(dataset_of.items()))}
        raise ConfigError("inputs: give runs of one data set (got " +
                          ", ".join(f"{d} in {firsts[d]}" for d in sorted(datasets)) + ")")
    return datasets.pop()


def _software(design, run: Path | None, images, labels) -> dict:
    """The run's own accuracy and hidden spikes per neuron on these images, as `ttfs eval` gives them."""
    from hwmodel.aware import nominal_chip_of
    from training.evaluate import evaluate

    chip = None if run is None else nominal_chip_of(run, design.weights, design.model)
    r = evaluate(design.weights, design.model, images, labels, chip=chip)
    return {"software_accuracy": r["accuracy"], "software_spikes_per_neuron_mean": r["spikes_per_neuron_mean"]}


def _key(src: Source, hw: HardwareConfig, trials: int, images, labels) -> str:
    """Fingerprint of the input's files (a design's and its source run's model.yaml, which says what
    that run trained for), the hardware config (runs), trials and the images."""
    if src.kind == "design":
        run = read_mapping(src.path / "design.yaml").get("source_run")
        own = Path(run) / "model.yaml" if isinstance(run, str) and run else None
        files = [src.path / "design.npz", src.path / "design.yaml"] + ([own] if own and own.is_file() else [])
    else:
        files = [src.path / "model.npz", src.path / "model.yaml"]
    return digest(*files, None if src.kind == "design" else hw.to_dict(), trials, FORMAT,
                  np.asarray(images), np.asarray(labels))


def point(src: Source, group: str, hw: HardwareConfig, images, labels, trials: int, progress: bool) -> dict:
    """One row: the input mapped (runs) with `hw`, evaluated over `trials` chips and as software."""
    design, meta = load_source(src, hw)
    return design_row(src, group, design, meta, images, labels, trials, progress)


def design_row(src: Source, group: str, design, meta: dict, images, labels, trials: int, progress: bool) -> dict:
    """The row of `point` for the input's design (load_source's): accuracy and hidden spikes over
    `trials` chips, the run's regulariser and its software figures (energy.explore's rows too)."""
    from hwmodel.behavioural import evaluate    # numba: when a point is computed

    run = _source_run(src, design)
    r = evaluate(design, images, labels, trials=trials, progress=progress)
    reg = reg_of(meta)
    row = {"group": group, "input": src.name, "trained_for": trained_for(run, design.hw), "kind": reg["kind"],
           "strength": reg["strength"], "v_hat": "" if reg["v_hat"] is None else reg["v_hat"],
           "energy_strength": reg["energy_strength"],
           "seed": meta.get("seed", ""), "dataset": design.dataset,
           "layers": "-".join(str(n) for n in design.layers), **_software(design, run, images, labels),
           "accuracy": r["accuracy"], "accuracy_std": r["accuracy_std"],
           "spikes_per_neuron_mean": r["spikes_per_neuron_mean"], "spikes_per_neuron_std": r["spikes_per_neuron_std"],
           "output_spikes_per_neuron": r["output_spikes_per_neuron"], "n": r["n"], "trials": r["trials"]}
    for l, s in enumerate(r["spikes_per_neuron"]):
        row[f"spikes_per_neuron_l{l + 1}"] = s
    return row


def chip_tradeoff(groups, hw: HardwareConfig, images, labels, trials: int, out: str | Path,
                  progress: bool = True, on_point=None) -> list[dict]:
    """Rows for every input of every group (input_groups), each from OUT/cache/ when its
    fingerprint is there; on_point(row, cached) is called after each."""
    cache = Path(out) / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for group, sources in groups:
        for src in sources:
            key = _key(src, hw, trials, images, labels)
            path = cache / f"{key[:24]}.json"
            row = None
            if path.is_file():
                held = atomic_io.read_json(path, CheckpointError)
                row = held.get("row") if isinstance(held, dict) and held.get("fingerprint") == key else None
            cached = row is not None
            if not cached:
                row = point(src, group, hw, images, labels, trials, progress)
                atomic_io.write_text(path, json.dumps({"fingerprint": key, "row": row}))
            row = {**row, "group": group, "input": src.name}
            rows.append(row)
            if on_point is not None:
                on_point(row, cached)
    return rows


def tradeoff_figure(rows: list[dict], hw: HardwareConfig):
    """Accuracy on the chip against hidden spikes per neuron on the chip, a curve per group (filled,
    std over chips as bars), and each group's software figures (hollow, dashed)."""
    from matplotlib.figure import Figure     # no pyplot: the caller's backend stays as it is

    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    groups = list(dict.fromkeys(r["group"] for r in rows))
    for k, group in enumerate(groups):
        members = [r for r in rows if r["group"] == group]
        what = {r["trained_for"] for r in members}
        label = f"{group}, {TRAINED_FOR[what.pop()] if len(what) == 1 else 'mixed training'}"
        base = [r for r in members if r["kind"] == "none"]
        kinds = list(dict.fromkeys(r["kind"] for r in members if r["kind"] != "none")) or ["none"]
        for j, kind in enumerate(kinds):       # one line per regulariser, from the shared baseline
            pts = base + sorted((r for r in members if r["kind"] == kind and kind != "none"),
                                key=lambda r: (csv_number(r["strength"]), str(r["seed"])))
            name = label if len(kinds) == 1 else f"{label}, {kind}"
            first = j == 0
            x = np.array([csv_number(r["spikes_per_neuron_mean"]) for r in pts])
            y = np.array([csv_number(r["accuracy"]) for r in pts]) * 100
            e = np.array([csv_number(r["accuracy_std"]) for r in pts]) * 100
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, color=f"C{k}", ls=("-", ":", "-.")[j % 3],
                        label=f"{name}: on the chip")
            xs = np.array([csv_number(r["software_spikes_per_neuron_mean"]) for r in pts])
            ys = np.array([csv_number(r["software_accuracy"]) for r in pts]) * 100
            if np.isfinite(ys).any():
                ax.plot(xs, ys, ls="--", marker="o", mfc="none", color=f"C{k}", alpha=0.7,
                        label=f"{name}: software" if first or len(kinds) > 1 else None)
        x = np.array([csv_number(r["spikes_per_neuron_mean"]) for r in members])
        y = np.array([csv_number(r["accuracy"]) for r in members]) * 100
        for r, xi, yi in zip(members, x, y):
            text = "none" if r["kind"] == "none" else f"{r['kind']} {csv_number(r['strength']):g}"
            ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=6, color=f"C{k}")
    n, trials = rows[0]["n"], rows[0]["trials"]
    ax.set_xlabel("hidden spikes per neuron (mean over hidden layers)")
    ax.set_ylabel("test accuracy (%)")
    bits = "analog" if hw.bits is None else f"{hw.bits}-bit"
    layers = {r["layers"] for r in rows}
    net = f"{rows[0]['dataset']} {layers.pop()}" if len(layers) == 1 else rows[0]["dataset"]
    ax.set_title(f"{net} on the {hw.neuron} chip ({bits}; "
                 f"{trials} chip(s), {n} images)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_tradeoff(rows: list[dict], hw: HardwareConfig, out: str | Path) -> tuple[Path, Path]:
    """OUT/hw_tradeoff.csv (a row per input) and OUT/hw_tradeoff.png."""
    out = Path(out)
    csv_path, png_path = out / CSV_NAME, out / PNG_NAME
    atomic_io.write_csv(csv_path, rows)
    atomic_io.save_png(tradeoff_figure(rows, hw), png_path, dpi=130)
    return csv_path, png_path
