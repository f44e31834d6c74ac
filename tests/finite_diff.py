"""Central finite differences of a scalar function of a network's weights, the tests' independent
check of the exact gradients."""
import numpy as np


def weight_differences(f, weights, layer: int, flat, h: float) -> np.ndarray:
    """(f(w + h e) - f(w - h e)) / 2h for each flat index into weights[layer]; f takes a list of
    weight arrays (copies: `weights` is not changed)."""
    w = weights[layer]
    fd = np.zeros(len(flat))
    for n, f_idx in enumerate(flat):
        idx = np.unravel_index(f_idx, w.shape)
        wp = [x.copy() for x in weights]
        wm = [x.copy() for x in weights]
        wp[layer][idx] += h
        wm[layer][idx] -= h
        fd[n] = (f(wp) - f(wm)) / (2 * h)
    return fd
