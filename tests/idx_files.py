"""Small idx files for tests: a folder that `--data-dir` / `load_split(data_dir=...)` reads."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data import load_split

STEMS = {"test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
         "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")}


def idx_bytes(array: np.ndarray, code: int = 0x08, dims=None) -> bytes:
    """The idx encoding of `array` (type `code`, 0x08 = unsigned byte); `dims` overrides the header's sizes."""
    dims = array.shape if dims is None else dims
    big = array.astype(np.dtype(array.dtype).newbyteorder(">"))
    return bytes([0, 0, code, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims) + big.tobytes()


def write_split(folder: Path, images: np.ndarray, labels: np.ndarray, split: str = "test") -> Path:
    """Write images and labels as the idx files of `split` in `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    img, lab = STEMS[split]
    (folder / img).write_bytes(idx_bytes(np.asarray(images, dtype=np.uint8)))
    (folder / lab).write_bytes(idx_bytes(np.asarray(labels, dtype=np.uint8)))
    return folder


def real_test_subset(folder: Path, n: int, label: int | None = None) -> Path:
    """The first `n` real MNIST test images (of class `label` only, if given) as a data folder."""
    test = load_split("mnist", "test")
    keep = np.flatnonzero(test.labels == label)[:n] if label is not None else np.arange(n)
    return write_split(folder, test.images[keep], test.labels[keep])
