"""The energy model against the energy ngspice measures, image by image, printed as a table.

Maps RUN with a hardware config, simulates N test images in ngspice layer by layer (the netlists
package's layer netlists, every source's power integrated over the window; energy/validate.py)
and compares with the model's conduction + capacitor energy at the behavioural firing times.
The full 784-400-10 takes ~2-3 minutes per image on a shared 2-core machine, so the default is a
small network; pass any run.

    nice -n 10 python benchmarks/energy_validate.py RUN [--hw configs/hw/ideal.yaml] [--set hw.KEY=VALUE] [--limit 20]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from energy.validate import validate  # noqa: E402
from hwmodel.config import HardwareConfig  # noqa: E402
from hwmodel.mapping import map_model  # noqa: E402
from training.checkpoint import load_model  # noqa: E402
from training.data import load_split  # noqa: E402
from infra.config import load_config, split_overrides  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--hw", default=str(ROOT / "configs/hw/ideal.yaml"))
    ap.add_argument("--set", action="append", default=[], metavar="hw.KEY=VALUE", help="as `ttfs map --set`")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--json", type=Path, default=None, help="also write the full result here")
    args = ap.parse_args()
    run = load_model(args.run)
    hw = load_config(args.hw, HardwareConfig, split_overrides(args.set, {"hw": HardwareConfig})["hw"], section="hw")
    design = map_model(run.weights, run.model, hw, str(args.run), run.dataset)
    data = load_split(run.dataset, "test", None, args.limit)
    res = validate(design, data.images, progress=True)
    print(f"{args.run} ({'-'.join(map(str, design.layers))}, {design.neuron}, {design.scheme}), hw {args.hw} "
          f"{' '.join(args.set)}; {res['n_images']} {run.dataset} test images; compared: {res['compared']}")
    print("| image | ngspice (nJ) | model (nJ) | error | model at circuit times | same spikes |")
    print("|---|---|---|---|---|---|")
    for p in res["images"]:
        print(f"| {p['image']} | {p['measured_j'] * 1e9:.5g} | {p['model_j'] * 1e9:.5g} | {100 * p['rel_error']:+.3f}% | "
              f"{100 * p['rel_error_at_circuit_times']:+.3f}% | {p['same_spikes_as_behavioural']} |")
    print(f"mean |error| {100 * res['mean_abs_rel_error']:.3f}% (max {100 * res['max_abs_rel_error']:.3f}%); "
          f"at the circuit's firing times {100 * res['mean_abs_rel_error_at_circuit_times']:.3f}%; "
          f"{res['seconds']:.0f} s in ngspice")
    print("by source (row drivers: conduction [+ capacitor, passive]; op-amp outputs: capacitor): " + ", ".join(
        f"{k} {100 * v:.3f}%" for k, v in res["mean_abs_rel_error_by_source"].items()))
    if args.json:
        args.json.write_text(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
