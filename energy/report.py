"""`ttfs energy-report`: energy per inference of runs and designs, side by side, with what SSR saves.

Inputs are run folders (mapped on the fly with the given hardware config), design folders, or
sweep folders (every subfolder that is a run or design, the baseline -- reg.kind none -- first).
For each, over the test set: accuracy of the hardware (behavioural model of the stored chip),
spikes per neuron per layer, energy per inference and its breakdown by component and by layer
(energy.model), average power at an inference rate, delay and energy-delay product, the savings
in percent relative to the first input, and the field's efficiency metrics (MACs and synaptic
operations per inference, energy per MAC and per synaptic operation, TOPS/W-equivalent;
`field_metrics`) beside the published anchors (energy.anchors). Writes REPORT/report.json,
REPORT/report.md and PNG plots; each input's figures are cached in REPORT/cache/ under a
fingerprint of everything they depend on (the input's arrays and YAML, the hardware and energy
configs, the test data, limit and rate; infra.fingerprint), so a rerun only computes what changed.
REPORT is locked while it is written.
"""
from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import numpy as np

from energy.anchors import ANCHORS, OPS_PER_MAC
from energy.config import EnergyConfig
from energy.model import COMPONENTS, design_energy
from hwmodel.config import rows_per_input
from hwmodel.sources import Source, load_source, read_mapping, reg_of, resolve_sources
from infra import atomic_io, provenance
from infra.fingerprint import digest
from infra.folder_lock import folder_lock
from infra.errors import CheckpointError, ConfigError

# 6: the output clamp one-sided (above the threshold), reg.energy_strength in `reg`; 5: the integrator's output clamp (component `clamp`, the capacitor at the clamped end voltage),
# gating (`gating`, `t_stop_s`); 4: the field's metrics (field_metrics); 3: exact wire energy for
# finite gain and passive. Caches of another format are recomputed (the format is part of their
# fingerprint, as the hardware keys, gating among them, are).
FORMAT = "ttfs-energy-report/6"
DELAY_DEFINITION = ("time of the first output spike (the decision), or the window end t_end_s when no "
                    "output neuron fires")
# Markdown units: name -> (suffix shown in the header, scale the JSON value is divided by)
UNITS = {"nJ": 1e-9, "fJ": 1e-15, "uW": 1e-6, "us": 1e-6, "nJ*us": 1e-15, "%": 1.0, "": 1.0}
OPERATION_DEFINITIONS = {
    "mac": ("multiply-accumulate of a dense layer: n_in x n_out per layer, every weight once per inference "
            "(the work a digital accelerator would do)"),
    "synaptic_op": ("a fired input row of a crossbar (an input pixel that spikes within the window for the "
                    "first, a spike of the layer below for later ones) x the n_out logical synapses it drives"),
    "tops_per_w_equivalent": (f"{OPS_PER_MAC} operations per MAC x MACs per inference / energy per inference, "
                              "in 1e12 operations per second per watt"),
}


SCALES = ("common", "per-run")


def source_hardware(sources: list[Source], hw, scale: str) -> dict:
    """The hardware config each run folder is mapped with (designs keep their own mapping).

    scale "common": runs of one architecture share one chip design -- per layer, the largest of
    their full-scale weights (`hw.full_scale_percentile` of |w|) maps to g_max_s - g_min_s -- so
    a weight costs the same siemens in every run and energy differences come from the networks,
    not from each run's own weight-to-conductance scale. "per-run": each run scaled by its own
    weights. An explicit hw.full_scale_weight is used as given in both cases.
    """
    if scale not in SCALES:
        raise ConfigError(f"--scale: must be one of {', '.join(SCALES)} (got {scale!r})")
    runs = [s for s in sources if s.kind == "run"]
    if hw is None or scale == "per-run" or hw.full_scale_weight is not None:
        return {s.path: hw for s in runs}
    from hwmodel.mapping import with_common_scale
    from training.checkpoint import load_model
    weights = {s.path: load_model(s.path).weights for s in runs}
    groups = {}
    for path, ws in weights.items():
        groups.setdefault(tuple(w.shape for w in ws), []).append(path)
    hw_of = {}
    for paths in groups.values():
        common = with_common_scale(hw, [weights[p] for p in paths])
        hw_of.update({p: common for p in paths})
    return hw_of


def _cache_key(src: Source, hw, cfg: EnergyConfig, limit, rate_hz: float, data) -> str:
    """Fingerprint of everything an input's figures depend on: its arrays and YAML, the hardware
    config it is mapped with (runs), the energy config, the test images and labels, limit and rate."""
    files = ("design.npz", "design.yaml") if src.kind == "design" else ("model.npz", "model.yaml")
    return digest(*[src.path / f for f in files], None if hw is None or src.kind == "design" else hw.to_dict(),
                  cfg.to_dict(), limit, rate_hz, FORMAT, data.images, data.labels)


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def field_metrics(design, result) -> dict:
    """The field's efficiency figures of one run (OPERATION_DEFINITIONS), from the energy per inference
    (the report's total) and the fired rows the energy model counted: result.spikes[:, l] is the mean
    number of inputs (logical rows; a dual-rail one switches two physical rows) group l fires within the
    window (the input pixels for l = 0, layer l-1's spikes
    after), which drive crossbar l's n_out neurons."""
    layers = list(design.layers)
    pairs = list(zip(layers[:-1], layers[1:]))
    macs = [n_in * n_out for n_in, n_out in pairs]
    fired = [float(result.spikes[:, l].mean()) for l in range(len(pairs))]
    sops = [f * n_out for f, (_, n_out) in zip(fired, pairs)]
    rows, cells = rows_per_input(design.scheme, layers[1])
    e = float(result.total_j.mean())
    return {
        "macs_per_layer": macs,
        "macs_per_inference": int(sum(macs)),
        "fired_rows_per_layer": fired,
        "synaptic_ops_per_layer": sops,
        "synaptic_ops_per_inference": float(sum(sops)),
        "cells_per_synapse": rows * cells // layers[1],
        "energy_per_mac_j": _ratio(e, sum(macs)),
        "energy_per_sop_j": _ratio(e, sum(sops)),
        "tops_per_w_equivalent": None if not e > 0 else float(OPS_PER_MAC * sum(macs) / e / 1e12),
    }


def run_stats(name: str, design, meta: dict, result, pred, labels, rate_hz: float) -> dict:
    """Every figure of one run (floats in SI units), as report.json holds it."""
    labels = np.asarray(labels)
    n = len(labels)
    L = design.n_layers
    widths = list(design.layers[1:])
    spn = [float(result.spikes[:, g + 1].mean() / widths[g]) for g in range(L)]
    hidden = spn[:-1]
    total = result.total_j
    by_comp = result.energy_j.mean(axis=0)          # (G, C)
    breakdown = {c: float(by_comp[:, k].sum()) for k, c in enumerate(COMPONENTS)}
    by_layer = {g: {c: float(by_comp[i, k]) for k, c in enumerate(COMPONENTS)}
                for i, g in enumerate(result.groups)}
    spike_e = result.spike_energy_j
    neuron_spike = result.energy_j[:, 1:, [COMPONENTS.index(c) for c in ("comparator", "row_switching",
                                                                         "conduction")]].sum(axis=(1, 2))
    e_mean = float(total.mean())
    delay = result.delay_s
    reg = reg_of(meta)
    return {
        "name": name,
        "source": str(meta.get("_source", "")),
        "dataset": design.dataset,
        "layers": list(design.layers),
        "neuron": design.neuron,
        "scheme": design.scheme,
        "weight_bits": design.hw.bits,       # conductance levels 2**bits; None: analog (not quantised)
        "gating": design.hw.gating,
        "decision_guard_s": float(design.hw.decision_guard_s),
        "reg": reg,
        "n_images": int(n),
        "accuracy": float((np.asarray(pred) == labels).mean()),
        "model_test_accuracy": meta.get("test_accuracy"),
        "spikes_per_neuron": hidden,
        "spikes_per_neuron_mean": float(np.mean(hidden)) if hidden else 0.0,
        "output_spikes_per_neuron": spn[-1],
        "spikes_per_inference": {g: float(result.spikes[:, i].mean()) for i, g in enumerate(result.groups)},
        "energy_per_inference_j": e_mean,
        "energy_per_inference_std_j": float(total.std()),
        "breakdown_j": breakdown,
        "breakdown_by_layer_j": by_layer,
        "spike_energy_j": float(spike_e.mean()),
        "neuron_spike_energy_j": float(neuron_spike.mean()),
        "conduction_exact_j": float(result.conduction_exact_j.sum(axis=1).mean()),
        "conduction_spike_count_j": float(result.conduction_spike_count_j.sum(axis=1).mean()),
        # the wires' share of the exact conduction (exact wire model), None where the model has no wires' split
        "wire_heat_j": None if result.wire_heat_j is None else float(result.wire_heat_j.sum(axis=1).mean()),
        "rate_hz": float(rate_hz),
        "average_power_w": e_mean * rate_hz,
        "delay_s": float(delay.mean()),
        "output_fired_fraction": float(result.output_fired.mean()),
        "edp_js": float((total * delay).mean()),
        "window_s": float(design.t_end_s),
        # when the inference ended: the window end, or with gating the decision plus its guard
        "t_stop_s": float(result.t_stop_s.mean()) if result.t_stop_s is not None else float(design.t_end_s),
        "full_scale_weight": [float(x) for x in design.full_scale_weight],
        "savings_pct": 0.0,
        "spike_energy_savings_pct": 0.0,
        **field_metrics(design, result),
    }


def add_savings(runs: list[dict]) -> None:
    """Savings in percent of each run relative to the first (positive = uses less)."""
    if not runs:
        return
    base = runs[0]
    for r in runs:
        for key, out in (("energy_per_inference_j", "savings_pct"), ("spike_energy_j", "spike_energy_savings_pct"),
                         ("neuron_spike_energy_j", "neuron_spike_energy_savings_pct"), ("edp_js", "edp_savings_pct")):
            b = base[key]
            r[out] = float(100.0 * (b - r[key]) / b) if b > 0 else 0.0


def build_report(paths, hw, cfg: EnergyConfig, rate_hz: float = 1e3, limit: int | None = None,
                 out: str | Path | None = None, data_dir=None, progress: bool = True,
                 batch_size: int = 1000, scale: str = "common") -> dict:
    """Compute (or reuse from REPORT/cache) every input's figures; write the report if `out`.

    Run folders are mapped with `hw` at a full scale chosen by `scale` (`source_hardware`)."""
    from training.data import DATASETS, check_fits, load_split, select
    if not rate_hz > 0 or not math.isfinite(rate_hz):
        raise ConfigError(f"--rate: must be a positive number of inferences per second (got {rate_hz})")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit: must be >= 1 (got {limit})")
    sources = resolve_sources(paths)
    hw_of = source_hardware(sources, hw, scale)
    out = Path(out) if out is not None else None
    splits, runs = {}, []

    def split(dataset):
        if dataset not in splits:
            splits[dataset] = select(load_split(dataset, "test", data_dir), limit=limit)
        return splits[dataset]

    with folder_lock(out, "ttfs energy-report") if out is not None else contextlib.nullcontext():
        for src in sources:
            src_hw = hw_of.get(src.path, hw)
            cache = out / "cache" / (src.name.replace("/", "__") + ".json") if out is not None else None
            key = None
            if cache is not None:
                meta_yaml = src.path / ("design.yaml" if src.kind == "design" else "model.yaml")
                dataset = read_mapping(meta_yaml).get("dataset", "mnist")
                if dataset in DATASETS:     # else load_source below reports what is wrong
                    key = _cache_key(src, src_hw, cfg, limit, rate_hz, split(dataset))
            if key is not None and cache.is_file():
                try:
                    cached = atomic_io.read_json(cache, CheckpointError)
                except CheckpointError:         # a damaged cache is recomputed
                    cached = None
                if (isinstance(cached, dict) and cached.get("fingerprint") == key
                        and isinstance(cached.get("stats"), dict)):
                    runs.append(cached["stats"])
                    continue
            design, meta = load_source(src, src_hw)
            window = design.t_end_s
            if rate_hz * window > 1:
                raise ConfigError(f"--rate: {rate_hz:g} inferences/s leaves less than one window ({window:g} s) per "
                                  f"inference; use at most {1 / window:g}")
            check_fits(str(src.path), design.g_pos, design.dataset)
            data = split(design.dataset)
            result, pred = design_energy(design, cfg, data.images, batch_size, progress, desc=src.name)
            stats = run_stats(src.name, design, {**meta, "_source": str(src.path)}, result, pred, data.labels, rate_hz)
            runs.append(stats)
            if key is not None:
                atomic_io.write_text(cache, json.dumps({"fingerprint": key, "stats": stats}))
        add_savings(runs)
        report = _report(runs, hw, cfg, rate_hz, limit, scale)
        if out is not None:
            write_report(report, out)
    return report


def _report(runs: list, hw, cfg: EnergyConfig, rate_hz: float, limit, scale: str) -> dict:
    return {
        "format": FORMAT,
        "runs": runs,
        "energy_config": cfg.to_dict(),
        "hw_config": None if hw is None else hw.to_dict(),
        "rate_hz": float(rate_hz),
        "limit": limit,
        "scale": scale,
        "scale_definition": ("common: run folders of one architecture are mapped onto one chip design (per layer "
                             "the largest full-scale weight among them); per-run: each at its own full scale; "
                             "design folders keep the mapping they were made with"),
        "delay_definition": DELAY_DEFINITION,
        "savings_definition": "100 * (first - this) / first, per inference; the first input is the reference",
        "conduction_form": cfg.conduction_form,
        "accuracy_definition": "hardware accuracy: behavioural model of the stored chip on the test images",
        "operation_definitions": OPERATION_DEFINITIONS,
        "anchors": [a.to_dict() for a in ANCHORS],
        provenance.KEY: provenance.provenance(),
    }


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _e(x):
    return _fmt(x / UNITS["nJ"])


def render_markdown(report: dict) -> str:
    """report.md: every number shown is in report.json (the header names the unit)."""
    runs = report["runs"]
    rate = report["rate_hz"]
    lines = ["# Energy report", ""]
    if runs:
        n = runs[0]["n_images"]
        lines += [f"{len(runs)} input(s), {n} test images each (data set: "
                  f"{', '.join(sorted({r['dataset'] for r in runs}))}). Savings are relative to the first row "
                  f"(`{runs[0]['name']}`). Conduction form: {report['conduction_form']}. Mapping scale: "
                  f"{report['scale']} ({report['scale_definition']}). Model: docs/energy.md.", ""]
    lines += ["## Summary", "",
              "| run | reg | accuracy (%) | hidden spikes/neuron | output spikes/neuron | energy/inference (nJ) "
              "| savings (%) | spike-driven energy (nJ) | spike-driven savings (%) | neuron-spike energy (nJ) "
              f"| neuron-spike savings (%) | power at {rate:g}/s (uW) | delay (us) | EDP (nJ*us) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        reg = r["reg"]
        reg_s = reg["kind"] if reg["kind"] == "none" else f"{reg['kind']} {reg['strength']:g}"
        lines.append(
            f"| {r['name']} | {reg_s} | {_fmt(100 * r['accuracy'])} | {_fmt(r['spikes_per_neuron_mean'])} | "
            f"{_fmt(r['output_spikes_per_neuron'])} | {_e(r['energy_per_inference_j'])} | {_fmt(r['savings_pct'])} | "
            f"{_e(r['spike_energy_j'])} | {_fmt(r['spike_energy_savings_pct'])} | {_e(r['neuron_spike_energy_j'])} | "
            f"{_fmt(r['neuron_spike_energy_savings_pct'])} | {_fmt(r['average_power_w'] / UNITS['uW'])} | {_fmt(r['delay_s'] / UNITS['us'])} | "
            f"{_fmt(r['edp_js'] / UNITS['nJ*us'])} |")
    lines += _efficiency_lines(report)
    lines += ["", "## Breakdown per inference (nJ)", "",
              "| run | " + " | ".join(f"{c} (nJ)" for c in COMPONENTS) + " | total (nJ) |",
              "|---|" + "---|" * (len(COMPONENTS) + 1)]
    for r in runs:
        lines.append(f"| {r['name']} | " + " | ".join(_e(r["breakdown_j"][c]) for c in COMPONENTS)
                     + f" | {_e(r['energy_per_inference_j'])} |")
    lines += ["", "## By layer (nJ per inference; `input` = the pixel rows, layerL = neurons of layer L and the "
              "rows their spikes drive)", "",
              "| run | layer | spikes per inference | " + " | ".join(f"{c} (nJ)" for c in COMPONENTS) + " |",
              "|---|---|---|" + "---|" * len(COMPONENTS)]
    for r in runs:
        for g, comp in r["breakdown_by_layer_j"].items():
            lines.append(f"| {r['name']} | {g} | {_fmt(r['spikes_per_inference'][g])} | "
                         + " | ".join(_e(comp[c]) for c in COMPONENTS) + " |")
    lines += ["", "## Spikes per neuron per hidden layer", "",
              "| run | " + " | ".join(f"layer{l}" for l in range(max((len(r['spikes_per_neuron']) for r in runs),
                                                                      default=0))) + " |",
              "|---|" + "---|" * max((len(r['spikes_per_neuron']) for r in runs), default=0)]
    for r in runs:
        lines.append(f"| {r['name']} | " + " | ".join(_fmt(s) for s in r["spikes_per_neuron"]) + " |")
    lines += ["", "## Mapping: full-scale weight per layer (model weight at g_max_s - g_min_s)", "",
              "| run | " + " | ".join(f"w{l}" for l in range(max(len(r["full_scale_weight"]) for r in runs))) + " |",
              "|---|" + "---|" * max(len(r["full_scale_weight"]) for r in runs)]
    for r in runs:
        lines.append(f"| {r['name']} | " + " | ".join(_fmt(x) for x in r["full_scale_weight"]) + " |")
    lines += ["", "## Conduction: exact against the spike-count form (nJ per inference)", "",
              "| run | exact (nJ) | spike-count (nJ) | of the exact, heat in the wires (nJ) |", "|---|---|---|---|"]
    for r in runs:
        wire = "-" if r.get("wire_heat_j") is None else _e(r["wire_heat_j"])
        lines.append(f"| {r['name']} | {_e(r['conduction_exact_j'])} | {_e(r['conduction_spike_count_j'])} | {wire} |")
    lines += ["", "## Definitions", "",
              f"- Delay: {report['delay_definition']}. EDP: mean over images of energy x delay.",
              "- Energy is counted to each image's t_stop: the window end t_end_s, or with hw.gating decision or "
              "column the first output spike plus hw.decision_guard_s (docs/hwmodel.md, \"Gating\"); "
              + "; ".join(f"`{r['name']}`: gating {r['gating']}, mean t_stop {_fmt(r['t_stop_s'] / UNITS['us'])} us"
                          for r in runs) + ".",
              "- clamp: the energy the integrator's op-amp output delivers into its output clamp (|y| held at the "
              "swing); capacitor: the energy left in the membrane capacitors at t_stop.",
              f"- Average power: energy per inference x {rate:g} inferences/s, circuits power-gated between "
              "inferences (no idle leakage).",
              "- Spike-driven energy: comparator decisions, row switching and crossbar conduction (input rows "
              "included); neuron-spike energy: the same for the spikes of the network's neurons (hidden and output), "
              "without the input rows, which all switch once per image. Both fall with fewer, later spikes.",
              f"- Savings: {report['savings_definition']}.",
              f"- Accuracy: {report['accuracy_definition']}.",
              f"- MAC: {OPERATION_DEFINITIONS['mac']}. Synaptic operation: {OPERATION_DEFINITIONS['synaptic_op']}; "
              "a logical synapse is `cells per synapse` physical cells (g_pos and g_neg). TOPS/W-equivalent: "
              f"{OPERATION_DEFINITIONS['tops_per_w_equivalent']} ({OPS_PER_MAC} operations per MAC). Energy per MAC "
              "and per synaptic operation: the energy per inference (the total above) over their counts.",
              "- Plots: breakdown.png (stacked components per run), energy_vs_accuracy.png.", ""]
    return "\n".join(lines)


def _opt(x, unit: str = "") -> str:
    return "-" if x is None else _fmt(x / UNITS[unit])


def _bits(bits) -> str:
    return "analog conductances" if bits is None else f"{bits}-bit conductances"


def _efficiency_lines(report: dict) -> list[str]:
    """report.md's efficiency sections: the field's metrics per run, operations per crossbar, and the
    runs beside the published anchors (report["anchors"], from energy.anchors)."""
    runs, rate = report["runs"], report["rate_hz"]
    lines = ["", f"## Efficiency (the field's metrics; {OPS_PER_MAC} operations per MAC)", "",
             "| run | energy/inference (nJ) | MACs/inference | synaptic ops/inference | cells per synapse "
             "| energy/MAC (fJ) | energy/synaptic op (fJ) | TOPS/W-equivalent (TOPS/W) "
             f"| power at {rate:g}/s (uW) | EDP (nJ*us) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['name']} | {_e(r['energy_per_inference_j'])} | {_fmt(r['macs_per_inference'])} | "
                     f"{_fmt(r['synaptic_ops_per_inference'])} | {r['cells_per_synapse']} | "
                     f"{_opt(r['energy_per_mac_j'], 'fJ')} | {_opt(r['energy_per_sop_j'], 'fJ')} | "
                     f"{_opt(r['tops_per_w_equivalent'])} | {_fmt(r['average_power_w'] / UNITS['uW'])} | "
                     f"{_fmt(r['edp_js'] / UNITS['nJ*us'])} |")
    lines += ["", "## Operations per crossbar (per inference)", "",
              "| run | crossbar | fired input rows | neurons driven (n_out) | synaptic ops | MACs |",
              "|---|---|---|---|---|---|"]
    for r in runs:
        for l, (fired, sops, macs) in enumerate(zip(r["fired_rows_per_layer"], r["synaptic_ops_per_layer"],
                                                    r["macs_per_layer"])):
            lines.append(f"| {r['name']} | crossbar{l} | {_fmt(fired)} | {r['layers'][l + 1]} | {_fmt(sops)} | "
                         f"{_fmt(macs)} |")
    lines += ["", "## Against published circuits", "",
              "| circuit | TOPS/W-equivalent (TOPS/W) | energy/MAC (fJ) | technology | precision | conditions |",
              "|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['name']} | {_opt(r['tops_per_w_equivalent'])} | {_opt(r['energy_per_mac_j'], 'fJ')} | "
                     f"model, no process | {_bits(r['weight_bits'])} | this toolkit's energy model, "
                     f"{r['neuron']} neurons, {r['scheme']}, "
                     f"{r['n_images']} test images |")
    for a in report["anchors"]:
        lines.append(f"| {a['name']} | {_fmt(a['figure'])} | {_opt(a['energy_per_mac_j'], 'fJ')} | "
                     f"{a['technology']} | {a['precision']} | {a['conditions']} |")
    lines += ["", "Caveat: the anchors count operations of their own circuits (their own weighted sums, sizes and "
              f"precision, in simulation); their energy/MAC assumes {OPS_PER_MAC} operations per MAC, which their "
              "sources do not confirm. Ours count every weight of the dense layers once per inference.", ""]
    lines += [f"- {a['name']}: {a['citation']}." for a in report["anchors"]]
    return lines


def write_report(report: dict, out: str | Path) -> None:
    from energy.plots import plot_breakdown, plot_energy_vs_accuracy
    out = Path(out)
    atomic_io.write_text(out / "report.json", json.dumps(report, indent=1))
    atomic_io.write_text(out / "report.md", render_markdown(report))
    if report["runs"]:
        plot_breakdown(report["runs"], out / "breakdown.png")
        plot_energy_vs_accuracy(report["runs"], out / "energy_vs_accuracy.png")
