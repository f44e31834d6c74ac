"""Energy per inference and what M-SSR / F-SSR save against no regulariser, per data set, as a table.

Each argument is a sweep folder (or run folders, comma-separated, the baseline first); for each, it
runs `energy.report.build_report` (what `ttfs energy-report` runs) over the test set and writes a
report folder under --out, then prints one table over all of them.

    nice -n 10 python benchmarks/energy_ssr.py runs/ssr-sweep-mnist runs/ssr-sweep-fmnist \
        [--hw configs/hw/default.yaml] [--set hw.KEY=VALUE ...] [--scale common|per-run] [--limit N] [--out /tmp/energy-ssr]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from energy.config import EnergyConfig  # noqa: E402
from energy.report import build_report  # noqa: E402
from hwmodel.config import HardwareConfig  # noqa: E402
from infra.config import load_config, split_overrides  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="sweep folder, or run folders joined by commas (baseline first)")
    ap.add_argument("--hw", default=str(ROOT / "configs/hw/default.yaml"))
    ap.add_argument("--set", action="append", default=[], metavar="PREFIX.KEY=VALUE",
                    help="override one hw. or energy. key (repeatable), as `ttfs energy-report --set`")
    ap.add_argument("--energy", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--scale", choices=("common", "per-run"), default="common",
                    help="mapping full scale, as `ttfs energy-report --scale`")
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/energy-ssr"))
    args = ap.parse_args()
    sets = split_overrides(args.set, {"hw": HardwareConfig, "energy": EnergyConfig})
    hw = load_config(args.hw, HardwareConfig, sets["hw"], section="hw")
    cfg = load_config(args.energy, EnergyConfig, sets["energy"], section="energy")
    rows = []
    for k, item in enumerate(args.inputs):
        paths = item.split(",")
        out = args.out / f"{k}-{Path(paths[0]).name}"
        report = build_report(paths, hw, cfg, rate_hz=args.rate, limit=args.limit, out=out,
                              scale=args.scale)
        print(f"wrote {out}/report.md", file=sys.stderr)
        rows += report["runs"]
    print(f"hw {args.hw} {' '.join(args.set)}, scale {args.scale}, energy {args.energy or 'defaults'}, {rows[0]['n_images'] if rows else 0} test images; "
          "savings relative to the first run of each group")
    print("| data set | run | reg | accuracy | hidden spikes/neuron | energy/inference (nJ) | savings | "
          "spike-driven (nJ) | savings | neuron-spike energy (nJ) | savings | capacitor (nJ) | EDP (nJ*us) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        reg = r["reg"]
        reg_s = "none" if reg["kind"] == "none" else f"{reg['kind']} {reg['strength']:g}"
        print(f"| {r['dataset']} | {r['name']} | {reg_s} | {100 * r['accuracy']:.2f}% | {r['spikes_per_neuron_mean']:.3f} "
              f"| {r['energy_per_inference_j'] * 1e9:.1f} | {r['savings_pct']:+.1f}% | {r['spike_energy_j'] * 1e9:.1f} "
              f"| {r['spike_energy_savings_pct']:+.1f}% | {r['neuron_spike_energy_j'] * 1e9:.3f} "
              f"| {r['neuron_spike_energy_savings_pct']:+.1f}% | {r['breakdown_j']['capacitor'] * 1e9:.2f} "
              f"| {r['edp_js'] * 1e15:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
