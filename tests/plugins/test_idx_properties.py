"""Property tests of the IDX reader and writer (hypothesis)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline.errors import DataError
from plugins.idx import IDX_TYPES, read_idx, write_idx

DTYPES = [np.dtype(d).newbyteorder("=") for d in IDX_TYPES.values()]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def idx_arrays(draw):
    """Any array IDX can hold: each type code, 1 to 4 dimensions, small sizes (zeros allowed)."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6))
    elements = None
    if dtype.kind == "f":  # the reader refuses NaN and infinities (tested on their own)
        elements = st.floats(allow_nan=False, allow_infinity=False, width=dtype.itemsize * 8)
    return draw(hnp.arrays(dtype, shape, elements=elements))


@SETTINGS
@given(array=idx_arrays(), compress=st.booleans())
def test_write_then_read_round_trips(tmp_path_factory, array, compress):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def valid_file_bytes() -> bytes:
    buffer = io.BytesIO()
    array = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    header = bytes([0, 0, 0x0B, 3]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    buffer.write(header + array.astype(">i2").tobytes())
    return buffer.getvalue()


VALID = valid_file_bytes()


def read_bytes(folder: Path, data: bytes) -> np.ndarray | None:
    """Read ``data`` as a file; None when the reader refused it with its own error."""
    path = folder / "x.idx"
    path.write_bytes(data)
    try:
        return read_idx(path)
    except DataError:
        return None  # the reader's own error: fine. Anything else propagates and fails the test.


@SETTINGS
@given(data=st.binary(max_size=200))
def test_random_bytes_read_or_raise_the_readers_error(tmp_path_factory, data):
    read_bytes(tmp_path_factory.mktemp("rand"), data)


@SETTINGS
@given(data=st.binary(min_size=1, max_size=200))
def test_random_bytes_behind_a_gzip_magic(tmp_path_factory, data):
    read_bytes(tmp_path_factory.mktemp("gz"), b"\x1f\x8b" + data)


@SETTINGS
@given(cut=st.integers(min_value=0, max_value=len(VALID) - 1), compress=st.booleans())
def test_every_truncation_of_a_valid_file_is_refused(tmp_path_factory, cut, compress):
    whole = gzip.compress(VALID, mtime=0) if compress else VALID
    cut = min(cut, len(whole) - 1)
    assert read_bytes(tmp_path_factory.mktemp("cut"), whole[:cut]) is None


@SETTINGS
@given(position=st.integers(min_value=0, max_value=len(VALID) - 1), value=st.integers(0, 255))
def test_a_flipped_byte_reads_or_raises_the_readers_error(tmp_path_factory, position, value):
    data = bytearray(VALID)
    data[position] = value
    read_bytes(tmp_path_factory.mktemp("flip"), bytes(data))
