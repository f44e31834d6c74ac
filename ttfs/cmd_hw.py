"""ttfs map | hw-eval | hw-sweep | hw-tradeoff: map a run onto a crossbar design and simulate it behaviourally."""
from __future__ import annotations

import json
from pathlib import Path

from hwmodel.config import HardwareConfig
from hwmodel.design import Design, load_design, save_design
from hwmodel.sources import expect_kind
from hwmodel.mapping import map_model, with_common_scale
from hwmodel.sweep import PARAMS, parse_values, sweep, write_sweep
from training.checkpoint import load_model
from training.data import check_fits, load_split, select
from infra.errors import ConfigError
from infra.config import apply_overrides, build, load_config
from infra.atomic_io import prepare_out_dir
from ttfs import args as flags
from infra.folder_lock import folder_lock

SECTIONS = {"hw": HardwareConfig}       # --set hw.bits=4


def load_hw(path, overrides=()) -> HardwareConfig:
    return load_config(path, HardwareConfig, overrides, section="hw")


def map_run(run_dir, hw: HardwareConfig) -> Design:
    run = load_model(run_dir)
    check_fits(str(Path(run_dir) / "model.npz"), run.weights, run.dataset)
    return map_model(run.weights, run.model, hw, source_run=str(run_dir), dataset=run.dataset)


def design_or_run(path: Path, hw_path, overrides) -> Design:
    kind = expect_kind(path, ("design", "run"), "train one with 'ttfs train' and map it with "
                                                "'ttfs map RUN --hw HW.yaml --out DESIGN'")
    if kind == "design":
        design = load_design(path)
        if overrides or hw_path:
            hw = load_hw(hw_path, overrides) if hw_path else build(
                HardwareConfig, apply_overrides(design.hw.to_dict(), overrides), "hw")
            design = map_model(design.weights, design.model, hw, design.source_run, design.dataset)
        return design
    return map_run(path, load_hw(hw_path, overrides))


def cmd_map(args) -> int:
    prepare_out_dir(args.out)
    hw = load_hw(args.hw, flags.overrides(args)["hw"])
    if args.common_scale_with:
        if hw.full_scale_weight is not None:
            raise ConfigError("--common-scale-with: hw.full_scale_weight is already set; give one or the other")
        hw = with_common_scale(hw, [load_model(r).weights for r in [args.run, *args.common_scale_with]])
    design = map_run(args.run, hw)
    with folder_lock(args.out, "ttfs map"):
        save_design(design, args.out)
    print(f"design folder: {args.out}  (design.npz, design.yaml)  {design.neuron}, {design.scheme}, "
          f"time scale {design.time_scale_s:g} s, window {design.t_end_s:g} s")
    for l in range(design.n_layers):
        print(f"  layer{l}: {design.layers[l]}x{design.layers[l + 1]}  C {design.c_mem_f[l]:.4g} F  "
              f"V_th {design.v_th_v[l]:.4g} V  full-scale |w| {design.full_scale_weight[l]:.4g}  "
              f"{design.weight_per_siemens[l]:.4g} weight/S  clipped {design.n_clipped[l]}")
    return 0


def _data(design: Design, args, where: Path):
    """The test images `args.limit` names, checked against the design read from `where`."""
    check_fits(str(where), design.g_pos, design.dataset)
    return select(load_split(design.dataset, "test", args.data_dir), limit=args.limit)


def _model_label(design: Design) -> str:
    """What hw-eval's `model_accuracy` is: the trained model, or for a run trained for a chip, its
    weights on ideal neurons (its own figures are on its nominal chip: ttfs eval)."""
    from hwmodel.sources import source_run
    from training.trainer import saved_hw

    run = source_run(design)
    on_chip = run is not None and saved_hw(run) is not None
    return "trained for a chip; its weights on ideal neurons" if on_chip else "trained model"


def cmd_hw_eval(args) -> int:
    from hwmodel.behavioural import evaluate    # imported here: numba is not needed for --help

    hw_sets = flags.overrides(args)["hw"]
    design = load_design(args.design)
    if hw_sets:                                 # the same weights on the changed hardware
        design = design_or_run(args.design, None, hw_sets)
    data = _data(design, args, args.design / "design.npz")
    r = evaluate(design, data.images, data.labels, trials=args.trials, progress=not args.json and not args.quiet)
    if args.json:
        print(json.dumps({"design": str(args.design), **r}))
        return 0
    pm = "+-"
    print(f"{args.design}: {r['n']} {design.dataset} test images, {r['trials']} chip(s), "
          f"{design.neuron}/{design.scheme}  ({r['seconds']:.1f} s)")
    print(f"  accuracy                {r['accuracy'] * 100:.2f}% {pm} {r['accuracy_std'] * 100:.2f}  "
          f"({_model_label(design)} {r['model_accuracy'] * 100:.2f}%, same class as model "
          f"{r['agreement_with_model'] * 100:.2f}%)")
    print(f"  spikes/neuron (hidden)  {r['spikes_per_neuron_mean']:.4f} {pm} {r['spikes_per_neuron_std']:.4f}  "
          f"(model {r['model_spikes_per_neuron_mean']:.4f})")
    print(f"  output spikes/neuron    {r['output_spikes_per_neuron']:.4f}")
    print(f"  firing-time error       max {r['t_error_max']:.3e} s ({r['t_error_max_model']:.3e} model units), "
          f"mean {r['t_error_mean']:.3e} s")
    print(f"  spike mismatch          {r['spike_mismatch'] * 100:.3f}% of neurons fire in one and not the other")
    return 0


def cmd_hw_sweep(args) -> int:
    prepare_out_dir(args.out)
    design = design_or_run(args.source, args.hw, flags.overrides(args)["hw"])
    values = parse_values(args.param, args.values)
    data = _data(design, args, args.source)
    with folder_lock(args.out, "ttfs hw-sweep"):
        rows = sweep(design, args.param, values, data.images, data.labels, trials=args.trials,
                     progress=not args.quiet)
        csv_path, png_path = write_sweep(rows, args.out, args.param)
    for r in rows:
        both = "".join(f"  ({name} {r[key] * 100:.2f}%)"
                       for name, key in (("exact", "accuracy_exact"), ("first-order", "accuracy_first_order"))
                       if key in r)
        print(f"  {args.param} = {r['value']}: accuracy {r['accuracy'] * 100:.2f}% +- {r['accuracy_std'] * 100:.2f}"
              f"{both}")
    print(f"wrote {csv_path} and {png_path}")
    return 0


def cmd_hw_tradeoff(args) -> int:
    from hwmodel.tradeoff import TRAINED_FOR, chip_tradeoff, common_dataset, input_groups, write_tradeoff

    prepare_out_dir(args.out)
    hw = load_hw(args.hw, flags.overrides(args)["hw"])
    groups = input_groups(args.inputs)
    data = select(load_split(common_dataset(groups), "test", args.data_dir), limit=args.limit)

    def report(row: dict, cached: bool) -> None:
        if not args.quiet:
            print(f"  {row['input']}: on the chip {row['accuracy'] * 100:.2f}% +- {row['accuracy_std'] * 100:.2f}, "
                  f"{row['spikes_per_neuron_mean']:.3f} spikes/neuron; software {row['software_accuracy'] * 100:.2f}%, "
                  f"{row['software_spikes_per_neuron_mean']:.3f} ({TRAINED_FOR[row['trained_for']]}"
                  f"{', cached' if cached else ''})", flush=True)

    with folder_lock(args.out, "ttfs hw-tradeoff"):
        rows = chip_tradeoff(groups, hw, data.images, data.labels, args.trials, args.out,
                             progress=not args.quiet, on_point=report)
        csv_path, png_path = write_tradeoff(rows, hw, args.out)
    print(f"wrote {csv_path} ({len(rows)} inputs, {args.trials} chip(s), {len(data.labels)} images) and {png_path}")
    return 0


def _add_eval_args(p) -> None:
    p.add_argument("--limit", type=flags.count, default=None, help="use only the first N test images (default: all)")
    p.add_argument("--trials", type=flags.count, default=1, help="Monte-Carlo chips (trial 0 is the stored one)")


def register(sub, formatter) -> None:
    p = sub.add_parser("map", help="map a trained run onto a crossbar design", formatter_class=formatter,
                       parents=[flags.setting(SECTIONS)],
                       description="Map a trained run onto resistive-crossbar hardware: conductances, per-layer "
                                   "capacitance/threshold and one chip's non-idealities (docs/hwmodel.md).",
                       epilog="example:\n  ttfs map runs/mnist-784-400-10 --hw default --out designs/mnist"
                              "\n  ttfs map runs/mssr --hw default --common-scale-with runs/base "
                              "--out designs/mssr   # same chip design as runs/base mapped with --common-scale-with runs/mssr")
    p.add_argument("run", type=Path, help="run folder written by 'ttfs train'")
    p.add_argument("--hw", required=True, help="hardware config: a YAML file or a preset name (ttfs presets)")
    p.add_argument("--out", required=True, type=Path, help="design folder to write")
    p.add_argument("--common-scale-with", nargs="+", type=Path, default=[], metavar="RUN",
                   help="other runs of the same architecture to share one chip design with: per layer the largest "
                        "full-scale weight among all of them maps to g_max_s - g_min_s (sets hw.full_scale_weight), "
                        "so the designs' energies compare on the same hardware")
    p.set_defaults(func=cmd_map)

    p = sub.add_parser("hw-eval", help="behavioural accuracy of a design", formatter_class=formatter,
                       parents=[flags.setting(SECTIONS), flags.DATA_DIR, flags.QUIET],
                       description="Exact event-driven behavioural simulation of a design on the test set: accuracy, "
                                   "spikes per neuron and firing-time error against the trained model, as mean and "
                                   "std over Monte-Carlo chips. Times in seconds unless marked model units. "
                                   "--set hw.KEY=VALUE re-maps the design's weights with that hardware key changed.",
                       epilog="example:\n  ttfs hw-eval designs/mnist --trials 5 --json\n"
                              "  ttfs hw-eval designs/mnist --set hw.bits=4 --limit 1000")
    p.add_argument("design", type=Path, help="design folder written by 'ttfs map'")
    _add_eval_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (t_error_* in seconds)")
    p.set_defaults(func=cmd_hw_eval)

    p = sub.add_parser("hw-sweep", help="accuracy against one non-ideality (CSV + PNG)", formatter_class=formatter,
                       parents=[flags.setting(SECTIONS), flags.DATA_DIR, flags.QUIET],
                       description="Re-map with one non-ideality varied and plot accuracy against it. bits: "
                                   "conductance bits ('none' = analog); variation: lognormal sigma (0.05 = 5%%); "
                                   "offset: comparator offset sigma in volts; wire: row and column ohm per cell; "
                                   "tile: square tiles of N physical rows and columns ('none' = one tile). wire and "
                                   "tile report exact and first-order wires side by side.",
                       epilog="example:\n  ttfs hw-sweep designs/mnist --param bits --values 2 3 4 6 8 none "
                              "--limit 2000 --out sweeps/bits\n"
                              "  ttfs hw-sweep designs/mnist --param tile --values 64 128 256 none --limit 2000 "
                              "--out sweeps/tile")
    p.add_argument("source", type=Path, metavar="DESIGN_OR_RUN", help="design folder, or a run folder (mapped with --hw)")
    p.add_argument("--param", required=True, choices=tuple(PARAMS))
    p.add_argument("--values", required=True, nargs="+", help="values to try (space or comma separated)")
    p.add_argument("--out", required=True, type=Path, help="folder for sweep-PARAM.csv and sweep-PARAM.png")
    p.add_argument("--hw", default=None, help="hardware YAML for a run folder (default: the ideal defaults); for a design, replaces its config")
    _add_eval_args(p)
    p.set_defaults(func=cmd_hw_sweep)

    p = sub.add_parser("hw-tradeoff", help="the SSR trade-off on a chip: sweeps side by side (CSV + PNG)",
                       formatter_class=formatter, parents=[flags.setting(SECTIONS), flags.DATA_DIR, flags.QUIET],
                       description="Map every run of each sweep (or each run given; a design keeps its own chip) onto one chip and "
                                   "evaluate it over Monte-Carlo chips: accuracy on the chip against hidden spikes "
                                   "per neuron on the chip, one curve per folder given, next to each run's own "
                                   "software figures (ttfs eval). Give a sweep trained for the chip (ttfs sweep --hw) "
                                   "and one trained for ideal neurons to see what training for the chip buys. "
                                   "Writes OUT/hw_tradeoff.csv and OUT/hw_tradeoff.png; OUT/cache/ keeps each "
                                   "input's figures, so a rerun computes only what changed.",
                       epilog="example:\n  ttfs hw-tradeoff runs/sweep-chip runs/sweep-ideal --hw default --trials 5 "
                              "--out runs/tradeoff-default")
    p.add_argument("inputs", nargs="+", type=Path, metavar="SWEEP_OR_RUN",
                   help="sweep folders (ttfs sweep), run folders or design folders: one curve each")
    p.add_argument("--hw", required=True, help="the chip: a hardware config file or preset name (ttfs presets)")
    p.add_argument("--out", required=True, type=Path, help="folder for hw_tradeoff.csv, hw_tradeoff.png and cache/")
    p.add_argument("--trials", type=flags.count, default=5, help="Monte-Carlo chips per input (trial 0: the stored one)")
    p.add_argument("--limit", type=flags.count, default=None, help="use only the first N test images (default: all)")
    p.set_defaults(func=cmd_hw_tradeoff)
