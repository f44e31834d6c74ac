"""ttfs train | eval | spikes: train a TTFS network, measure it, dump its spike times."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwmodel.config import HardwareConfig
from infra import atomic_io
from infra.errors import ConfigError
from training.checkpoint import load_model
from training.config import RunConfig
from training.data import check_fits, load_split, select
from infra.config import apply_overrides, build, load_config_and_section
from ttfs import args as flags

SECTIONS = {"": RunConfig, "hw": HardwareConfig}   # --set train.epochs=3, model.layers=[...], seed=1, hw.bits=4
HW_SECTION = "hw"                                  # a training config's chip to train for (ttfs train)


def load_run_and_hw(path, overrides=(), data_dir=None):
    """(RunConfig from YAML with the `--set` items of the run config, the config's `hw:` section as
    written (the chip to train for), or None)."""
    overrides = list(overrides or ())
    if data_dir:
        overrides.append(f"data.data_dir={data_dir}")
    return load_config_and_section(path, RunConfig, HW_SECTION, overrides)


def chip_to_train_for(args, section, resumed: Path | None = None) -> HardwareConfig | None:
    """The chip `ttfs train` (and `ttfs sweep`) trains for: --hw (a file or preset), else the
    config's `hw:` section (a mapping of hardware keys, or a file or preset name), else the
    hw.yaml of the run folder `resumed`; None for an ideal run. `--set hw.KEY=VALUE` changes any
    of them."""
    from ttfs.cmd_hw import load_hw
    from training.trainer import saved_hw

    overrides = flags.overrides(args)["hw"]
    if args.hw is not None:
        if section is not None:
            print(f"--hw {args.hw} replaces the hw: section of {args.config}")
        return load_hw(args.hw, overrides)
    if isinstance(section, str):
        try:
            return load_hw(section, overrides)
        except ConfigError as exc:
            raise ConfigError(f"{args.config}: hw: {exc}") from None
    if isinstance(section, dict):
        try:
            return build(HardwareConfig, apply_overrides(dict(section), overrides), "hw")
        except ConfigError as exc:
            raise ConfigError(f"{args.config}: {exc}") from None
    if section is not None:
        raise ConfigError(f"{args.config}: hw: must be a mapping of hardware keys or a hardware config file "
                          f"or preset name (got {type(section).__name__})")
    saved = saved_hw(resumed) if resumed is not None else None
    if saved is not None:
        return HardwareConfig.from_dict(apply_overrides(dict(saved), overrides))
    if overrides:
        raise ConfigError(f"--set hw.{overrides[0]}: nothing here trains for a chip; give --hw HW.yaml "
                          "(or a hw: section in the config) to train for one")
    return None


def cmd_train(args) -> int:
    from training.trainer import train       # imported here: numba is not needed for --help

    atomic_io.prepare_out_dir(args.out)
    cfg, section = load_run_and_hw(args.config, flags.overrides(args)[""], args.data_dir)
    hw = chip_to_train_for(args, section, args.out if args.resume else None)
    refuse_energy_without_chip(args, hw)
    view = None
    if hw is not None:
        view = chip_factory(hw, static_power_to_train_with(args, hw, args.out if args.resume else None))(cfg.model)
        print(chip_banner(hw, f"{args.out}/hw.yaml"))
    record = train(cfg, args.out, resume=args.resume, progress=not args.quiet, view=view)
    print(f"run folder: {args.out}  (model.npz, model.yaml, metrics.jsonl)")
    if record:
        print(f"test accuracy {record['test_accuracy']:.4f}, spikes per neuron {record['spikes_per_neuron_mean']:.3f}")
    return 0


def _run_split(args):
    from training.evaluate import spike_times   # imported here: numba is not needed for --help

    from hwmodel.aware import nominal_chip_of

    run = load_model(args.run)
    check_fits(str(args.run / "model.npz"), run.weights, run.dataset)
    data = select(load_split(run.dataset, args.split, args.data_dir), limit=args.limit)
    chip = None if args.ideal else nominal_chip_of(args.run, run.weights, run.model)
    return run, data, spike_times(run.weights, run.model, data.images, chip=chip), chip is not None


def cmd_eval(args) -> int:
    from training.evaluate import summarize

    run, data, (_, layers), on_chip = _run_split(args)
    result = {"run": str(args.run), "split": args.split, "on_chip": on_chip, **summarize(layers, data.labels)}
    if args.json:
        print(json.dumps(result))
    else:
        where = (f"the nominal chip it trains for ({args.run}/hw.yaml; --ideal: the ideal neurons)" if on_chip
                 else "ideal neurons")
        print(f"{args.run}: {result['n']} {run.dataset} {args.split} images, on {where}")
        print(f"  accuracy                {result['accuracy'] * 100:.2f}%")
        for l, s in enumerate(result["spikes_per_neuron"]):
            print(f"  spikes/neuron layer{l}    {s:.4f}")
        print(f"  spikes/neuron (mean)    {result['spikes_per_neuron_mean']:.4f}")
        print(f"  output spikes/neuron    {result['output_spikes_per_neuron']:.4f}")
        widths = run.model.layers[1:-1]
        print("  never fire (hidden)     " + ", ".join(f"layer{l} {n} of {w}" for l, (n, w) in
                                                       enumerate(zip(result["silent_neurons"], widths))))
    return 0


def cmd_spikes(args) -> int:
    atomic_io.prepare_out_file(args.out)
    run, data, (t_input, layers), _ = _run_split(args)
    atomic_io.write_npz(args.out, input=t_input, label=data.labels, v_th=np.array(run.model.v_th),
                        t_end=np.array(run.model.t_end), **{f"layer{l}": t for l, t in enumerate(layers)})
    print(f"wrote {args.out}: input {t_input.shape}, " +
          ", ".join(f"layer{l} {t.shape}" for l, t in enumerate(layers)))
    return 0


def _add_data_args(p, limit_help: str) -> None:
    p.add_argument("run", type=Path, help="run folder written by 'ttfs train'")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--limit", type=flags.count, default=None, help=limit_help)
    p.add_argument("--ideal", action="store_true",
                   help="a run trained for a chip (RUN/hw.yaml): use the ideal neurons instead of its nominal chip")


def add_hw_arg(p) -> None:
    p.add_argument("--hw", default=None,
                   help="train for this chip: a hardware config file or preset name (ttfs presets); every step "
                        "runs on a drawn instance of it (docs/model.md, training for the chip)")


def add_energy_arg(p, resumes_own: bool) -> None:
    own = " (a resumed run: the one it trained with)" if resumes_own else ""
    p.add_argument("--energy", default=None,
                   help="energy config (a YAML file or a preset name, as for energy-report) whose static powers "
                        "the energy term (reg.energy_strength) counts for every neuron until the chip stops; "
                        f"default: the built-in defaults{own}")


def refuse_energy_without_chip(args, hw: HardwareConfig | None) -> None:
    """--energy counts the static power of a chip's neurons: without a chip it would do nothing."""
    if args.energy is not None and hw is None:
        raise ConfigError(f"--energy {args.energy}: only a run trained for a chip counts its neurons' static power; "
                          "give --hw HW (or a hw: section in the config) or drop --energy")


def static_power_to_train_with(args, hw: HardwareConfig, resumed: Path | None = None) -> float:
    """One neuron's static power (W) the energy term counts: that of --energy (energy.config's
    static_power_w for hw.neuron), or without --energy the one run folder `resumed` counted (0 for a
    run saved before the term counted it), else the built-in defaults'."""
    from ttfs.cmd_energy import load_energy
    from training.trainer import saved_static_power_w

    saved = saved_static_power_w(resumed) if resumed is not None and args.energy is None else None
    return saved if saved is not None else load_energy(args.energy).static_power_w(hw.neuron)


def chip_factory(hw: HardwareConfig | None, static_power_w: float = 0.0):
    """The ChipView maker of training.sweep.run_sweep (ModelConfig -> hwmodel's ChipTraining for
    `hw`, counting static_power_w W per neuron; it pickles, for worker processes), or None for
    ideal neurons."""
    if hw is None:
        return None
    from functools import partial

    from hwmodel.aware import ChipTraining

    return partial(ChipTraining, hw, static_power_w=static_power_w)


def chip_banner(hw: HardwareConfig, where: str) -> str:
    return (f"training for the chip: {hw.neuron} neurons, {hw.scheme}, "
            f"{'analog' if hw.bits is None else f'{hw.bits}-bit'} cells (saved as {where})")


def register(sub, formatter) -> None:
    p = sub.add_parser("train", help="train a TTFS network", formatter_class=formatter,
                       parents=[flags.setting(SECTIONS), flags.DATA_DIR, flags.QUIET],
                       description="Train a TTFS network into a run folder (resumable).",
                       epilog="example:\n  ttfs train --config mnist-784-400-10 --out runs/mnist "
                              "--set train.epochs=2 --set data.train_limit=10000")
    p.add_argument("--config", required=True, help="training config: a YAML file or a preset name (ttfs presets)")
    p.add_argument("--out", required=True, type=Path, help="run folder to write")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_hw_arg(p)
    add_energy_arg(p, resumes_own=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="accuracy and spikes per neuron of a run", formatter_class=formatter,
                       parents=[flags.DATA_DIR],
                       description="Accuracy and spikes per neuron (per hidden layer and mean) of a trained run.",
                       epilog="example:\n  ttfs eval runs/mnist --limit 1000 --json")
    _add_data_args(p, "use only the first N images")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("spikes", help="write spike times of every layer to .npz", formatter_class=formatter,
                       parents=[flags.DATA_DIR],
                       description="Spike times of the input and every layer (inf = silent) for N images.",
                       epilog="example:\n  ttfs spikes runs/mnist --limit 10 --out spikes.npz")
    _add_data_args(p, "number of images")
    p.add_argument("--out", required=True, type=Path, help="output .npz")
    p.set_defaults(func=cmd_spikes)
