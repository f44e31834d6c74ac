"""Adam over a list of weight arrays, with state that can be saved and restored exactly."""
from __future__ import annotations

import numpy as np


class Adam:
    def __init__(self, shapes, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = [np.zeros(s) for s in shapes]
        self.v = [np.zeros(s) for s in shapes]
        self.step_count = 0

    def step(self, weights, grads) -> None:
        """Update `weights` in place."""
        self.step_count += 1
        c1 = 1.0 - self.beta1 ** self.step_count
        c2 = 1.0 - self.beta2 ** self.step_count
        for w, g, m, v in zip(weights, grads, self.m, self.v):
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            w -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

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
