"""Training throughput (forward + backward, samples/s) of the numba and numpy paths.

    python benchmarks/train_throughput.py [--batch 128] [--samples 2048] [--numpy-samples 256] [--repeat 3]
        [--reg none,m-ssr,f-ssr] [--strength 1e-4] [--runs RUN,RUN]

Prints one table row per architecture and regulariser (applied to every hidden layer); real MNIST
images, fresh initial weights, or with --runs the weights of trained run folders (one row each):
the kernels' cost depends on how the network fires, so a trained network trains at another rate
than a fresh one. The numba path is timed --repeat times and the median and best are
shown (a shared VM's timings scatter).
"""
import argparse
import time

import numpy as np

from training import network
from training.config import LossConfig, ModelConfig
from training.data import load_split
from training.encoding import encode_pixels


def throughput(layers, backend, t_input, labels, batch, reg="none", strength=0.0, trained=None):
    model = ModelConfig(layers=layers) if trained is None else trained.model
    coefs = [strength / batch] * (len(layers) - 2)
    v_hat = 0.8 if reg == "membrane" else None
    weights = (network.init_weights(layers, model.init_mean_gain, model.init_std_gain, 0) if trained is None
               else [w.copy() for w in trained.weights])
    loss = LossConfig()

    def step(sl):
        states = network.forward(weights, t_input[sl], model, backend)
        _, delta = network.output_loss(states[-1].t_out, labels[sl], model, loss)
        network.gradients(weights, states, delta / batch, model, backend, reg, coefs, v_hat)

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
    ap.add_argument("--repeat", type=int, default=3, help="timings of the numba path")
    ap.add_argument("--reg", default="none", help="comma-separated regularisers to time (none, m-ssr, f-ssr, membrane)")
    ap.add_argument("--strength", type=float, default=1e-4, help="regulariser strength (per image, summed over neurons)")
    ap.add_argument("--runs", default=None, help="comma-separated run folders: time their trained weights")
    args = ap.parse_args()
    from training.checkpoint import load_model
    # (label, trained model or None for fresh weights, layers)
    nets = ([("fresh", None, layers) for layers in [(784, 400, 10), (784, 400, 400, 400, 10)]] if args.runs is None
            else [(run, t, t.model.layers) for run in args.runs.split(",") for t in [load_model(run)]])
    data = load_split("mnist", "train", limit=args.samples)
    t_input = encode_pixels(data.images, 1.0)
    import numba
    print(f"batch {args.batch}, numba threads {numba.get_num_threads()}")
    print("| architecture | weights | regulariser | numba samples/s (median) | numba (best) | numpy samples/s | speed-up | MNIST epoch (numba) |")
    print("|---|---|---|---|---|---|---|---|")
    for src, trained, layers in nets:
        for reg in args.reg.split(","):
            strength = 0.0 if reg == "none" else args.strength
            runs = [throughput(layers, "numba", t_input, data.labels, args.batch, reg, strength, trained)
                    for _ in range(args.repeat)]
            fast, best = float(np.median(runs)), max(runs)
            n = args.numpy_samples
            slow = throughput(layers, "numpy", t_input[:n], data.labels[:n], args.batch, reg, strength, trained)
            name = "-".join(map(str, layers))
            print(f"| {name} | {src} | {reg} | {fast:,.0f} | {best:,.0f} | {slow:,.0f} | {fast / slow:.1f}x | "
                  f"{60000 / fast:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
