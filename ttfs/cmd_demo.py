"""ttfs demo: the whole chain on real MNIST, without and with M-SSR, in a few minutes.

Runs the same commands a user would type (train, map, hw-eval, export-netlist, simulate,
energy-report) into one folder, then prints where every artefact is and a summary table.
Rerunning continues where it stopped: each step is skipped when its output is complete.
"""
from __future__ import annotations

import contextlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

from infra import provenance
from infra.errors import TtfsError
from infra.atomic_io import prepare_out_dir
from ttfs import args as flags

TRAIN_PRESET = "mnist-784-400-10"     # presets (infra/presets): they travel with the installed package
HW_PRESET = "default"
# The demo's chip is the preset as it is, wires on (exact, in tiles): ngspice runs each tile's exact
# port equivalent (reduced netlists, docs/netlists.md), as fast as a wire-free array.
DEMO_HW_SETS: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    layers: str
    train_limit: int
    test_limit: int
    epochs: int
    batch_size: int
    mssr_strength: float
    eval_images: int
    sim_images: int


PROFILES = {
    # about 5 minutes on 2 cores
    "full": Profile("[784, 100, 10]", 20000, 2000, 3, 64, 1e-4, 2000, 4),
    # seconds: the default test suite runs this
    "tiny": Profile("[784, 16, 10]", 600, 200, 1, 20, 1e-4, 200, 1),
}


def _run(argv, capture=False):
    """Run one `ttfs` command in-process; returns its stdout when capture is set."""
    from ttfs.cli import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf) if capture else contextlib.nullcontext():
        code = main(argv)
    if code != 0:
        raise TtfsError(f"step 'ttfs {' '.join(map(str, argv))}' failed (exit {code}); see the message above")
    return buf.getvalue()


def _step(title: str):
    print(f"\n== {title}", flush=True)


def run_demo(out: Path, profile: Profile, hw: str, quiet: bool) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    q = ["--quiet"] if quiet else []
    config = TRAIN_PRESET
    variants = {"baseline": ["reg.kind=none"],
                "m-ssr": ["reg.kind=m-ssr", f"reg.strength={profile.mssr_strength}"]}
    common = [f"model.layers={profile.layers}", f"data.train_limit={profile.train_limit}",
              f"data.test_limit={profile.test_limit}", f"train.epochs={profile.epochs}",
              f"train.batch_size={profile.batch_size}"]
    hw_sets = [x for s in DEMO_HW_SETS for x in ("--set", s)]
    summary = {}
    runs = {name: out / "runs" / name for name in variants}
    for name, reg in variants.items():
        _step(f"train {name} ({profile.layers}, {profile.train_limit} MNIST images, {profile.epochs} epochs)")
        sets = [x for s in common + reg for x in ("--set", s)]
        _run(["train", "--config", str(config), "--out", str(runs[name]), "--resume", *sets, *q])
        summary[name] = {"software": json.loads(_run(["eval", str(runs[name]), "--limit", str(profile.eval_images),
                                                      "--json"], capture=True))}
    for name in variants:
        run, design = runs[name], out / "designs" / name
        _step(f"map {name} onto {Path(hw).name} ({', '.join(DEMO_HW_SETS) or 'wires on'}; one chip design for both runs) "
              "and evaluate the behavioural model")
        others = [str(r) for n, r in runs.items() if n != name]
        _run(["map", str(run), "--hw", str(hw), "--out", str(design), *hw_sets, "--common-scale-with", *others])
        hw_eval = json.loads(_run(["hw-eval", str(design), "--limit", str(profile.eval_images), "--json"],
                                  capture=True))
        _step(f"simulate {profile.sim_images} test images of {name} in ngspice")
        sim_dir = out / "sim" / name
        _run(["simulate", str(design), "--limit", str(profile.sim_images), "--out", str(sim_dir), *q])
        sim = json.loads((sim_dir / "summary.json").read_text())
        summary[name].update({"hardware": hw_eval, "circuit": sim})
    _step("export the baseline network for test image 0 as a standalone ngspice netlist")
    netlist = out / "netlists" / "baseline-sample0.cir"
    _run(["export-netlist", str(out / "designs" / "baseline"), "--sample", "0", "--out", str(netlist)])
    _step("energy report: baseline against M-SSR")
    report = out / "report"
    _run(["energy-report", str(out / "designs" / "baseline"), str(out / "designs" / "m-ssr"), "--hw", str(hw),
          "--limit", str(profile.eval_images), "--out", str(report), *q,
          *hw_sets])
    energy = json.loads((report / "report.json").read_text())
    for name, row in zip(variants, energy["runs"]):
        summary[name]["energy"] = row
    summary[provenance.KEY] = provenance.provenance()
    summary["artefacts"] = {
        "runs": str(out / "runs"), "designs": str(out / "designs"), "netlist": str(netlist),
        "simulations": str(out / "sim"), "energy report": str(report / "report.md"),
    }
    return summary


def format_table(summary: dict) -> str:
    rows = ["| run | accuracy software | accuracy behavioural hw | accuracy circuit (images) | "
            "spikes/neuron | energy/inference | savings | energy of the network's own spikes | savings |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name in ("baseline", "m-ssr"):
        s = summary[name]
        circ = s["circuit"]
        circuit = (f"{100 * circ['circuit_accuracy']:.1f}% ({circ['n_ok']})" if circ.get("n_ok") else "failed")
        e = s["energy"]
        rows.append(f"| {name} | {100 * s['software']['accuracy']:.2f}% | {100 * s['hardware']['accuracy']:.2f}% | "
                    f"{circuit} | {s['software']['spikes_per_neuron_mean']:.3f} | "
                    f"{e['energy_per_inference_j'] * 1e9:.2f} nJ | {e['savings_pct']:.1f}% | "
                    f"{e['neuron_spike_energy_j'] * 1e12:.1f} pJ | {e['neuron_spike_energy_savings_pct']:.1f}% |")
    rows.append("\nThe total is dominated by the 784 input rows conducting through the first crossbar; the "
                "last two columns count only what hidden and output spikes cost (docs/energy.md).")
    return "\n".join(rows)


def cmd_demo(args) -> int:
    prepare_out_dir(args.out)
    from infra import atomic_io
    from infra.folder_lock import folder_lock
    start = time.perf_counter()
    with folder_lock(args.out, "ttfs demo"):
        summary = run_demo(Path(args.out), PROFILES[args.profile], str(args.hw), args.quiet)
        print("\nartefacts:")
        for k, v in summary["artefacts"].items():
            print(f"  {k:<14} {v}")
        table = format_table(summary)
        atomic_io.write_text(Path(args.out) / "summary.md", table + "\n")
        atomic_io.write_text(Path(args.out) / "summary.json", json.dumps(summary, indent=1, default=str))
    print(f"\n{table}\n\ndemo finished in {time.perf_counter() - start:.0f} s; summary in {args.out}/summary.md")
    return 0


def register(sub, formatter) -> None:
    p = sub.add_parser("demo", help="the whole chain on real MNIST, without and with M-SSR",
                       formatter_class=formatter, parents=[flags.QUIET],
                       description="Train a small network on real MNIST without and with M-SSR, map both onto "
                                   "the default hardware, export a netlist, simulate test images in ngspice "
                                   "and compare their energy. Rerun to continue an interrupted demo.",
                       epilog="example:\n  ttfs demo --out demo-out\n  ttfs demo --out /tmp/d --profile tiny")
    p.add_argument("--out", required=True, type=Path, help="folder for every artefact")
    p.add_argument("--profile", choices=tuple(PROFILES), default="full",
                   help="'full': 784-100-10 on 20,000 images (minutes); 'tiny': seconds, for tests")
    p.add_argument("--hw", default=HW_PRESET, help="hardware config: a YAML file or a preset name (ttfs presets)")
    p.set_defaults(func=cmd_demo)
