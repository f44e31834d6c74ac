"""Hostile or broken idx files are DataErrors naming the file, never a traceback or a wrong array."""
import gzip

import numpy as np
import pytest

from idx_files import STEMS, idx_bytes, write_split
from infra.errors import DataError
from training.data import load_split, read_idx
from ttfs.cli import main

IMAGES = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
LABELS = np.array([0, 9, 4], dtype=np.uint8)
IMG, LAB = STEMS["test"]


def test_a_small_valid_folder_loads(tmp_path):
    data = load_split("mnist", "test", data_dir=write_split(tmp_path, IMAGES, LABELS))
    np.testing.assert_array_equal(data.images, IMAGES)
    assert data.labels.tolist() == [0, 9, 4] and data.name == "mnist test"


@pytest.mark.parametrize("labels, match", [
    (np.array([0, 10, 4]), rf"{LAB}: label 10 at index 1 is not a class 0\.\.9"),
    (np.array([0, 255, 4]), rf"{LAB}: label 255 at index 1"),
    (np.array([0, 1]), rf"{IMG} has 3 images but .*{LAB} has 2 labels"),
])
def test_bad_labels_name_the_file(tmp_path, labels, match):
    write_split(tmp_path, IMAGES, labels)
    with pytest.raises(DataError, match=match):
        load_split("mnist", "test", data_dir=tmp_path)


@pytest.mark.parametrize("images", [np.zeros((3, 27, 28)), np.zeros((3, 28, 29)), np.zeros((3, 784))])
def test_images_that_are_not_28x28_bytes_name_the_file(tmp_path, images):
    write_split(tmp_path, IMAGES, LABELS)
    (tmp_path / IMG).write_bytes(idx_bytes(images.astype(np.uint8)))
    with pytest.raises(DataError, match=rf"{IMG}: holds uint8 images of shape .*expected 28x28 bytes"):
        load_split("mnist", "test", data_dir=tmp_path)


def test_images_and_labels_of_another_type_are_errors(tmp_path):
    write_split(tmp_path, IMAGES, LABELS)
    (tmp_path / IMG).write_bytes(idx_bytes(IMAGES.astype(np.float32), code=0x0D))
    with pytest.raises(DataError, match=rf"{IMG}: holds float32 images"):
        load_split("mnist", "test", data_dir=tmp_path)
    write_split(tmp_path, IMAGES, LABELS)
    (tmp_path / LAB).write_bytes(idx_bytes(LABELS.astype(np.int32), code=0x0C))
    with pytest.raises(DataError, match=rf"{LAB}: holds int32 labels"):
        load_split("mnist", "test", data_dir=tmp_path)


@pytest.mark.parametrize("ndim", [0, 5, 200, 255])
def test_an_absurd_number_of_dimensions_is_an_error(tmp_path, ndim):
    path = tmp_path / IMG
    path.write_bytes(bytes([0, 0, 0x08, ndim]) + (1).to_bytes(4, "big") * ndim + bytes(8))
    with pytest.raises(DataError, match=rf"{IMG}: idx header declares {ndim} dimensions"):
        read_idx(path)


@pytest.mark.parametrize("dims", [(3, 28, 27), (4, 28, 28), (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
                                  (2 ** 31, 2 ** 31, 4)])
def test_sizes_whose_product_is_not_the_file_length_are_an_error(tmp_path, dims):
    """Including sizes whose product overflows 64 bits (it must not wrap around to a match)."""
    path = tmp_path / IMG
    path.write_bytes(idx_bytes(IMAGES, dims=dims))
    with pytest.raises(DataError, match=rf"{IMG}: holds {IMAGES.size} data bytes, header says"):
        read_idx(path)


@pytest.mark.parametrize("raw", [b"", b"\x00\x00", b"\x01\x02\x08\x03" + bytes(40), b"\x00\x00\x07\x03" + bytes(40),
                                 b"<html>not found</html>"])
def test_wrong_magic_is_an_error(tmp_path, raw):
    path = tmp_path / IMG
    path.write_bytes(raw)
    with pytest.raises(DataError, match=rf"{IMG}: not an idx file \(bad magic number\)"):
        read_idx(path)


def test_truncated_header_and_data_are_errors(tmp_path):
    path = tmp_path / IMG
    raw = idx_bytes(IMAGES)
    path.write_bytes(raw[:10])
    with pytest.raises(DataError, match=rf"{IMG}: truncated idx header"):
        read_idx(path)
    path.write_bytes(raw[:-1])
    with pytest.raises(DataError, match=rf"{IMG}: holds {IMAGES.size - 1} data bytes"):
        read_idx(path)


def test_truncated_or_corrupt_gzip_is_an_error_naming_the_file(tmp_path):
    packed = gzip.compress(idx_bytes(IMAGES))
    corrupt = bytearray(packed)
    corrupt[12:40] = bytes(28)             # inside the deflate stream: zlib.error, not OSError
    path = tmp_path / (IMG + ".gz")
    for data in (packed[: len(packed) // 2], bytes(corrupt), packed[:10] + b"\x00" * 30, b"\x1f\x8b" + bytes(20)):
        path.write_bytes(data)
        with pytest.raises(DataError, match=rf"{IMG}.gz: "):
            read_idx(path)


def test_a_folder_in_place_of_a_file_is_an_error(tmp_path):
    (tmp_path / IMG).mkdir()
    with pytest.raises(DataError, match=rf"{IMG}: cannot be read"):
        read_idx(tmp_path / IMG)


def test_the_command_line_reports_a_bad_data_folder_in_one_line(tmp_path, capsys):
    from training.checkpoint import model_meta, save_model
    from training.config import ModelConfig
    run = tmp_path / "run"
    save_model(run, [np.full((784, 4), 0.01), np.full((4, 10), 0.5)], model_meta(ModelConfig(layers=(784, 4, 10)),
                                                                                 "mnist", {}))
    data = write_split(tmp_path / "data", IMAGES, np.array([0, 12, 4]))
    assert main(["eval", str(run), "--data-dir", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("ttfs eval: error: ") and f"{LAB}: label 12" in err
