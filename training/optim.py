"""Adam over a list of weight arrays, with state that can be saved and restored exactly."""
from __future__ import annotations

import numba as nb
import numpy as np

from infra.threads import use_default_layer
from training.dispatch import threaded

use_default_layer()     # before any parallel launch: docs/results.md, Throughput


# numpy's error model: the division does not test for zero (eps=0 with v=0 gives nan, not
# ZeroDivisionError), which lets LLVM vectorise the loop (the same IEEE operations, so the same numbers)
_ADAM_OPTIONS = {"error_model": "numpy"}


@nb.njit(parallel=True, cache=True, **_ADAM_OPTIONS)
def _adam_update(wf, gf, mf, vf, beta1, beta2, step_size, c1, c2, eps):
    """One Adam step in place on flat views, element by element: the numpy expressions of
    `Adam.step` evaluated in the same order (so the same numbers) without their temporaries."""
    b1c, b2c = 1.0 - beta1, 1.0 - beta2
    for i in nb.prange(wf.shape[0]):
        gi = gf[i]
        mi = mf[i] * beta1 + b1c * gi
        vi = vf[i] * beta2 + b2c * gi * gi
        mf[i] = mi
        vf[i] = vi
        wf[i] -= step_size * (mi / c1) / (np.sqrt(vi / c2) + eps)


_adam_update = threaded(_adam_update, True, **_ADAM_OPTIONS)
# below this many weights a parallel launch (45-150 us at two threads) costs more than the loop
PARALLEL_MIN_SIZE = 65536


class Adam:
    """Adam; `lr_scales` (one per weight array) multiply the common learning rate `lr`."""

    def __init__(self, shapes, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 lr_scales=None):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.lr_scales = [1.0] * len(shapes) if lr_scales is None else [float(x) for x in lr_scales]
        if len(self.lr_scales) != len(shapes):
            raise ValueError(f"Adam: {len(self.lr_scales)} lr_scales for {len(shapes)} weight arrays")
        self.m = [np.zeros(s) for s in shapes]
        self.v = [np.zeros(s) for s in shapes]
        self.step_count = 0

    def step(self, weights, grads) -> None:
        """Update `weights` in place."""
        self.step_count += 1
        c1 = 1.0 - self.beta1 ** self.step_count
        c2 = 1.0 - self.beta2 ** self.step_count
        for w, g, m, v, scale in zip(weights, grads, self.m, self.v, self.lr_scales):
            if w.flags.c_contiguous and g.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous \
                    and w.dtype == g.dtype == np.float64:
                update = _adam_update if w.size >= PARALLEL_MIN_SIZE else _adam_update.serial
                update(w.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                       self.beta1, self.beta2, scale * self.lr, c1, c2, self.eps)
            else:
                m *= self.beta1
                m += (1.0 - self.beta1) * g
                v *= self.beta2
                v += (1.0 - self.beta2) * g * g
                w -= scale * self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

    def state(self) -> dict:
        out = {"adam_step": np.array(self.step_count), "adam_lr": np.array(self.lr)}
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            out[f"adam_m{i}"] = m
            out[f"adam_v{i}"] = v
        return out

    def load_state(self, state) -> None:
        self.step_count = int(state["adam_step"])
        self.lr = float(state["adam_lr"])
        self.m = [np.array(state[f"adam_m{i}"]) for i in range(len(self.m))]
        self.v = [np.array(state[f"adam_v{i}"]) for i in range(len(self.v))]


class WeightAverage:
    """Exponential moving average of the weights over optimiser steps (Polyak averaging).

    Mini-batch Adam leaves the weights jittering around a minimum; their running average
    generalises better than the last step's weights. Debiased like Adam's moments, so the
    average after t steps weighs the t visited weights only: sum_s (1-d) d^(t-s) w_s / (1-d^t).
    """

    def __init__(self, shapes, decay: float):
        self.decay = decay
        self.sums = [np.zeros(s) for s in shapes]
        self.step_count = 0

    def update(self, weights) -> None:
        self.step_count += 1
        for s, w in zip(self.sums, weights):
            s *= self.decay
            s += (1.0 - self.decay) * w

    def weights(self) -> list[np.ndarray]:
        """The averaged weights (new arrays); requires at least one update."""
        if self.step_count == 0:
            raise ValueError("WeightAverage.weights: no step has been averaged yet")
        norm = 1.0 - self.decay ** self.step_count
        return [s / norm for s in self.sums]

    def restart_at(self, layer: int, index, values) -> None:
        """Restart the average of the entries `index` of weight array `layer` at `values` (e.g.
        weights redrawn between steps): `weights()` gives `values` there until the next update."""
        self.sums[layer][index] = np.asarray(values) * (1.0 - self.decay ** self.step_count)

    def state(self) -> dict:
        out = {"avg_step": np.array(self.step_count)}
        out.update({f"avg_sum{i}": s for i, s in enumerate(self.sums)})
        return out

    def load_state(self, state) -> None:
        self.step_count = int(state["avg_step"])
        self.sums = [np.array(state[f"avg_sum{i}"]) for i in range(len(self.sums))]
