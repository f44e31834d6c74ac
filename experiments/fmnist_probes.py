"""Training probes for Fashion-MNIST 784-400-10: what moves its test accuracy, printed as a table.

Each probe trains one network from a config (plus `--set` overrides) like `ttfs train`, and after
every epoch evaluates on the 10,000 test images the last weights and, at once, their moving averages
over Adam steps for several decays (what `train.ema_decay` would save), so one run compares the
decays. `--cosine` is short for `--set train.lr_schedule=cosine --set train.lr_decay=1` (the
cosine schedule from train.lr to 0, docs/model.md). Two probes are not trainer features, because
they did not help (docs/results.md): `--revive` (after each epoch, redraw the input weights of
hidden neurons silent on 10,000 training images and zero their output weights), `--pixel-dropout P`
(each training pixel set to black with probability P, per epoch).

    nice -n 10 python experiments/fmnist_probes.py NAME [--config configs/fmnist-784-400-10.yaml]
        [--set key=value ...] [--decays 0.999,0.9997] [--cosine] [--revive] [--pixel-dropout 0.2]
        [--out runs/probes]
    python experiments/fmnist_probes.py --table [--out runs/probes]

A probe writes OUT/NAME.jsonl (one line per epoch) and OUT/NAME.yaml (its command line and the
resolved config); rerunning a name starts it again from scratch. Spikes and never-firing neurons in
the table are those of the last weights.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import training.trainer as trainer  # noqa: E402
from infra import atomic_io  # noqa: E402
from training import network  # noqa: E402
from training.augment import augment_images  # noqa: E402
from training.config import RunConfig  # noqa: E402
from training.data import load_split  # noqa: E402
from training.encoding import encode_pixels  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.optim import Adam, WeightAverage  # noqa: E402
from infra.config import load_config  # noqa: E402


class Averages:
    """Several weight averages updated together (train_epoch takes one)."""

    def __init__(self, shapes, decays):
        self.items = [WeightAverage(shapes, d) for d in decays]

    def update(self, weights):
        for a in self.items:
            a.update(weights)


def revive_silent(weights, opt: Adam, averages: Averages, t_probe, cfg: RunConfig, epoch: int) -> list[int]:
    """Redraw the input weights of hidden neurons that fire for none of `t_probe` from the initial
    distribution, zero their output weights and their Adam moments; returns the count per layer."""
    states = network.forward(weights, t_probe, cfg.model)
    counts = []
    for l in range(len(weights) - 1):
        dead = ~np.isfinite(states[l].t_out).any(axis=0)
        counts.append(int(dead.sum()))
        if not dead.any():
            continue
        n_in = weights[l].shape[0]
        rng = np.random.default_rng([cfg.seed, epoch, l, 7])
        weights[l][:, dead] = network.draw_weights(rng, n_in, counts[-1], cfg.model.init_mean_gain,
                                                   cfg.model.init_std_gain)
        weights[l + 1][dead, :] = 0.0
        for arr in (opt.m[l], opt.v[l]):
            arr[:, dead] = 0.0
        for arr in (opt.m[l + 1], opt.v[l + 1]):
            arr[dead, :] = 0.0
        for a in averages.items:   # the average restarts at the new weights
            a.restart_at(l, (slice(None), dead), weights[l][:, dead])
            a.restart_at(l + 1, (dead, slice(None)), 0.0)
    return counts


def probe(args) -> None:
    cosine = ["train.lr_schedule=cosine", "train.lr_decay=1"] if args.cosine else []
    cfg = load_config(args.config, RunConfig, overrides=[*args.set, *cosine])
    train_set = load_split(cfg.data.dataset, "train", cfg.data.data_dir, cfg.data.train_limit)
    test_set = load_split(cfg.data.dataset, "test", cfg.data.data_dir, cfg.data.test_limit)
    weights = trainer.initial_weights(cfg)
    opt = Adam([w.shape for w in weights], cfg.train.lr, lr_scales=cfg.train.lr_layer_scale)
    decays = [float(d) for d in args.decays.split(",")]
    averages = Averages([w.shape for w in weights], decays)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / f"{args.name}.jsonl"
    atomic_io.write_yaml(args.out / f"{args.name}.yaml", {"argv": sys.argv[1:], "config": trainer.config_to_dict(cfg)})
    log.write_text("")
    for epoch in range(cfg.train.epochs):
        t0 = time.perf_counter()
        images = augment_images(train_set.images, cfg.train.shift_px, cfg.train.flip, cfg.seed, epoch)
        t_epoch = encode_pixels(images, cfg.model.t_in)
        if args.pixel_dropout > 0:
            keep = np.random.default_rng([cfg.seed, epoch, 9]).random(t_epoch.shape) >= args.pixel_dropout
            t_epoch = np.where(keep, t_epoch, cfg.model.t_in)
        rec = trainer.train_epoch(weights, opt, cfg, t_epoch, train_set.labels, epoch, not args.quiet, averages)
        if args.revive:
            rec["revived"] = revive_silent(weights, opt, averages, t_epoch[:10000], cfg, epoch)
        last = evaluate(weights, cfg.model, test_set.images, test_set.labels)
        rec.update(epoch=epoch + 1, lr=opt.lr, test=last["accuracy"], spikes=last["spikes_per_neuron_mean"],
                   silent=last["silent_neurons"])
        for d, a in zip(decays, averages.items):
            avg = evaluate(a.weights(), cfg.model, test_set.images, test_set.labels)
            rec[f"ema{d:g}"] = avg["accuracy"]
            rec[f"ema{d:g}_spikes"] = avg["spikes_per_neuron_mean"]
        rec["seconds"] = time.perf_counter() - t0
        with open(log, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(f"{args.name} epoch {epoch + 1}: train {rec['train_accuracy']:.4f}  test {rec['test']:.4f}  "
              + "  ".join(f"ema{d:g} {rec[f'ema{d:g}']:.4f}" for d in decays)
              + f"  spikes/neuron {rec['spikes']:.3f}  silent {rec['silent']}  ({rec['seconds']:.0f} s)", flush=True)


def table(out: Path) -> str:
    lines = ["| probe | epochs | train acc. | test, last weights | test, ema 0.999 (last 10 epochs: mean; max) | "
             "other decays | ema 0.999 after 30 epochs | hidden spikes/neuron (last weights) | "
             "never-firing hidden neurons (last weights) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for log in sorted(out.glob("*.jsonl")):
        recs = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        if not recs:
            continue
        r = recs[-1]
        tail = [x.get("ema0.999") for x in recs[-10:] if x.get("ema0.999") is not None]
        ema = f"{100 * r['ema0.999']:.2f}% ({100 * np.mean(tail):.2f}%; {100 * max(tail):.2f}%)" if tail else "-"
        others = ", ".join(f"{k[3:]}: {100 * v:.2f}%" for k, v in r.items()
                           if k.startswith("ema") and not k.endswith("_spikes") and k != "ema0.999")
        at30 = f"{100 * recs[29]['ema0.999']:.2f}%" if len(recs) >= 30 and "ema0.999" in recs[29] else "-"
        lines.append(f"| {log.stem} | {r['epoch']} | {100 * r['train_accuracy']:.2f}% | {100 * r['test']:.2f}% | "
                     f"{ema} | {others} | {at30} | {r['spikes']:.3f} | {r['silent'][0] if r['silent'] else '-'} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", nargs="?", help="probe name (its log is OUT/NAME.jsonl)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "fmnist-784-400-10.yaml"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--decays", default="0.999,0.9997", help="weight-average decays to evaluate")
    ap.add_argument("--cosine", action="store_true",
                    help="cosine schedule from train.lr to 0 (train.lr_schedule=cosine, train.lr_decay=1)")
    ap.add_argument("--revive", action="store_true", help="redraw never-firing hidden neurons after each epoch")
    ap.add_argument("--pixel-dropout", type=float, default=0.0, help="probability of blacking out a training pixel")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "probes")
    ap.add_argument("--table", action="store_true", help="print the table of the probes in OUT")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if args.table:
        print(table(args.out))
        return 0
    if not args.name:
        ap.error("give a probe NAME, or --table")
    probe(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
