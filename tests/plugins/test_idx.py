"""The IDX reader/writer and the idx_reader stage.

IDX bytes are written by hand with ``struct`` (the format's definition) so that the reader is
checked against an oracle that does not share its code.
"""

from __future__ import annotations

import gzip
import os
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.errors import DataError, UserError
from pipeline.spec import StageContext
import plugins
from plugins.idx import IdxReader, read_idx, write_idx

# type code -> (struct format letter, dtype, sample values at the edges of the type)
TYPES = {
    0x08: ("B", np.uint8, [0, 1, 128, 255]),
    0x09: ("b", np.int8, [-128, -1, 0, 127]),
    0x0B: ("h", np.int16, [-32768, -2, 1234, 32767]),
    0x0C: ("i", np.int32, [-(2**31), -7, 65536, 2**31 - 1]),
    0x0D: ("f", np.float32, [-3.0e38, -1.5, 0.0, 2.25]),
    0x0E: ("d", np.float64, [-1.0e300, -0.1, 1.0 / 3.0, 5e-324]),
}


def idx_bytes(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file as the format defines it: 0, 0, type code, ndim, big-endian uint32 dims, data."""
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape) + payload


def put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- reading hand-written files ------------------------------------------------------------------

def test_reads_hand_written_ubyte_matrix(tmp_path):
    path = put(tmp_path / "m.idx", idx_bytes(0x08, (2, 3), bytes([0, 1, 2, 3, 4, 255])))
    array = read_idx(path)
    assert array.dtype == np.uint8
    assert array.tolist() == [[0, 1, 2], [3, 4, 255]]


@pytest.mark.parametrize("code", sorted(TYPES))
def test_reads_every_type_code_big_endian(tmp_path, code):
    letter, dtype, values = TYPES[code]
    payload = struct.pack(f">{len(values)}{letter}", *values)
    array = read_idx(put(tmp_path / "v.idx", idx_bytes(code, (2, 2), payload)))
    assert array.dtype == np.dtype(dtype) and array.dtype.isnative
    expected = np.array(struct.unpack(f">{len(values)}{letter}", payload)).reshape(2, 2)
    np.testing.assert_array_equal(array, expected)


def test_gzip_is_detected_by_magic_bytes_not_by_name(tmp_path):
    data = idx_bytes(0x08, (3,), bytes([7, 8, 9]))
    assert read_idx(put(tmp_path / "compressed.idx", gzip.compress(data))).tolist() == [7, 8, 9]
    assert read_idx(put(tmp_path / "raw.gz", data)).tolist() == [7, 8, 9]


def test_zero_dimensional_and_empty_arrays(tmp_path):
    assert read_idx(put(tmp_path / "s.idx", idx_bytes(0x08, (), b"\x2a"))).shape == ()
    assert read_idx(put(tmp_path / "e.idx", idx_bytes(0x0C, (0, 5), b""))).shape == (0, 5)


# --- writing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", sorted(TYPES))
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_every_type_code_round_trips(tmp_path, code, name):
    letter, dtype, values = TYPES[code]
    array = np.array(values * 6, dtype=dtype).reshape(2, 3, 4)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("code", sorted(TYPES))
def test_written_bytes_match_the_format(tmp_path, code):
    letter, dtype, values = TYPES[code]
    write_idx(tmp_path / "w.idx", np.array(values, dtype=dtype))
    expected = idx_bytes(code, (len(values),), struct.pack(f">{len(values)}{letter}", *values))
    assert (tmp_path / "w.idx").read_bytes() == expected


def test_write_compresses_by_name_or_flag_and_is_deterministic(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    write_idx(tmp_path / "c.idx", array, compress=True)
    write_idx(tmp_path / "d.gz", array, compress=False)
    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    assert (tmp_path / "c.idx").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "d.gz").read_bytes() == idx_bytes(0x08, (3, 4), array.tobytes())
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary behind


def test_write_converts_non_native_byte_order(tmp_path):
    array = np.array([1, 256], dtype=">i4")
    write_idx(tmp_path / "le.idx", array.astype("<i4"))
    assert (tmp_path / "le.idx").read_bytes()[-8:] == struct.pack(">2i", 1, 256)


def test_write_refuses_a_dtype_idx_cannot_store(tmp_path):
    with pytest.raises(DataError, match="int64"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.int64))


# --- errors ----------------------------------------------------------------------------------------

def read_error(path: Path) -> str:
    with pytest.raises(DataError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    return message


def test_truncated_file(tmp_path):
    message = read_error(put(tmp_path / "t.idx", idx_bytes(0x08, (10, 4), bytes(12))))
    assert "truncated IDX file: header declares 40 bytes of data" in message
    assert "file has 12" in message


def test_file_longer_than_declared(tmp_path):
    message = read_error(put(tmp_path / "l.idx", idx_bytes(0x0B, (3,), bytes(8))))
    assert "too long" in message and "declares 6 bytes" in message and "file has 8" in message


@pytest.mark.parametrize("start", [b"\x01\x00", b"\x00\x01", b"PK"])
def test_wrong_magic(tmp_path, start):
    data = start + idx_bytes(0x08, (1,), b"\x00")[2:]
    assert "not an IDX file" in read_error(put(tmp_path / "w.idx", data))


def test_unknown_type_code(tmp_path):
    message = read_error(put(tmp_path / "u.idx", idx_bytes(0x0A, (1,), b"\x00")))
    assert "unknown IDX type code 0x0A" in message


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x08", idx_bytes(0x08, (5, 5), b"")[:9]])
def test_truncated_header(tmp_path, data):
    assert "truncated IDX header" in read_error(put(tmp_path / "h.idx", data))


@pytest.mark.parametrize("compress", [False, True])
def test_huge_declared_dims_are_refused_without_allocating_them(tmp_path, compress):
    # 16 dims of 2**32 - 1: far more than any memory. The reader must compare, not allocate: a
    # raw file's size is known (truncated), a gzip stream's is not (more than the memory).
    data = idx_bytes(0x0E, (0xFFFFFFFF,) * 16, bytes(64))
    path = put(tmp_path / "huge.idx", gzip.compress(data) if compress else data)
    tracemalloc.start()
    try:
        message = read_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if compress:
        assert "IDX header declares" in message and "of memory is available" in message
    else:
        assert "truncated IDX file" in message and "file has 64" in message
    assert peak < 8 * 2**20


@pytest.mark.parametrize("ndim", [17, 64, 255])
def test_more_dimensions_than_an_array_holds_are_refused(tmp_path, ndim):
    data = idx_bytes(0x08, (1,) * ndim, b"\x00")
    message = read_error(put(tmp_path / "dims.idx", data))
    assert f"IDX header declares {ndim} dimensions; at most 16 are supported" in message


def test_a_gzip_stream_far_longer_than_declared_stops_early(tmp_path):
    # 2 bytes declared, then 2 GB of zeros: 128 gzip members of 16 MB each (a 2 MB file).
    # Counted up to 16 MB past the end, not decompressed to the end (seconds more).
    member = gzip.compress(bytes(16 << 20), compresslevel=1, mtime=0)
    stream = gzip.compress(idx_bytes(0x08, (2,), bytes(2)), mtime=0) + member * 128
    started = time.perf_counter()
    message = read_error(put(tmp_path / "long.gz", stream))
    assert "too long" in message and "file has more than 16777218" in message
    assert time.perf_counter() - started < 1.5


def test_declared_size_larger_than_file_with_mnist_like_header(tmp_path):
    message = read_error(put(tmp_path / "x.gz", gzip.compress(idx_bytes(0x08, (10000, 28, 28), bytes(1200)))))
    assert "x.gz: truncated IDX file: header declares 7840000 bytes of data, file has 1200" in message


def test_truncated_gzip(tmp_path):
    whole = gzip.compress(idx_bytes(0x08, (100,), bytes(range(100))))
    for cut in (len(whole) - 4, len(whole) // 2, 12):
        message = read_error(put(tmp_path / f"cut{cut}.gz", whole[:cut]))
        assert "gzip" in message


def test_corrupt_gzip_checksum(tmp_path):
    whole = bytearray(gzip.compress(idx_bytes(0x08, (100,), bytes(range(100)))))
    whole[-6] ^= 0xFF  # a byte of the CRC-32 trailer
    assert "gzip" in read_error(put(tmp_path / "crc.gz", bytes(whole)))


def test_directory_instead_of_file(tmp_path):
    assert "is a directory" in read_error(tmp_path)


def test_missing_file(tmp_path):
    assert "no such file" in read_error(tmp_path / "absent.idx")


def test_unreadable_file(tmp_path, monkeypatch):
    # Permission bits do not stop root (CI runs as root), so the refusal is simulated at open().
    path = put(tmp_path / "locked.idx", idx_bytes(0x08, (1,), b"\x00"))
    real_open = os.open

    def refusing_open(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    message = read_error(path)
    assert "cannot read" in message and "Permission denied" in message


def test_errors_are_user_errors():
    assert issubclass(DataError, UserError)


# --- the idx_reader stage --------------------------------------------------------------------------

def write_split(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> dict[str, str]:
    write_idx(folder / f"{prefix}-images.gz", images)
    write_idx(folder / f"{prefix}-labels.gz", labels)
    return {"images": f"{prefix}-images.gz", "labels": f"{prefix}-labels.gz"}


def reader(tmp_path: Path, **fields) -> IdxReader:
    """Validate a spec as the config loader does: relative paths against the pipeline's folder."""
    return IdxReader.model_validate({"kind": "idx_reader", **fields}, context={"base_dir": tmp_path})


def test_bundled_mnist_10k(dataset_registry, context):
    data = IdxReader(dataset="mnist-10k").run({}, context)["data"]
    train, test = data.split("train"), data.split("test")
    assert (len(train), len(test)) == (8000, 2000)
    assert train.x.shape == (8000, 784) and train.x.dtype == np.uint8
    assert test.y.shape == (2000,) and test.y.dtype == np.int64
    assert data.sample_shape == (28, 28)
    assert set(np.unique(train.y)) == set(range(10)) == set(np.unique(test.y))
    assert train.x.max() == 255 and train.x.min() == 0
    assert data.class_names == tuple("0123456789") and data.name == "mnist-10k"


def test_bundled_mnist_10k_unflattened(dataset_registry, context):
    data = IdxReader(dataset="mnist-10k", flatten=False).run({}, context)["data"]
    assert data.split("test").x.shape == (2000, 28, 28)


def test_explicit_files_resolve_against_the_pipeline_folder(tmp_path, context):
    rng = np.random.default_rng(0)
    x_train, y_train = rng.integers(0, 256, (6, 2, 3), dtype=np.uint8), np.array([0, 1, 2, 0, 1, 2], np.uint8)
    x_test, y_test = rng.integers(0, 256, (2, 2, 3), dtype=np.uint8), np.array([2, 1], np.uint8)
    (tmp_path / "d").mkdir()
    spec = reader(tmp_path,
                  train={k: f"d/{v}" for k, v in write_split(tmp_path / "d", "tr", x_train, y_train).items()},
                  test={k: f"d/{v}" for k, v in write_split(tmp_path / "d", "te", x_test, y_test).items()},
                  class_names=["a", "b", "c"])
    assert spec.train.images == tmp_path / "d" / "tr-images.gz"
    data = spec.run({}, context)["data"]
    np.testing.assert_array_equal(data.split("train").x, x_train.reshape(6, 6))
    np.testing.assert_array_equal(data.split("test").y, [2, 1])
    assert data.sample_shape == (2, 3) and data.class_names == ("a", "b", "c")
    assert data.name == str(tmp_path / "d")
    assert spec.input_files(context) == [tmp_path / "d" / n for n in
                                         ("tr-images.gz", "tr-labels.gz", "te-images.gz", "te-labels.gz")]


def test_further_splits_under_files(tmp_path, context):
    val = write_split(tmp_path, "va", np.zeros((2, 4), np.uint8), np.array([0, 1], np.uint8))
    train = write_split(tmp_path, "tr", np.ones((3, 4), np.uint8), np.array([1, 0, 1], np.uint8))
    data = reader(tmp_path, train=train, files={"validation": val}).run({}, context)["data"]
    assert list(data.splits) == ["train", "validation"] and len(data.split("validation")) == 2


def test_count_mismatch_names_both_files_and_counts(tmp_path, context):
    write_idx(tmp_path / "i.idx", np.zeros((5, 4), np.uint8))
    write_idx(tmp_path / "l.idx", np.zeros(4, np.uint8))
    with pytest.raises(DataError) as caught:
        reader(tmp_path, train={"images": "i.idx", "labels": "l.idx"}).run({}, context)
    message = str(caught.value)
    assert str(tmp_path / "i.idx") in message and str(tmp_path / "l.idx") in message
    assert "5 images" in message and "4 labels" in message


def test_zero_items(tmp_path, context):
    files = write_split(tmp_path, "z", np.zeros((0, 4), np.uint8), np.zeros(0, np.uint8))
    with pytest.raises(DataError, match="holds no items"):
        reader(tmp_path, train=files).run({}, context)


def test_labels_must_be_one_dimensional(tmp_path, context):
    files = write_split(tmp_path, "t", np.zeros((2, 4), np.uint8), np.zeros((2, 1), np.uint8))
    with pytest.raises(DataError, match=r"labels must be 1-D.*\(2, 1\)"):
        reader(tmp_path, train=files).run({}, context)


def test_labels_must_be_whole_numbers(tmp_path, context):
    files = write_split(tmp_path, "t", np.zeros((2, 4), np.uint8), np.array([1.0, 0.5], np.float32))
    with pytest.raises(DataError, match="whole numbers"):
        reader(tmp_path, train=files).run({}, context)


def test_splits_must_agree_on_sample_shape(tmp_path, context):
    train = write_split(tmp_path, "tr", np.zeros((2, 4), np.uint8), np.zeros(2, np.uint8))
    test = write_split(tmp_path, "te", np.zeros((2, 5), np.uint8), np.zeros(2, np.uint8))
    with pytest.raises(DataError, match=r"\(5,\).*\(4,\)"):
        reader(tmp_path, train=train, test=test).run({}, context)


def test_labels_beyond_class_names(tmp_path, context):
    files = write_split(tmp_path, "t", np.zeros((2, 4), np.uint8), np.array([0, 3], np.uint8))
    with pytest.raises(DataError, match="labels go up to 3 but 2 class names"):
        reader(tmp_path, train=files, class_names=["a", "b"]).run({}, context)


def test_bad_file_in_a_split_names_it(tmp_path, context):
    (tmp_path / "i.idx").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")
    write_idx(tmp_path / "l.idx", np.zeros(9, np.uint8))
    with pytest.raises(DataError, match="i.idx: truncated IDX file"):
        reader(tmp_path, train={"images": "i.idx", "labels": "l.idx"}).run({}, context)


@pytest.mark.parametrize("fields, expected", [
    ({}, "give 'dataset'"),
    ({"dataset": "mnist-10k", "train": {"images": "a", "labels": "b"}}, "not both"),
    ({"train": {"images": "a", "labels": "b"}, "files": {"train": {"images": "a", "labels": "b"}}},
     "given twice"),
    ({"dataset": "mnist10k"}, "unknown dataset 'mnist10k'; installed: fashion-mnist, mnist-10k "
                              "(did you mean 'mnist-10k'?)"),
    ({"dataset": "mnist-10k", "flaten": False}, "flaten"),
    ({"train": {"images": "a"}}, "labels"),
])
def test_spec_validation(dataset_registry, tmp_path, fields, expected):
    with pytest.raises(ValidationError) as caught:
        reader(tmp_path, **fields)
    assert expected in str(caught.value)


def test_input_files_of_a_registered_dataset(dataset_registry, context):
    files = IdxReader(dataset="mnist-10k").input_files(context)
    bundled = Path(plugins.__file__).parent / "data" / "mnist-10k"
    assert [f.name for f in files] == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert all(f.parent.resolve() == bundled.resolve() and f.is_file() for f in files)


def test_data_dir_comes_before_the_bundled_copy(dataset_registry, tmp_path):
    folder = tmp_path / "data" / "mnist-10k"
    folder.mkdir(parents=True)
    for images, labels in (("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                           ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")):
        write_idx(folder / images, np.full((3, 2, 2), 9, np.uint8))
        write_idx(folder / labels, np.array([0, 1, 2], np.uint8))
    data = IdxReader(dataset="mnist-10k").run({}, StageContext(seed=0, data_dir=tmp_path / "data"))["data"]
    assert len(data.split("train")) == 3 and data.sample_shape == (2, 2)


def test_nan_or_infinite_values_are_refused(tmp_path):
    path = tmp_path / "f.idx"
    write_idx(path, np.array([[0.5, np.nan], [np.inf, 1.0]], dtype=np.float32))
    assert "f.idx: 2 of 4 values are NaN or infinite" in read_error(path)
