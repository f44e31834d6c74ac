"""ttfs sweep | plot: train one run per regulariser strength, and draw the paper's figures."""
from __future__ import annotations

import re
from pathlib import Path

from infra.errors import ConfigError
from infra.config import read_yaml
from infra.atomic_io import prepare_out_dir
from ttfs import args as flags
from ttfs.cmd_train import (HW_SECTION, SECTIONS, add_energy_arg, add_hw_arg, chip_banner, chip_factory,
                            chip_to_train_for, refuse_energy_without_chip, static_power_to_train_with)
from infra.folder_lock import folder_lock


def _floats(text: str, flag: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag}: expected comma-separated numbers, e.g. 1e-5,3e-5,1e-4 (got {text!r})") from None


def _seeds(text: str) -> list[int]:
    """--seeds 0,1,2: integers >= 0 (training.sweep.check_seeds says which are wrong)."""
    from training.sweep import check_seeds

    items = [x.strip() for x in text.split(",") if x.strip()]
    if not all(re.fullmatch("[0-9]+", x) for x in items):     # digits only: no sign, no decimal point
        raise ConfigError(f"--seeds: expected comma-separated integers >= 0, e.g. 0,1,2 (got {text!r})")
    return check_seeds([int(x) for x in items])


def cmd_sweep(args) -> int:
    seeds = _seeds(args.seeds) if args.seeds is not None else None
    if args.dask and args.jobs > 1:
        raise ConfigError(f"--jobs {args.jobs} and --dask: choose one (--dask sends every point to the cluster)")
    prepare_out_dir(args.out)
    from infra.workers import check_dask_address
    from training.plots import sweep_figures
    from training.sweep import CSV_NAME, MEAN_CSV_NAME, run_sweep

    if args.dask:
        check_dask_address(args.dask)       # before any work: a typo fails in seconds
    base = read_yaml(args.config)
    hw = chip_to_train_for(args, base.pop(HW_SECTION, None))
    refuse_energy_without_chip(args, hw)
    if hw is not None:
        print(chip_banner(hw, "hw.yaml in every run folder"))
    overrides = flags.overrides(args)[""]
    if args.data_dir:
        overrides.append(f"data.data_dir={args.data_dir}")
    v_hats = _floats(args.v_hat, "--v-hat") if args.v_hat else None
    strengths = _floats(args.strengths, "--strengths")
    with folder_lock(args.out, "ttfs sweep"):        # run_sweep takes it too; held on for the figures
        rows = run_sweep(base, args.reg, strengths, args.out, v_hats, overrides, progress=not args.quiet,
                         seeds=seeds, jobs=args.jobs, dask_address=args.dask, threads_per_job=args.threads_per_job,
                         chip=chip_factory(hw, None if hw is None else static_power_to_train_with(args, hw)))
        print(f"wrote {args.out / CSV_NAME} ({len(rows)} runs) and {args.out / MEAN_CSV_NAME}")
        if not args.no_plots:
            for png in sweep_figures(args.out, args.out, args.data_dir):
                print(f"wrote {png}")
    return 0


def cmd_plot(args) -> int:
    prepare_out_dir(args.out)
    from training.plots import figure2, sweep_figures

    from hwmodel.sources import expect_kind

    made, runs, sweeps = [], [], []
    for path in args.paths:
        (runs if expect_kind(path, ("run", "sweep")) == "run" else sweeps).append(path)
    with folder_lock(args.out, "ttfs plot"):
        for path in sweeps:
            made += sweep_figures(path, args.out, args.data_dir, args.image)
        if runs:
            made.append(figure2(runs, args.out / "raster.png", image_index=args.image, data_dir=args.data_dir))
    for png in made:
        print(f"wrote {png}")
    return 0


def register(sub, formatter) -> None:
    p = sub.add_parser("sweep", help="train one run per regulariser strength; trade-off table and plots",
                       formatter_class=formatter, parents=[flags.setting(SECTIONS), flags.DATA_DIR, flags.QUIET],
                       description="Train a baseline and one run per strength (and per v_hat for the membrane "
                                   "loss, and per seed with --seeds) into SWEEP/<kind>_s<strength>[_seed<k>]/, "
                                   "skipping complete runs and resuming partial ones; then write "
                                   "SWEEP/tradeoff.csv (a row per run), SWEEP/tradeoff_mean.csv (mean and "
                                   "std over seeds per point) and the figures. Several sweeps may share one "
                                   "--out (they share the baseline). --jobs N trains N points at once here, "
                                   "--dask ADDRESS sends them to a dask.distributed cluster.",
                       epilog="example:\n  ttfs sweep --config mnist-784-400-10 --reg m-ssr "
                              "--strengths 1e-5,1e-4,1e-3 \\\n      --set train.epochs=2 --set data.train_limit=20000 "
                              "--out runs/sweep-mnist\n  ttfs sweep --config mnist-784-400-10 "
                              "--reg membrane --strengths 1e-5,1e-4 --v-hat 0.5,0.8 --out runs/sweep-mnist\n"
                              "  ttfs sweep --config mnist-784-400-10 --reg m-ssr --strengths 1e-5,1e-4 "
                              "--seeds 0,1,2 --jobs 2 --out runs/sweep-seeds")
    p.add_argument("--config", required=True, help="base YAML config (its reg section is replaced)")
    p.add_argument("--reg", required=True, choices=("m-ssr", "f-ssr", "membrane"), help="regulariser to sweep")
    p.add_argument("--strengths", required=True, help="comma-separated strengths; 0 is the baseline run")
    p.add_argument("--v-hat", default=None, help="comma-separated reference voltages (membrane only)")
    p.add_argument("--out", required=True, type=Path, help="sweep folder")
    p.add_argument("--seeds", default=None, metavar="K,K,...",
                   help="comma-separated seeds (integers >= 0): one run per point and seed, named ..._seed<k> "
                        "(default: the config's seed, names without it)")
    p.add_argument("--jobs", type=flags.count, default=1, help="points trained at once, in worker processes")
    p.add_argument("--threads-per-job", type=flags.count, default=1,
                   help="numba/BLAS threads of each worker process when --jobs > 1")
    p.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="send the points to this dask.distributed scheduler (workers with --nthreads 1 that "
                        "see --out at the same absolute path)")
    p.add_argument("--no-plots", action="store_true", help="only the runs and the tables")
    add_hw_arg(p)
    add_energy_arg(p, resumes_own=False)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("plot", help="figures from run or sweep folders", formatter_class=formatter,
                       parents=[flags.DATA_DIR],
                       description="Regenerate the figures: for each sweep folder the accuracy-vs-spikes "
                                   "trade-off per hidden layer (M-SSR, F-SSR), M-SSR vs the membrane loss, and "
                                   "a raster + membrane traces of the baseline and a strong M-SSR run; for run "
                                   "folders, one raster + membrane-trace figure comparing them.",
                       epilog="example:\n  ttfs plot runs/sweep-mnist --out figures\n"
                              "  ttfs plot runs/sweep-mnist/none runs/sweep-mnist/m-ssr_s0.0003 --image 3 --out figures")
    p.add_argument("paths", nargs="+", type=Path, metavar="RUN_OR_SWEEP", help="run or sweep folders")
    p.add_argument("--out", required=True, type=Path, help="folder for the PNGs")
    p.add_argument("--image", type=flags.index, default=0, help="test image shown in the raster figure")
    p.set_defaults(func=cmd_plot)
