"""Input encoding: one spike per pixel, bright pixels first."""
import numpy as np


def encode_pixels(images_u8: np.ndarray, t_in: float) -> np.ndarray:
    """Spike times (model time) for byte images of shape (N, ...): t = t_in * (1 - byte/255).

    Returns float64 of shape (N, n_pixels); a black pixel spikes at t_in, a white one at 0.
    """
    x = np.asarray(images_u8, dtype=np.float64).reshape(len(images_u8), -1) / 255.0
    return t_in * (1.0 - x)
