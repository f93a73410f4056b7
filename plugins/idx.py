"""The IDX file format (MNIST's) and the ``idx_reader`` stage.

An IDX file is a 4-byte magic number, the dimensions, then the data, all big-endian:

    byte 0-1   0x00 0x00
    byte 2     type code: 0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte 3     number of dimensions, ndim
    then       ndim big-endian uint32 sizes
    then       prod(sizes) items of the type, big-endian, row-major

Files are often gzip-compressed; ``read_idx`` tells by the gzip magic bytes, not by the name. It
checks the header against what the file really holds before it trusts any size in it, so a
corrupt header cannot make it allocate gigabytes.
"""

from __future__ import annotations

import gzip
import math
import os
import stat
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Literal, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from pipeline.artifacts import Dataset, Split
from pipeline.errors import DataError
from pipeline.files import atomic_open
from pipeline import resources
from pipeline.resources import human_bytes
from pipeline.registry import default_registry, unknown_name_message
from pipeline.spec import RelativePath, StageContext, StageSpec, registry_of

#: IDX type code -> big-endian dtype of the items.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # read payloads 1 MiB at a time: memory grows with what the file really holds
#: Trailing bytes counted past the declared end before a file is called too long and left unread.
_MAX_EXTRA = 16 << 20
#: Most dimensions an IDX file may declare (the format allows 255; numpy arrays hold 32 or 64).
MAX_DIMS = 16


def _type_code(dtype: np.dtype) -> int | None:
    """The IDX type code of ``dtype`` (any byte order), or None when IDX cannot store it."""
    for code, idx_dtype in IDX_TYPES.items():
        if dtype.kind == idx_dtype.kind and dtype.itemsize == idx_dtype.itemsize:
            return code
    return None


def _read_exactly(stream: BinaryIO, count: int, path: Path, what: str) -> bytes:
    """``count`` header bytes, or a DataError saying the header is cut short."""
    data = stream.read(count)
    if len(data) != count:
        raise DataError(f"{path}: truncated IDX header: {what} needs {count} bytes, file has {len(data)}")
    return data


def _read_payload(stream: BinaryIO, declared: int, path: Path) -> tuple[bytearray, int]:
    """Read at most ``declared`` bytes in chunks, then count (and drop) whatever follows, up to
    ``_MAX_EXTRA`` bytes.

    Returns the bytes read and the payload length found (``declared + _MAX_EXTRA + 1`` at most).
    The buffer only grows by what actually arrives, so a header's claim costs nothing until the
    data is really there; a gzip stream that goes on long after the declared end is stopped.
    """
    payload = bytearray()
    while len(payload) < declared:
        chunk = stream.read(min(_CHUNK, declared - len(payload)))
        if not chunk:
            return payload, len(payload)
        payload += chunk
    extra = 0
    while extra <= _MAX_EXTRA and (chunk := stream.read(_CHUNK)):  # to the end: gzip checks its CRC
        extra += len(chunk)
    return payload, declared + extra


def _memory_budget() -> int | None:
    """The memory this reader may fill (looked up through the module, so tests can lower it)."""
    return resources.available_memory()


def _check_header(path: Path, shape: tuple[int, ...], dtype: np.dtype, raw_size: int | None) -> int:
    """The payload size ``shape`` declares, once it is known to be readable: the exact size for
    an uncompressed file (``raw_size``: its payload bytes; a mismatch is reported by the caller),
    and within the memory available (held twice: the bytes read, the native copy)."""
    declared = math.prod(shape) * dtype.itemsize  # a Python int: no overflow, nothing allocated
    if raw_size is not None and raw_size != declared:
        return declared  # _parse reports truncated / too long with the exact sizes, unread
    budget = _memory_budget()
    if budget is not None and 2 * declared > budget:
        raise DataError(f"{path}: IDX header declares {shape} items of {dtype.name}, which need "
                        f"{human_bytes(2 * declared)} to read, but only {human_bytes(budget)} of "
                        "memory is available")
    return declared


def _parse(stream: BinaryIO, path: Path, raw_size: int | None = None) -> np.ndarray:
    """Parse an IDX stream into a native-endian array; ``raw_size`` is the file's size when the
    stream is the uncompressed file itself (then a size mismatch is found without reading)."""
    zero0, zero1, code, ndim = _read_exactly(stream, 4, path, "the magic number")
    if zero0 != 0 or zero1 != 0:
        raise DataError(
            f"{path}: not an IDX file: magic number starts with 0x{zero0:02x}{zero1:02x}, expected 0x0000"
        )
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    dtype = IDX_TYPES[code]
    if ndim > MAX_DIMS:  # before reading the dims: 255 of them would not fit any array
        raise DataError(f"{path}: IDX header declares {ndim} dimensions; at most {MAX_DIMS} are "
                        "supported")
    shape = struct.unpack(f">{ndim}I", _read_exactly(stream, 4 * ndim, path, f"{ndim} dimension sizes"))
    payload_size = None if raw_size is None else raw_size - 4 - 4 * ndim
    declared = _check_header(path, shape, dtype, payload_size)
    if payload_size is not None and payload_size != declared:
        payload, found = bytearray(), payload_size  # nothing worth reading: the size is wrong
    else:
        payload, found = _read_payload(stream, declared, path)
    if found < declared:
        raise DataError(
            f"{path}: truncated IDX file: header declares {declared} bytes of data, file has {found} "
            f"(shape {shape} of {dtype.name})"
        )
    if found > declared:
        more = "more than " if found > declared + _MAX_EXTRA else ""
        found = min(found, declared + _MAX_EXTRA)
        raise DataError(
            f"{path}: IDX file too long: header declares {declared} bytes of data, file has "
            f"{more}{found} ({more}{found - declared} extra; shape {shape} of {dtype.name})"
        )
    array = np.frombuffer(payload, dtype=dtype).reshape(shape)  # shape: dims from the header
    array = array.astype(dtype.newbyteorder("="), copy=False)  # big-endian -> native
    if dtype.kind == "f":
        bad = np.count_nonzero(~np.isfinite(array))
        if bad:
            raise DataError(f"{path}: {bad} of {array.size} values are NaN or infinite")
    return array


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a native-endian numpy array.

    Gzip is recognised by its magic bytes (1f 8b), whatever the file is called. The file must be
    a regular file (a FIFO or device is refused without waiting on it).

    Raises:
        DataError: the file is missing, not a regular file, unreadable, not IDX, of an unknown
            type, of more than ``MAX_DIMS`` dimensions, larger than the memory available,
            truncated or too long, or a corrupt gzip stream. The message names the file.
    """
    path = Path(path)
    try:
        with _open_regular(path) as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            if not compressed:
                return _parse(raw, path, os.fstat(raw.fileno()).st_size)
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                return _parse(unzipped, path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data: {exc}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file; a DataError for a directory, FIFO,
    socket or device (opened with O_NONBLOCK, so a FIFO cannot block, and checked on the fd)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise DataError(f"{path}: is {what}, expected an IDX file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def write_idx(path: Path | str, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file, atomically; the inverse of ``read_idx``.

    Args:
        path: the file to write.
        array: uint8, int8, int16, int32, float32 or float64 data of at most 255 dimensions.
        compress: gzip the file; by default when ``path`` ends with ``.gz``.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _type_code(array.dtype)
    if code is None:
        raise DataError(f"{path}: IDX cannot store dtype {array.dtype} (use uint8, int8, int16, "
                        "int32, float32 or float64)")
    if array.ndim > 255 or any(size > 0xFFFFFFFF for size in array.shape):
        raise DataError(f"{path}: IDX cannot store shape {array.shape}")
    if compress is None:
        compress = path.name.endswith(".gz")
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    big_endian = np.ascontiguousarray(array, dtype=IDX_TYPES[code])  # same shape, big-endian items
    payload = big_endian.reshape(-1).view(np.uint8)  # (size * itemsize,) raw bytes
    with atomic_open(path, "wb") as handle:
        if compress:
            # mtime=0 and no file name: the same array always gives the same bytes (stable hashes).
            with gzip.GzipFile(filename="", fileobj=handle, mode="wb", compresslevel=6, mtime=0) as out:
                out.write(header)
                out.write(payload)
        else:
            handle.write(header)
            handle.write(payload)


class SplitFiles(BaseModel):
    """The two IDX files of one split."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    images: RelativePath
    labels: RelativePath


class IdxReader(StageSpec):
    """Read images and labels from IDX files: a registered dataset, or explicit files per split.

    Produces ``data``: a ``Dataset`` whose splits hold ``x`` (n, prod(sample_shape)) when
    ``flatten`` (else (n, *sample_shape)) in the file's dtype (uint8 for MNIST) and ``y`` (n,) int64.
    """

    kind: Literal["idx_reader"] = "idx_reader"
    uses_seed = False  # deterministic: the pipeline seed is not part of its key
    dataset: str | None = Field(default=None, description="A registered dataset name, e.g. mnist-10k.")
    train: SplitFiles | None = Field(default=None, description="Files of the train split.")
    test: SplitFiles | None = Field(default=None, description="Files of the test split.")
    files: dict[str, SplitFiles] = Field(
        default_factory=dict, description="Files of further splits, by split name (e.g. validation)."
    )
    flatten: bool = Field(default=True, description="Flatten each sample to a vector.")
    class_names: tuple[str, ...] | None = Field(
        default=None, description="A name per class; by default the dataset registration's, if any."
    )

    inputs = ()
    outputs = ("data",)

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None:
            names = registry_of(info).names("datasets")
            if name not in names:
                raise ValueError(unknown_name_message("dataset", name, names))
        return name

    @model_validator(mode="after")
    def _one_source(self) -> "IdxReader":
        explicit = self.train is not None or self.test is not None or bool(self.files)
        if self.dataset is not None and explicit:
            raise ValueError("give either 'dataset' or files per split ('train', 'test', 'files'), not both")
        if self.dataset is None and not explicit:
            raise ValueError("give 'dataset' (a registered dataset name) or files per split "
                             "('train: {images: ..., labels: ...}', 'test: ...')")
        for name in ("train", "test"):
            if name in self.files and getattr(self, name) is not None:
                raise ValueError(f"split {name!r} is given twice: as '{name}' and under 'files'")
        return self

    def _source(self):
        """The registered ``DatasetSource`` named by ``dataset``."""
        return default_registry().load("datasets", self.dataset)  # the group's type check runs

    def split_files(self, context: StageContext) -> dict[str, SplitFiles]:
        """Split name -> its two files, located on disk (a registered dataset is looked up)."""
        if self.dataset is None:
            named = {"train": self.train, "test": self.test}
            return {name: f for name, f in named.items() if f is not None} | dict(self.files)
        source = self._source()
        folder = source.locate(context.data_dir, context.progress)
        return {split: SplitFiles(images=folder / images, labels=folder / labels)
                for split, (images, labels) in source.files.items()}

    def input_files(self, context: StageContext) -> list[Path]:
        """Every file this stage reads, in a stable order (for the cache to hash)."""
        return [path for f in self.split_files(context).values() for path in (f.images, f.labels)]

    def run(self, inputs: Mapping[str, Any], context: StageContext) -> dict[str, Any]:
        """Read every split; check counts, label shape and sample shapes agree."""
        splits: dict[str, Split] = {}
        sample_shape: tuple[int, ...] | None = None
        first_images: Path | None = None
        files = self.split_files(context)
        for name, f in files.items():
            x = read_idx(f.images)  # (n, *sample_shape), e.g. (8000, 28, 28) uint8
            y = read_idx(f.labels)  # (n,)
            if x.ndim < 1:
                raise DataError(f"{f.images}: images must have a sample axis, file holds a single value")
            if y.ndim != 1:
                raise DataError(f"{f.labels}: labels must be 1-D, file holds shape {y.shape}")
            if x.shape[0] != y.shape[0]:
                raise DataError(f"split {name!r}: {f.images} holds {x.shape[0]} images but "
                                f"{f.labels} holds {y.shape[0]} labels")
            if x.shape[0] == 0:
                raise DataError(f"split {name!r}: {f.images} holds no items")
            if 0 in x.shape[1:]:
                raise DataError(f"{f.images}: samples of shape {x.shape[1:]} hold no values")
            if sample_shape is None:
                sample_shape, first_images = x.shape[1:], f.images
            elif x.shape[1:] != sample_shape:
                raise DataError(f"split {name!r}: {f.images} holds samples of shape {x.shape[1:]} but "
                                f"{first_images} holds {sample_shape}")
            y = _as_labels(y, f.labels)  # (n,) int64
            if self.flatten:
                x = x.reshape(x.shape[0], -1)  # (n, prod(sample_shape))
            splits[name] = Split(x=x, y=y)

        class_names = self.class_names
        if class_names is None and self.dataset is not None:
            class_names = self._source().class_names
        if class_names is not None:
            top = max(int(s.y.max()) for s in splits.values())
            if top >= len(class_names):
                raise DataError(f"{self.dataset or 'idx_reader'}: labels go up to {top} but "
                                f"{len(class_names)} class names are given")
        origins = {name: {"images": str(f.images), "labels": str(f.labels)}
                   for name, f in files.items()}
        return {"data": Dataset(splits=splits, class_names=class_names, sample_shape=sample_shape,
                                name=self.dataset or _describe(files), extra={"files": origins})}


def _as_labels(y: np.ndarray, path: Path) -> np.ndarray:
    """Labels as int64 class indices; float labels must hold whole numbers."""
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))  # (n,) bool
        if bad.any():
            raise DataError(f"{path}: labels must be whole numbers, found {y[bad][0]!r}")
    return y.astype(np.int64)


def _describe(files: Mapping[str, SplitFiles]) -> str:
    """A name for explicitly given files: their common folder, else the first images file."""
    paths = [p for f in files.values() for p in (f.images, f.labels)]
    folders = {p.parent for p in paths}
    return str(folders.pop()) if len(folders) == 1 else str(paths[0])
