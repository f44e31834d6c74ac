"""Training-set augmentation: random translations of the images, drawn afresh every epoch."""
from __future__ import annotations

import numpy as np


def shift_images(images: np.ndarray, max_shift_px: int, rng: np.random.Generator) -> np.ndarray:
    """Each image (N, 28, 28) moved by its own (dy, dx), uniform integers in [-max_shift_px,
    max_shift_px]; pixels moved in from outside are black (they spike at t_in)."""
    if max_shift_px == 0:
        return images
    n, h, w = images.shape
    shifts = rng.integers(-max_shift_px, max_shift_px + 1, size=(n, 2))
    pad = max_shift_px
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad), dtype=images.dtype)
    padded[:, pad:pad + h, pad:pad + w] = images
    out = np.empty_like(images)
    for dy in range(-pad, pad + 1):
        for dx in range(-pad, pad + 1):
            sel = np.nonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))[0]
            # moving the content by (dy, dx) reads the window starting at (pad - dy, pad - dx)
            out[sel] = padded[sel, pad - dy:pad - dy + h, pad - dx:pad - dx + w]
    return out
