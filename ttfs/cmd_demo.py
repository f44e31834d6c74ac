"""ttfs demo: the co-design story on MNIST 784-400-10, from training to a chip choice, in minutes.

Runs the commands a user would type (sweep, train --hw, map, hw-eval, simulate, export-netlist,
energy-report, explore) into one folder, then prints where every artefact is and one table.
Three networks (no regulariser, M-SSR, the energy-aware objective) on two chips: the default chip
(wires on) with the ideally trained networks, and the low-power integrator chip with networks
fine-tuned for it, both with decision gating (an ungated integrator's energy depends on how far its
op-amp swings below zero, which the model leaves unbounded: docs/energy.md). Rerunning continues
where it stopped: each command resumes or skips its complete output.
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
HW_PRESET = "default"                 # the default chip: wires on (exact, in tiles)
LOW_POWER_PRESET = "low-power-integrator"
GATING_SETS = ("hw.gating=decision",)   # both chips: the first output spike plus the guard ends the inference


@dataclass(frozen=True)
class Profile:
    layers: str
    train_limit: int | None       # None: the whole training set
    test_limit: int | None
    epochs: int
    batch_size: int
    lr: float
    shift_px: int                 # random translations (train.shift_px)
    mssr_strength: float
    energy_strength: float        # reg.energy_strength of the energy-aware fine-tune (loss per nJ per image)
    finetune_limit: int           # training images of the one-epoch fine-tunes for the low-power chip
    eval_images: int | None       # None: the whole test set
    energy_images: int | None     # test images of the energy reports
    trials: int                   # Monte-Carlo chips of hw-eval
    sim_images: int
    explore_limit: int
    workers: int                  # ngspice workers (simulate --workers), sweep and explore jobs


PROFILES = {
    # 8.6 minutes measured on an idle 2-core machine (target: 10; docs/results.md, "The demo")
    "full": Profile("[784, 400, 10]", None, None, 8, 64, 1e-3, 1, 5e-6, 5.0, 6000, None, 2000, 3, 20, 1000, 2),
    # seconds: the default test suite runs this
    "tiny": Profile("[784, 16, 10]", 600, 200, 1, 20, 2e-3, 0, 1e-4, 0.2, 200, 200, 200, 2, 1, 100, 1),
}


def _run(argv, capture=False):
    """Run one `ttfs` command in-process; returns its stdout when capture is set."""
    from ttfs.cli import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf) if capture else contextlib.nullcontext():
        code = main([str(a) for a in argv])
    if code != 0:
        raise TtfsError(f"step 'ttfs {' '.join(map(str, argv))}' failed (exit {code}); see the message above")
    return buf.getvalue()


def _sets(values) -> list[str]:
    return [x for s in values for x in ("--set", s)]


_STEPS: list[tuple[str, float]] = []     # (title, start time) of this demo's steps, for their wall times


def _step(title: str):
    _STEPS.append((title, time.perf_counter()))
    print(f"\n== {title}", flush=True)


def _step_times() -> dict:
    ends = [t for _, t in _STEPS[1:]] + [time.perf_counter()]
    return {title: round(end - t0, 1) for (title, t0), end in zip(_STEPS, ends)}


def _limit(n):
    return [] if n is None else ["--limit", str(n)]


def run_demo(out: Path, profile: Profile, hw: str, low_power: str, quiet: bool) -> dict:
    from training.sweep import SweepPoint
    out.mkdir(parents=True, exist_ok=True)
    _STEPS.clear()
    q = ["--quiet"] if quiet else []
    common = [f"model.layers={profile.layers}", f"train.epochs={profile.epochs}",
              f"train.batch_size={profile.batch_size}", f"train.lr={profile.lr}", f"train.shift_px={profile.shift_px}"]
    common += [f"data.train_limit={profile.train_limit}"] if profile.train_limit else []
    common += [f"data.test_limit={profile.test_limit}"] if profile.test_limit else []
    sweep = out / "runs" / "ideal"
    n_train = profile.train_limit or "60,000"
    _step(f"train {profile.layers} on {n_train} MNIST images, {profile.epochs} epochs, without and with M-SSR "
          f"({profile.workers} at once)")
    _run(["sweep", "--config", TRAIN_PRESET, "--reg", "m-ssr", "--strengths", f"0,{profile.mssr_strength}",
          "--jobs", profile.workers, "--no-plots", "--out", sweep, *_sets(common), *q])
    ideal = {"baseline": sweep / SweepPoint("none", 0.0).name,
             "m-ssr": sweep / SweepPoint("m-ssr", profile.mssr_strength).name}

    lp_name = Path(low_power).stem
    finetune = {"baseline": (ideal["baseline"], ["reg.kind=none"]),
                "m-ssr": (ideal["m-ssr"], ["reg.kind=m-ssr", f"reg.strength={profile.mssr_strength}"]),
                "energy-aware": (ideal["baseline"], ["reg.kind=none", f"reg.energy_strength={profile.energy_strength}"])}
    chip_runs = {}
    for name, (start, reg) in finetune.items():
        _step(f"fine-tune {name} for the {lp_name} chip with decision gating (1 epoch, {profile.finetune_limit} images)")
        run = out / "runs" / f"{lp_name}-{name}"
        sets = [s for s in common if not s.startswith(("train.epochs", "data.train_limit"))]
        sets += ["train.epochs=1", f"data.train_limit={profile.finetune_limit}", f"train.init_from={start}",
                 *reg, *GATING_SETS]
        _run(["train", "--config", TRAIN_PRESET, "--hw", low_power, "--out", run, "--resume", *_sets(sets), *q])
        chip_runs[name] = run

    # (row name, run, chip, --set of the mapping, simulated in ngspice)
    rows = [("baseline", ideal["baseline"], hw, GATING_SETS, True), ("m-ssr", ideal["m-ssr"], hw, GATING_SETS, False)]
    rows += [(f"{name} (for {lp_name})", run, low_power, GATING_SETS, True) for name, run in chip_runs.items()]
    summary = {"rows": {}, "profile": profile.__dict__, "hw": hw, "low_power": low_power, "low_power_name": lp_name}
    designs = {}
    for name, run, chip, sets, simulate in rows:
        design = out / "designs" / _slug(name)
        designs[name] = design
        peers = [str(r) for n, r, c, _, _ in rows if c == chip and r != run]
        _step(f"map {name} onto {Path(chip).stem} ({', '.join(sets)}; one chip design "
              f"per chip) and evaluate the behavioural model over {profile.trials} chips")
        _run(["map", run, "--hw", chip, "--out", design, *_sets(sets), "--common-scale-with", *peers])
        software = json.loads(_run(["eval", run, *_limit(profile.eval_images), "--json"]
                                   + (["--ideal"] if chip == low_power else []), capture=True))
        hw_eval = json.loads(_run(["hw-eval", design, *_limit(profile.eval_images), "--trials", profile.trials,
                                   "--json", *q], capture=True))
        row = {"run": str(run), "design": str(design), "chip": Path(chip).stem,
               "gating": "decision" if sets else "none", "software": software, "hardware": hw_eval}
        if simulate:
            _step(f"simulate {profile.sim_images} test images of {name} in ngspice ({profile.workers} workers)")
            sim_dir = out / "sim" / _slug(name)
            _run(["simulate", design, "--limit", profile.sim_images, "--workers", profile.workers, "--out", sim_dir, *q])
            row["circuit"] = json.loads((sim_dir / "summary.json").read_text())
        summary["rows"][name] = row

    netlist = out / "netlists" / "low-power-baseline-sample0.cir"
    _step("export the low-power chip's baseline for test image 0 as a standalone ngspice netlist")
    _run(["export-netlist", designs[rows[2][0]], "--sample", 0, "--out", netlist])

    reports = {}
    for chip in (hw, low_power):
        names = [n for n, _, c, _, _ in rows if c == chip]
        report = out / "reports" / Path(chip).stem
        _step(f"energy report on {Path(chip).stem}: {', '.join(names)} (savings against the first)")
        _run(["energy-report", *[designs[n] for n in names], "--hw", chip, *_limit(profile.energy_images),
              "--out", report, *q])
        for name, r in zip(names, json.loads((report / "report.json").read_text())["runs"]):
            summary["rows"][name]["energy"] = r
        reports[Path(chip).stem] = str(report / "report.md")

    explore = out / "explore"
    _step(f"explore: the {lp_name} runs x gating none/decision x read voltage 0.1/0.2 V ({profile.explore_limit} images)")
    _run(["explore", *chip_runs.values(), "--hw", low_power, "--vary", "gating=none,decision",
          "--vary", "v_read_v=0.1,0.2", "--limit", profile.explore_limit, "--jobs", profile.workers, "--out", explore, *q])

    summary["step_wall_s"] = _step_times()
    summary[provenance.KEY] = provenance.provenance()
    summary["artefacts"] = {
        "runs": str(out / "runs"), "designs": str(out / "designs"), "netlist": str(netlist),
        "simulations": str(out / "sim"), **{f"energy {k}": v for k, v in reports.items()},
        "pareto": str(explore / "pareto.png"), "explore": str(explore / "points.csv"),
    }
    return summary


def _slug(name: str) -> str:
    return name.replace(" (for ", "-").replace(")", "")


def _pct(x) -> str:
    return f"{100 * x:.2f}%"


COLUMNS = ("network", "chip (gating)", "accuracy software", "accuracy behavioural", "accuracy circuit (images)",
           "spikes/neuron", "energy/inference", "fJ/MAC", "savings of the total")


def format_table(summary: dict) -> str:
    rows = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, s in summary["rows"].items():
        circ = s.get("circuit")
        circuit = ("-" if circ is None else
                   f"{100 * circ['circuit_accuracy']:.1f}% ({circ['n_ok']})" if circ.get("n_ok") else "failed")
        hw, e = s["hardware"], s["energy"]
        behavioural = _pct(hw["accuracy"]) + (f" +- {100 * hw['accuracy_std']:.2f}" if hw.get("accuracy_std") else "")
        rows.append(f"| {name} | {s['chip']} ({s['gating']}) | {_pct(s['software']['accuracy'])} | {behavioural} | "
                    f"{circuit} | {e['spikes_per_neuron_mean']:.3f} | {e['energy_per_inference_j'] * 1e9:.3f} nJ | "
                    f"{e['energy_per_mac_j'] * 1e15:.2f} | {e['savings_pct']:.1f}% |")
    base = [s["energy"]["energy_per_inference_j"] for s in summary["rows"].values()]
    lp = next(s for s in summary["rows"].values() if s["chip"] == summary["low_power_name"])
    rows.append(f"\nSoftware: ideal neurons (for the chip-trained runs, `ttfs eval --ideal`); behavioural: the chip "
                f"model on the test set, mean +- std over chips; circuit: ngspice; spikes per hidden neuron and "
                f"energy: the chip model; savings: of the total energy against the first network on the same chip. "
                f"The low-power chip's baseline uses {base[0] / lp['energy']['energy_per_inference_j']:.0f} times less "
                f"energy per inference than the default chip's.")
    return "\n".join(rows)


def cmd_demo(args) -> int:
    prepare_out_dir(args.out)
    from infra import atomic_io
    from infra.folder_lock import folder_lock
    start = time.perf_counter()
    with folder_lock(args.out, "ttfs demo"):
        summary = run_demo(Path(args.out), PROFILES[args.profile], str(args.hw), str(args.low_power), args.quiet)
        summary["wall_s"] = time.perf_counter() - start
        print("\nartefacts:")
        for k, v in summary["artefacts"].items():
            print(f"  {k:<22} {v}")
        table = format_table(summary)
        atomic_io.write_text(Path(args.out) / "summary.md", table + "\n")
        atomic_io.write_text(Path(args.out) / "summary.json", json.dumps(summary, indent=1, default=str))
    print(f"\n{table}\n\ndemo finished in {summary['wall_s']:.0f} s; summary in {args.out}/summary.md")
    return 0


def register(sub, formatter) -> None:
    p = sub.add_parser("demo", help="the co-design story on MNIST: three networks, two chips, a Pareto front",
                       formatter_class=formatter, parents=[flags.QUIET],
                       description="Train MNIST 784-400-10 without a regulariser and with M-SSR, fine-tune them "
                                   "and an energy-aware network for the low-power chip, map them onto the default "
                                   "chip (wires on) and the low-power chip, both with decision gating, evaluate the "
                                   "chips, simulate test images in ngspice, export a netlist, write the energy reports and "
                                   "a small design-space exploration. Rerun to continue an interrupted demo.",
                       epilog="example:\n  ttfs demo --out demo-out\n  ttfs demo --out /tmp/d --profile tiny")
    p.add_argument("--out", required=True, type=Path, help="folder for every artefact")
    p.add_argument("--profile", choices=tuple(PROFILES), default="full",
                   help="'full': 784-400-10 on the 60,000 training images (8.6 minutes measured on an idle 2-core machine); 'tiny': seconds, for tests")
    p.add_argument("--hw", default=HW_PRESET, help="the first chip: a YAML file or a preset name (ttfs presets)")
    p.add_argument("--low-power", default=LOW_POWER_PRESET,
                   help="the second chip, an integrator chip the networks are fine-tuned for (YAML file or preset)")
    p.set_defaults(func=cmd_demo)
