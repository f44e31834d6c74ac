"""ttfs train | eval | spikes: train a TTFS network, measure it, dump its spike times."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from infra import atomic_io
from training.checkpoint import load_model
from training.config import RunConfig
from training.data import check_fits, load_split, select
from infra.config import load_config
from ttfs import args as flags

SECTIONS = {"": RunConfig}      # --set train.epochs=3, model.layers=[...], seed=1


def load_run_config(path, overrides=(), data_dir=None) -> RunConfig:
    """RunConfig from YAML with the `--set` items of train and sweep (keys of the run config)."""
    overrides = list(overrides or ())
    if data_dir:
        overrides.append(f"data.data_dir={data_dir}")
    return load_config(path, RunConfig, overrides)


def cmd_train(args) -> int:
    from training.trainer import train       # imported here: numba is not needed for --help

    atomic_io.prepare_out_dir(args.out)
    cfg = load_run_config(args.config, flags.overrides(args)[""], args.data_dir)
    record = train(cfg, args.out, resume=args.resume, progress=not args.quiet)
    print(f"run folder: {args.out}  (model.npz, model.yaml, metrics.jsonl)")
    if record:
        print(f"test accuracy {record['test_accuracy']:.4f}, spikes per neuron {record['spikes_per_neuron_mean']:.3f}")
    return 0


def _run_split(args):
    from training.evaluate import spike_times   # imported here: numba is not needed for --help

    run = load_model(args.run)
    check_fits(str(args.run / "model.npz"), run.weights, run.dataset)
    data = select(load_split(run.dataset, args.split, args.data_dir), limit=args.limit)
    return run, data, spike_times(run.weights, run.model, data.images)


def cmd_eval(args) -> int:
    from training.evaluate import summarize

    run, data, (_, layers) = _run_split(args)
    result = {"run": str(args.run), "split": args.split, **summarize(layers, data.labels)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.run}: {result['n']} {run.dataset} {args.split} images")
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
    run, data, (t_input, layers) = _run_split(args)
    atomic_io.write_npz(args.out, input=t_input, label=data.labels, v_th=np.array(run.model.v_th),
                        t_end=np.array(run.model.t_end), **{f"layer{l}": t for l, t in enumerate(layers)})
    print(f"wrote {args.out}: input {t_input.shape}, " +
          ", ".join(f"layer{l} {t.shape}" for l, t in enumerate(layers)))
    return 0


def _add_data_args(p, limit_help: str) -> None:
    p.add_argument("run", type=Path, help="run folder written by 'ttfs train'")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--limit", type=flags.count, default=None, help=limit_help)


def register(sub, formatter) -> None:
    p = sub.add_parser("train", help="train a TTFS network", formatter_class=formatter,
                       parents=[flags.setting(SECTIONS), flags.DATA_DIR, flags.QUIET],
                       description="Train a TTFS network into a run folder (resumable).",
                       epilog="example:\n  ttfs train --config mnist-784-400-10 --out runs/mnist "
                              "--set train.epochs=2 --set data.train_limit=10000")
    p.add_argument("--config", required=True, help="training config: a YAML file or a preset name (ttfs presets)")
    p.add_argument("--out", required=True, type=Path, help="run folder to write")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
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
