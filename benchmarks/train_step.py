"""Whole training steps (forward + backward + Adam, batch 128, real MNIST, fresh weights), samples/s,
using only what every version of training/ since the first has: to compare two checkouts.

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=CHECKOUT python benchmarks/train_step.py 784-400-10 16384 [PASSES]

Each pass starts from the same fresh weights and a fresh Adam; the first also pays the first touches
of the kernels' paths. Run it alternately in the two checkouts (pairs) and compare medians
(docs/results.md, Throughput: the code before issue 18 against today's).
"""
import sys
import time

from training import network
from training.config import LossConfig, ModelConfig
from training.data import load_split
from training.encoding import encode_pixels
from training.optim import Adam

BATCH = 128


def main(argv) -> None:
    layers = [int(x) for x in argv[0].split("-")]
    n = int(argv[1])
    passes = int(argv[2]) if len(argv) > 2 else 2
    model = ModelConfig(layers=layers)
    data = load_split("mnist", "train", None, n + BATCH)
    t_input = encode_pixels(data.images, model.t_in)
    loss = LossConfig()
    fresh = network.init_weights(layers, model.init_mean_gain, model.init_std_gain, 0)

    def step(weights, opt, sl):
        states = network.forward(weights, t_input[sl], model, "numba")
        _, delta = network.output_loss(states[-1].t_out, data.labels[sl], model, loss)
        if hasattr(network, "backprop"):
            grads = network.backprop(weights, states, delta / BATCH, model, "numba").gw
        else:                                   # before issue 18
            grads, _ = network.gradients(weights, states, delta / BATCH, model, "numba")
        opt.step(weights, grads)

    warm = [w.copy() for w in fresh]
    step(warm, Adam([w.shape for w in warm], 1e-3), slice(n, n + BATCH))      # compile / load the caches
    rates = []
    for _ in range(passes):
        weights = [w.copy() for w in fresh]
        opt = Adam([w.shape for w in weights], 1e-3)
        start = time.perf_counter()
        for s in range(0, n, BATCH):
            step(weights, opt, slice(s, s + BATCH))
        rates.append(n / (time.perf_counter() - start))
    print(" ".join(f"{r:.0f}" for r in rates), "samples/s")


if __name__ == "__main__":
    main(sys.argv[1:])
