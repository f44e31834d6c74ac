"""Training-set augmentation: random translations and mirror images, drawn afresh every epoch."""
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


def flip_images(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image (N, 28, 28) mirrored left to right with probability 1/2. Meant for
    Fashion-MNIST, whose garments are near-symmetric; it would corrupt digits."""
    flip = rng.random(images.shape[0]) < 0.5
    out = images.copy()
    out[flip] = images[flip, :, ::-1]
    return out


def augment_images(images: np.ndarray, shift_px: int, flip: bool, seed: int, epoch: int) -> np.ndarray:
    """The training images of `epoch`: shifted, then mirrored, each from its own seeded stream so
    that a resumed run draws what an uninterrupted one would."""
    out = shift_images(images, shift_px, np.random.default_rng([seed, epoch, 1]))
    if flip:
        out = flip_images(out, np.random.default_rng([seed, epoch, 2]))
    return out
