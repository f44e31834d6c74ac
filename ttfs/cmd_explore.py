"""ttfs explore: a grid of hardware designs times trained runs, accuracy against energy, the Pareto front."""
from __future__ import annotations

from pathlib import Path

from energy.config import EnergyConfig
from hwmodel.config import HardwareConfig
from infra.atomic_io import prepare_out_dir
from infra.errors import ConfigError
from ttfs import args as flags
from ttfs.cmd_energy import load_energy
from ttfs.cmd_hw import load_hw

SECTIONS = {"hw": HardwareConfig, "energy": EnergyConfig}     # --set hw.bits=4 --set energy.e_comparator_j=1e-14


def cmd_explore(args) -> int:
    if args.dask and args.jobs > 1:
        raise ConfigError(f"--jobs {args.jobs} and --dask: choose one (--dask sends every pair to the cluster)")
    prepare_out_dir(args.out)
    from energy.explore import PARETO_CSV, PARETO_PNG, POINTS_CSV, explore, grid, run_sources
    from hwmodel.tradeoff import input_groups
    from infra.workers import check_dask_address

    sets = flags.overrides(args)
    base = load_hw(args.hw, sets["hw"])
    cfg = load_energy(args.energy, sets["energy"])
    points = grid(base, args.vary, [s.partition("=")[0].strip() for s in sets["hw"]])
    run_sources(input_groups(args.inputs))    # every input is a run or a sweep of runs, before any work
    if args.dask:
        check_dask_address(args.dask)
    r = explore(args.inputs, points, cfg, args.out, trials=args.trials, limit=args.limit, data_dir=args.data_dir,
                jobs=args.jobs, dask_address=args.dask, progress=not args.quiet, scale=args.scale)
    rows, front = r["rows"], r["front"]
    n_runs = len(rows) // len(points)
    print(f"wrote {args.out / POINTS_CSV} ({len(points)} points x {n_runs} runs; {r['computed']} computed, "
          f"{r['cached']} cached), {args.out / PARETO_CSV} ({len(front)} on the front) and {args.out / PARETO_PNG}")
    label = {p.index: p.label for p in points}
    for row in front:
        tops = row["tops_per_w_equivalent"]
        print(f"  {label[row['point']]}  {row['input']}: {row['accuracy'] * 100:.2f}% +- "
              f"{row['accuracy_std'] * 100:.2f} on the chip, {row['energy_per_inference_j'] * 1e9:.4g} nJ/inference, "
              f"{'-' if row['energy_per_mac_j'] is None else format(row['energy_per_mac_j'] * 1e15, '.4g')} fJ/MAC, "
              f"{'-' if tops is None else format(tops, '.4g')} TOPS/W-equivalent")
    return 0


def register(sub, formatter) -> None:
    p = sub.add_parser("explore", help="design-space exploration: accuracy-energy Pareto front over a grid",
                       formatter_class=formatter,
                       parents=[flags.setting(SECTIONS), flags.DATA_DIR, flags.QUIET],
                       description="Map every run (run folders, or the runs of sweep folders) onto every point of "
                                   "a grid of hardware designs (the product of the --vary values on the --hw "
                                   "config), evaluate it over Monte-Carlo chips (as hw-tradeoff) and compute its "
                                   "energy per inference (as energy-report). Writes EXPLORE/points.csv (a row per "
                                   "point and run), EXPLORE/pareto.csv (the rows no other has both lower energy "
                                   "and higher hardware accuracy), EXPLORE/pareto.png and EXPLORE/explore.json; "
                                   "EXPLORE/cache/ keeps every pair's figures, so a rerun or a killed run resumed "
                                   "computes only what is missing. docs/energy.md, 'Design-space exploration'.",
                       epilog="example:\n  ttfs explore runs/sweep-mnist --hw low-power --vary c_mem_f=1e-13,1e-12,1e-11 "
                              "\\\n      --vary v_read_v=0.05,0.1,0.2 --vary gating=none,decision,column --trials 3 "
                              "--limit 1000 --jobs 2 --out explore/mnist")
    p.add_argument("inputs", nargs="+", type=Path, metavar="SWEEP_OR_RUN", help="run folders or sweep folders (ttfs sweep)")
    p.add_argument("--hw", required=True, help="the base hardware config: a YAML file or a preset name (ttfs presets)")
    p.add_argument("--vary", action="append", required=True, metavar="KEY=V1,V2,...",
                   help="a hardware key (hw. optional) and its values, parsed as --set parses them (null for none); "
                        "repeatable: the grid is the product")
    p.add_argument("--energy", default=None, help="energy config: a YAML file or a preset name (default: the built-in "
                                                  "defaults)")
    p.add_argument("--trials", type=flags.count, default=1, help="Monte-Carlo chips per pair (trial 0: the stored one, "
                                                                  "which the energy is computed on)")
    p.add_argument("--limit", type=flags.count, default=None, help="use only the first N test images (default: all)")
    p.add_argument("--jobs", type=flags.count, default=1, help="pairs computed at once, in worker processes")
    p.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="send the pairs to this dask.distributed scheduler (workers with --nthreads 1 that see the "
                        "runs and data at the same absolute paths)")
    p.add_argument("--scale", choices=["common", "per-run"], default="common",
                   help="weight-to-conductance scale at each point: 'common' maps the runs of one architecture onto "
                        "one chip design (per layer the largest full-scale weight among them, as energy-report), so "
                        "their energies compare on the same hardware; 'per-run' scales each run by its own weights "
                        "(as 'ttfs map')")
    p.add_argument("--out", required=True, type=Path, help="folder for points.csv, pareto.csv, pareto.png and cache/")
    p.set_defaults(func=cmd_explore)
