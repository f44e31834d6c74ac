"""ttfs energy-report | energy-validate: energy per inference (what SSR saves), and its check in ngspice."""
from __future__ import annotations

import json
from pathlib import Path

from energy.config import EnergyConfig
from hwmodel.config import HardwareConfig
from infra.config import load_config
from infra.atomic_io import prepare_out_dir
from ttfs import args as flags

REPORT_SECTIONS = {"hw": HardwareConfig, "energy": EnergyConfig}   # --set hw.bits=4 --set energy.v_swing_v=1.5
VALIDATE_SECTIONS = {"energy": EnergyConfig}


def load_energy(path, overrides=()) -> EnergyConfig:
    """EnergyConfig from YAML (None: the defaults) with `key=value` overrides (the `energy.` --set items)."""
    return load_config(path, EnergyConfig, overrides, section="energy")


def _load_hw(path, overrides=()):
    return load_config(path, HardwareConfig, overrides, section="hw")


def _check_designs_take_no_hw_sets(inputs, hw_sets) -> None:
    """--set hw.KEY changes how run folders are mapped; a design folder keeps the hardware it was
    mapped with, so a --set beside one would silently not apply to it: an error instead."""
    if not hw_sets:
        return
    from hwmodel.sources import folder_kind
    from infra.errors import ConfigError
    for path in inputs:
        if folder_kind(path) == "design":
            raise ConfigError(f"--set hw.{hw_sets[0]}: applies to run folders (mapped with --hw), but {path} is a "
                              "design folder, which keeps the hardware it was mapped with; give its run folder, "
                              f"or map it again with 'ttfs map RUN --hw HW --set hw.{hw_sets[0]} --out DESIGN'")


def cmd_report(args) -> int:
    prepare_out_dir(args.out)
    from energy.anchors import OPS_PER_MAC
    from energy.report import build_report
    sets = flags.overrides(args)
    hw = _load_hw(args.hw, sets["hw"])
    _check_designs_take_no_hw_sets(args.inputs, sets["hw"])
    cfg = load_energy(args.energy, sets["energy"])
    report = build_report(args.inputs, hw, cfg, rate_hz=args.rate, limit=args.limit, out=args.out,
                          data_dir=args.data_dir, progress=not args.quiet, scale=args.scale)
    print(f"report folder: {args.out}  (report.md, report.json, breakdown.png, energy_vs_accuracy.png); "
          f"mapping scale: {args.scale}")
    for r in report["runs"]:
        print(f"  {r['name']}: accuracy {100 * r['accuracy']:.2f}%, spikes/neuron {r['spikes_per_neuron_mean']:.3f}, "
              f"{r['energy_per_inference_j'] * 1e9:.4g} nJ/inference ({r['savings_pct']:+.1f}% saved), "
              f"spike-driven {r['spike_energy_j'] * 1e9:.4g} nJ ({r['spike_energy_savings_pct']:+.1f}%)")
        print(f"    {_per(r['energy_per_mac_j'])} fJ/MAC ({r['macs_per_inference']} MACs), "
              f"{_per(r['energy_per_sop_j'])} fJ/synaptic op ({r['synaptic_ops_per_inference']:.4g} ops, "
              f"{r['cells_per_synapse']} cells each), {_per(r['tops_per_w_equivalent'], 1.0)} TOPS/W-equivalent "
              f"({OPS_PER_MAC} ops/MAC), {r['average_power_w'] * 1e6:.4g} uW at {r['rate_hz']:g}/s, "
              f"EDP {r['edp_js'] * 1e15:.4g} nJ*us")
    if report["runs"]:
        print("  published (their own operation counts): " + "; ".join(
            f"{a['name']} {a['figure']:g} {a['unit']}" for a in report["anchors"]) + "  (report.md: conditions)")
    return 0


def _per(x, scale: float = 1e-15) -> str:
    return "-" if x is None else f"{x / scale:.4g}"


def cmd_validate(args) -> int:
    from energy.validate import validate
    from hwmodel.design import load_design
    from hwmodel.sources import expect_kind
    from training.data import check_fits, load_split, select
    expect_kind(args.design, ("design",), "make one with 'ttfs map RUN --hw ideal --out DESIGN'")
    design = load_design(args.design)
    cfg = load_energy(args.energy, flags.overrides(args)["energy"])
    check_fits(str(args.design / "design.npz"), design.g_pos, design.dataset)
    data = select(load_split(design.dataset, "test", args.data_dir), limit=args.limit)
    result = validate(design, data.images, cfg, progress=not (args.quiet or args.json), wires=args.wires)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.design}: {result['n_images']} images, {result['neuron']}, {result['scheme']}, gating "
          f"{result['gating']}; compared: {result['compared']}")
    print(f"  {'image':>5} {'ngspice (nJ)':>13} {'model (nJ)':>11} {'error':>8} {'model@circuit times':>20}")
    for p in result["images"]:
        print(f"  {p['image']:>5} {p['measured_j'] * 1e9:>13.5g} {p['model_j'] * 1e9:>11.5g} "
              f"{100 * p['rel_error']:>7.3f}% {100 * p['rel_error_at_circuit_times']:>19.3f}%")
    wire_j = [p["model_wire_heat_j"] for p in result["images"] if p["model_wire_heat_j"] is not None]
    if wire_j:
        print(f"  heat in the wires (model, exact): {sum(wire_j) / len(wire_j) * 1e9:.5g} nJ per image on average")
    print(f"  mean |relative error| {100 * result['mean_abs_rel_error']:.3f}% (max "
          f"{100 * result['max_abs_rel_error']:.3f}%); at the circuit's own firing times "
          f"{100 * result['mean_abs_rel_error_at_circuit_times']:.3f}%; {result['seconds']:.1f} s")
    print("  by source (model terms vs measured): " + ", ".join(
        f"{k} {100 * v:.3f}%" for k, v in result["mean_abs_rel_error_by_source"].items())
        + "  (rows: conduction + row_switching [+ capacitor for passive]; opamp: capacitor + clamp)")
    print(f"  bookkeeping elements (read-only signals) deliver at most {result['max_bookkeeping_share']:.2g} "
          "of an image's energy")
    return 0


def register(sub, formatter) -> None:
    p = sub.add_parser("energy-report", help="energy per inference of runs/designs and what SSR saves",
                       formatter_class=formatter,
                       parents=[flags.setting(REPORT_SECTIONS), flags.DATA_DIR, flags.QUIET],
                       description="Energy per inference (breakdown by component and layer), spikes per neuron, "
                                   "accuracy, average power, energy-delay product, energy per MAC and per synaptic "
                                   "operation and TOPS/W-equivalent beside published circuits, and savings relative "
                                   "to the first input, over the test set. Inputs: run folders (mapped with --hw), design "
                                   "folders, or sweep folders (their runs, baseline first). Model: docs/energy.md.",
                       epilog="examples:\n  ttfs energy-report runs/ssr-sweep-mnist --hw default "
                              "--out reports/energy-mnist\n  ttfs energy-report runs/base runs/mssr --hw "
                              "ideal --energy default --rate 1000 --limit 1000 "
                              "--out /tmp/energy")
    p.add_argument("inputs", nargs="+", type=Path, metavar="RUN_OR_DESIGN",
                   help="run, design or sweep folders; the first is the reference for savings")
    p.add_argument("--hw", required=True, help="hardware config used to map run folders: a YAML file or a preset name (ttfs presets)")
    p.add_argument("--energy", default=None, help="energy config: a YAML file or a preset name (default: the built-in "
                                                  "defaults, the same as the preset default)")
    p.add_argument("--rate", type=flags.positive, default=1000.0, help="inference rate in Hz for the average power")
    p.add_argument("--limit", type=flags.count, default=None, help="use only the first N test images (default: all)")
    p.add_argument("--out", required=True, type=Path, help="report folder to write")
    p.add_argument("--scale", choices=["common", "per-run"], default="common",
                   help="weight-to-conductance scale of run folders: 'common' maps runs of one architecture onto "
                        "one chip design (per layer the largest full-scale weight among them), so savings compare "
                        "networks on the same hardware; 'per-run' scales each run by its own full-scale weight (hw.full_scale_percentile of |w|)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("energy-validate", help="energy model against ngspice-measured source energy",
                       formatter_class=formatter,
                       parents=[flags.setting(VALIDATE_SECTIONS), flags.DATA_DIR, flags.QUIET],
                       description="Simulate N test images in ngspice (layer by layer, netlists package), integrate "
                                   "the power every source delivers over the window and compare it image by image "
                                   "with the model's total: every component, the integrator's output clamp at the "
                                   "energy config's swing, the design's gating (hw.gating). The netlists carry the "
                                   "clamp, the gating and the supply terms (static bias, comparator decisions, row "
                                   "switching). docs/energy.md, 'Validation in ngspice'.",
                       epilog="example:\n  ttfs map runs/small --hw ideal --out /tmp/d && "
                              "ttfs energy-validate /tmp/d --limit 5 --json")
    p.add_argument("design", type=Path, help="design folder written by 'ttfs map'")
    p.add_argument("--limit", type=flags.count, default=5, help="number of test images")
    p.add_argument("--energy", default=None, help="energy config: a YAML file or a preset name (default: the "
                                                  "built-in defaults); its swing clamps the netlists' op-amps")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    flags.add_wires(p)
    p.set_defaults(func=cmd_validate)
