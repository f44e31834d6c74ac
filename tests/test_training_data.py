"""The idx reader on the real installed files, and its errors on bad ones."""
import gzip

import numpy as np
import pytest

from training.data import load_split, read_idx
from infra.errors import DataError


@pytest.mark.parametrize("dataset", ["mnist", "fmnist"])
def test_real_files_have_idx_shapes_and_labels(dataset):
    train = load_split(dataset, "train")
    test = load_split(dataset, "test")
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert train.images.dtype == np.uint8
    assert set(np.unique(test.labels)) == set(range(10))
    # every class is about a tenth of the test set
    assert np.bincount(test.labels).min() > 800
    assert 0 < train.images.mean() < 255


def test_gzipped_and_plain_files_read_the_same(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 0x08, 3]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes()
    (tmp_path / "a-idx3-ubyte").write_bytes(raw)
    with gzip.open(tmp_path / "b-idx3-ubyte.gz", "wb") as fh:
        fh.write(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "b-idx3-ubyte.gz"), arr)


def test_truncated_file_is_an_error_naming_it(tmp_path):
    raw = bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big") + bytes(5)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(raw)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.*truncated"):
        read_idx(path)
    path.write_bytes(b"garbage!")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(path)


def test_missing_data_names_the_file_and_the_install_command(tmp_path):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*make data"):
        load_split("mnist", "train", data_dir=tmp_path)
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_split("fmnist", "test", data_dir=tmp_path)


def test_limit_and_empty_set():
    assert len(load_split("mnist", "test", limit=7)) == 7
    with pytest.raises(DataError, match="empty"):
        load_split("mnist", "test", limit=0)
