"""Circuit-level (ngspice) inference of trained MNIST designs: accuracy, agreement with the
behavioural model, firing-time error and speed, one worker against two.

usage: nice -n 10 python benchmarks/ngspice_speed.py DESIGN [DESIGN ...] --limit 20 --limit-serial 4 \
           --out /tmp/ngspice-bench

For each design (a folder written by `ttfs map`): `--limit` test images simulated with 2 worker
processes (accuracy, agreement and time errors come from these), and the first `--limit-serial`
of them again with 1 worker (seconds per image on one core). Speed-up with 2 workers = wall time
per image with 1 worker / wall time per image of the 2-worker run (throughput). Both runs are
resumable folders under --out (rerun to continue). Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from netlists.runner import run
from infra.atomic_io import read_jsonl


def _timed(design, limit, out, workers):
    start = time.perf_counter()
    n_before = len(read_jsonl(Path(out) / "results.jsonl"))
    summary = run(design, limit, out, workers=workers, progress=True)
    wall = time.perf_counter() - start
    n_new = summary["n_images"] - n_before
    return summary, (wall / n_new if n_new > 0 else None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("designs", nargs="+")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--limit-serial", type=int, default=4)
    p.add_argument("--out", default="/tmp/ngspice-bench")
    args = p.parse_args(argv)
    rows = []
    for design in args.designs:
        name = Path(design).name
        par, wall_par = _timed(design, args.limit, Path(args.out) / name / "workers2", 2)
        ser, wall_ser = _timed(design, args.limit_serial, Path(args.out) / name / "workers1", 1)
        speedup = wall_ser / wall_par if wall_ser and wall_par else None
        rows.append((name, par, ser, wall_ser, wall_par, speedup))
    print()
    print("| design | images | circuit acc. | behavioural acc. | agreement | max dt (% window) | mean dt (% window) "
          "| fire mismatches/image | s/image 1 worker (CPU) | s/image 2 workers | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, par, ser, wall_ser, wall_par, speedup in rows:
        fmt = lambda x, f: "n/a" if x is None else format(x, f)  # noqa: E731
        print(f"| {name} | {par['n_ok']} ok / {par['n_failed']} failed | {100 * par['circuit_accuracy']:.1f}% "
              f"| {100 * par['behavioural_accuracy']:.1f}% | {100 * par['agreement']:.1f}% "
              f"| {par['max_dt_s']:.2e} s ({par['max_dt_pct_window']:.3f}%) "
              f"| {par['mean_dt_s']:.2e} s ({par['mean_dt_pct_window']:.3f}%) | {par['fire_mismatch_per_image']:.2f} "
              f"| {fmt(wall_ser, '.1f')} ({ser['cpu_seconds_per_image']:.1f}) | {fmt(wall_par, '.1f')} "
              f"| {fmt(speedup, '.2f')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
