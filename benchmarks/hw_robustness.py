"""Accuracy of trained runs on hardware against conductance bits and programming variation, and
the time of a full behavioural evaluation.

Each sweep varies one non-ideality on top of a base hardware config (default: the ideal one, so
the table isolates that non-ideality) and evaluates on the test set; variation is averaged over
--trials Monte-Carlo chips. The timing runs `ttfs hw-eval`'s evaluation (1 chip, all test
images) on the run mapped with configs/hw/default.yaml and with configs/hw/ideal.yaml.

    python benchmarks/hw_robustness.py runs/mnist-784-400-10 --mssr runs/mnist-784-400-10-mssr
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwmodel.behavioural import evaluate  # noqa: E402
from hwmodel.config import HardwareConfig  # noqa: E402
from hwmodel.mapping import map_model  # noqa: E402
from hwmodel.sweep import sweep  # noqa: E402
from training.checkpoint import load_model  # noqa: E402
from training.data import load_split  # noqa: E402
from infra.config import load_config  # noqa: E402


def _design(run_dir, hw):
    run = load_model(run_dir)
    return map_model(run.weights, run.model, hw, str(run_dir), run.dataset)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="trained run folder (e.g. runs/mnist-784-400-10)")
    p.add_argument("--mssr", default=None, help="a second run, trained with M-SSR, for a second column")
    p.add_argument("--hw", default=str(ROOT / "configs/hw/ideal.yaml"), help="base hardware config of the sweeps")
    p.add_argument("--limit", type=int, default=None, help="test images (default: all)")
    p.add_argument("--trials", type=int, default=3, help="chips per variation point")
    p.add_argument("--bits", default="2,3,4,5,6,7,8")
    p.add_argument("--variation", default="0,0.05,0.1,0.15,0.2")
    p.add_argument("--no-timing", action="store_true")
    args = p.parse_args(argv)

    base = load_config(args.hw, HardwareConfig, section="hw")
    runs = {"run": args.run} if not args.mssr else {"run": args.run, "M-SSR run": args.mssr}
    designs = {name: _design(path, base) for name, path in runs.items()}
    first = next(iter(designs.values()))
    data = load_split(first.dataset, "test", limit=args.limit)
    print(f"base hardware: {args.hw}; {len(data)} {first.dataset} test images")
    for name, path in runs.items():
        m = load_model(path).meta
        print(f"  {name}: {path} (layers {m['layers']}, reg {m.get('reg', {}).get('kind')}, "
              f"model accuracy {m.get('test_accuracy')}, spikes/neuron {m.get('spikes_per_neuron_mean')})")

    bits = [int(b) for b in args.bits.split(",")] + [None]
    variation = [float(v) for v in args.variation.split(",")]
    tables = {}
    for name, design in designs.items():
        tables[(name, "bits")] = sweep(design, "bits", bits, data.images, data.labels, trials=1, progress=True)
        tables[(name, "variation")] = sweep(design, "variation", variation, data.images, data.labels,
                                            trials=args.trials, progress=True)

    names = list(designs)
    print("\nAccuracy (%) against conductance bits (levels 2**bits from g_min_s to g_max_s; 1 chip):\n")
    print("| bits | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for i, b in enumerate(bits):
        cells = [f"{tables[(n, 'bits')][i]['accuracy'] * 100:.2f}" for n in names]
        print(f"| {'analog' if b is None else b} | " + " | ".join(cells) + " |")
    print(f"\nAccuracy (%) against programming variation (lognormal sigma; mean +- std over {args.trials} chips):\n")
    print("| sigma | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for i, v in enumerate(variation):
        cells = [f"{tables[(n, 'variation')][i]['accuracy'] * 100:.2f} +- {tables[(n, 'variation')][i]['accuracy_std'] * 100:.2f}"
                 for n in names]
        print(f"| {v * 100:g}% | " + " | ".join(cells) + " |")
    print("\n(trained model accuracy: " + ", ".join(
        f"{n} {tables[(n, 'bits')][0]['model_accuracy'] * 100:.2f}%" for n in names) + ")")

    if not args.no_timing:
        full = load_split(first.dataset, "test")
        print(f"\nTime of hw-eval over {len(full)} test images, {args.run}, 1 chip:")
        for cfg in ("default", "ideal"):
            d = _design(args.run, load_config(ROOT / f"configs/hw/{cfg}.yaml", HardwareConfig, section="hw"))
            evaluate(d, full.images[:50], full.labels[:50], progress=False)     # numba cache load
            t0 = time.perf_counter()
            r = evaluate(d, full.images, full.labels, progress=False)
            print(f"  configs/hw/{cfg}.yaml: {time.perf_counter() - t0:.1f} s  (accuracy {r['accuracy'] * 100:.2f}%, "
                  f"spikes/neuron {r['spikes_per_neuron_mean']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
