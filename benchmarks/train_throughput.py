"""Training throughput (forward + backward + Adam step, samples/s) of the numba and numpy paths.

    python benchmarks/train_throughput.py [--batch 128] [--samples 2048] [--numpy-samples 256] [--repeat 3]
        [--threads 1,2] [--reg none,m-ssr,f-ssr] [--strength 1e-4] [--runs RUN,RUN] [--hw ideal,passive,default]

Prints one table row per architecture and regulariser (applied to every hidden layer); real MNIST
images, fresh initial weights, or with --runs the weights of trained run folders (one row each):
the kernels' cost depends on how the network fires, so a trained network trains at another rate
than a fresh one. The numba path runs with each thread count of --threads in turn (numba's
set_num_threads, on the threading layer infra.threads chose; `auto`: infra.threads.
ThreadCountChooser picks the count batch by batch, as `ttfs train` does), --repeat rounds, and the
columns show each count's median rate and the median of the paired ratios to the first count
(pairs taken a few seconds apart keep the ratio meaningful on a shared machine whose speed
drifts). Each timing starts from the same weights. --hw: training for each chip (a hardware preset
or file, as `ttfs train --hw`; `ideal`: no chip, today's path), one row each: every step draws the
chip (hwmodel.aware), runs its layers (the leaky kernels where a layer leaks or has offsets) and
pulls the gradient back; the exact wires are solved once before timing (as once per epoch).
"""
import argparse
import time

import numpy as np

from training import network
from training.config import LossConfig, ModelConfig
from training.data import load_split
from training.encoding import encode_pixels
from infra.threads import ThreadCountChooser
from training.optim import Adam


def throughput(layers, backend, t_input, labels, batch, reg="none", strength=0.0, trained=None, auto=False,
               view=None):
    model = ModelConfig(layers=layers) if trained is None else trained.model
    coefs = [strength / batch] * (len(layers) - 2)
    v_hat = 0.8 if reg == "membrane" else None
    weights = (network.init_weights(layers, model.init_mean_gain, model.init_std_gain, 0) if trained is None
               else [w.copy() for w in trained.weights])
    opt = Adam([w.shape for w in weights], 1e-3)
    loss = LossConfig()
    threads = ThreadCountChooser() if auto else None
    def step(sl):
        if threads:
            threads.begin()
        chip = None if view is None else view.draw(weights, sl.start // batch)
        states = network.forward(weights, t_input[sl], model, backend, chip)
        _, delta = network.output_loss(states[-1].t_out, labels[sl], model, loss)
        back = network.backprop(weights, states, delta / batch, model, backend, reg, coefs, v_hat)
        grads = back.gw if view is None else view.pull_back(weights, chip, back.gw, back.glam)
        opt.step(weights, grads)
        if threads:
            threads.end(sl.stop - sl.start)

    step(slice(0, batch))  # compile / warm up
    start = time.perf_counter()
    for s in range(0, len(labels), batch):
        step(slice(s, s + batch))
    return len(labels) / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--samples", type=int, default=2048, help="images timed for the numba path")
    ap.add_argument("--numpy-samples", type=int, default=256, help="images timed for the numpy path")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of numba timings (each thread count once a round)")
    ap.add_argument("--threads", default="1,2,auto",
                    help="comma-separated numba thread counts, side by side; auto: chosen as `ttfs train` does")
    ap.add_argument("--reg", default="none", help="comma-separated regularisers to time (none, m-ssr, f-ssr, membrane)")
    ap.add_argument("--strength", type=float, default=1e-4, help="regulariser strength (per image, summed over neurons)")
    ap.add_argument("--runs", default=None, help="comma-separated run folders: time their trained weights")
    ap.add_argument("--hw", default="ideal",
                    help="comma-separated chips to train for (hardware presets or files; ideal: none), a row each")
    args = ap.parse_args()
    import numba

    from training.checkpoint import load_model
    counts = args.threads.split(",")
    top = numba.config.NUMBA_NUM_THREADS
    if any(c != "auto" and not (c.isdigit() and 1 <= int(c) <= top) for c in counts):
        ap.error(f"--threads: counts from 1 to NUMBA_NUM_THREADS={top}, or auto (got {args.threads})")
    # (label, trained model or None for fresh weights, layers)
    nets = ([("fresh", None, layers) for layers in [(784, 400, 10), (784, 400, 400, 400, 10)]] if args.runs is None
            else [(run, t, t.model.layers) for run in args.runs.split(",") for t in [load_model(run)]])
    data = load_split("mnist", "train", limit=args.samples)
    t_input = encode_pixels(data.images, 1.0)
    numba.get_num_threads()     # starts the threading layer, so that it can be named
    print(f"batch {args.batch}, numba threading layer {numba.threading_layer()}, {args.repeat} rounds of "
          f"{args.samples} images per thread count")
    heads = [f"{c} thread{'s' if c != '1' else ''}" if c != "auto" else "auto threads" for c in counts]
    from hwmodel.config import HardwareConfig
    from infra.config import load_config
    chips = [(name, None if name == "ideal" else load_config(name, HardwareConfig, section="hw"))
             for name in args.hw.split(",")]
    print("| architecture | weights | chip | regulariser | " + " | ".join(f"{h} samples/s" for h in heads) + " | "
          + " | ".join(f"{h} / {heads[0]}" for h in heads[1:]) + " | numpy samples/s | MNIST epoch (numba, best) |")
    print("|---|---|---|---|" + "---|" * (2 * len(counts) - 1) + "---|---|")
    for (src, trained, layers), (chip_name, hw), reg in [(n, c, r) for n in nets for c in chips
                                                          for r in args.reg.split(",")]:
        strength = 0.0 if reg == "none" else args.strength
        view = None
        if hw is not None:
            from hwmodel.aware import ChipTraining
            model = ModelConfig(layers=layers) if trained is None else trained.model
            view = ChipTraining(hw, model)
            view.refresh(network.init_weights(layers, model.init_mean_gain, model.init_std_gain, 0) if trained is None
                         else trained.weights)
        rates = np.empty((args.repeat, len(counts)))
        for r in range(args.repeat):
            for c, count in enumerate(counts):
                numba.set_num_threads(top if count == "auto" else int(count))
                rates[r, c] = throughput(layers, "numba", t_input, data.labels, args.batch, reg, strength, trained,
                                         auto=count == "auto", view=view)
        numba.set_num_threads(top)
        median = np.median(rates, axis=0)
        ratios = [float(np.median(rates[:, c] / rates[:, 0])) for c in range(1, len(counts))]
        n = args.numpy_samples
        slow = throughput(layers, "numpy", t_input[:n], data.labels[:n], args.batch, reg, strength, trained, view=view)
        name = "-".join(map(str, layers))
        print(f"| {name} | {src} | {chip_name} | {reg} | " + " | ".join(f"{x:,.0f}" for x in median) + " | "
              + " | ".join(f"{x:.2f}x" for x in ratios) + f" | {slow:,.0f} | {60000 / median.max():.0f} s |",
              flush=True)


if __name__ == "__main__":
    main()
