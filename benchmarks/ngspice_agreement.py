"""Firing-time agreement of a finished `ttfs simulate` folder with the behavioural model of a design.

    python benchmarks/ngspice_agreement.py SIM DESIGN [SIM DESIGN ...]

The circuit has no read noise; a design mapped with read noise has it in its behavioural model,
so compare a simulation against a design mapped the same way with `--set hw.read_noise_rel=0`
(same seed: same conductances) to see what the circuit itself does. Prints, per pair, the
largest firing-time difference per image in % of the window (median, 90th percentile, max) and
how many images exceed 0.5%.
"""
import argparse

import numpy as np

from hwmodel.behavioural import input_times_s, layer_times
from hwmodel.design import load_design
from infra.atomic_io import read_jsonl
from training.data import load_split


def max_dt_pct(sim_dir, design_dir):
    design = load_design(design_dir)
    recs = [r for r in read_jsonl(f"{sim_dir}/results.jsonl") if r["status"] == "ok"]
    last = max(r["index"] for r in recs) + 1
    data = load_split(design.dataset, "test", limit=last)
    beh = layer_times(design, input_times_s(design, data.images))
    window = design.t_end_s
    out = []
    for r in recs:
        worst = 0.0
        for l, times in enumerate(r["times_s"]):
            circ = np.array([np.inf if x is None else x for x in times], float)
            both = np.isfinite(circ) & np.isfinite(beh[l][r["index"]])
            if both.any():
                worst = max(worst, float(np.abs(circ[both] - beh[l][r["index"]][both]).max()))
        out.append(100 * worst / window)
    return np.array(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", help="SIM DESIGN pairs")
    args = ap.parse_args()
    if len(args.pairs) % 2:
        ap.error("give SIM DESIGN pairs")
    print("| simulation | behavioural design | images | max dt per image, % of window: median | p90 | max | images > 0.5% |")
    print("|---|---|---|---|---|---|---|")
    for sim, design in zip(args.pairs[::2], args.pairs[1::2]):
        d = max_dt_pct(sim, design)
        print(f"| {sim} | {design} | {len(d)} | {np.median(d):.4f} | {np.percentile(d, 90):.4f} | "
              f"{d.max():.3f} | {(d > 0.5).sum()} |")


if __name__ == "__main__":
    main()
