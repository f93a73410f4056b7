"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

Everything nnpipe writes (run directories, models, checkpoints, cache entries) goes through these
helpers: write to a temporary file in the same folder, flush it to disk, then ``os.replace``.
Inside ``synced_together()`` (a run directory being filled in its private staging folder) each
file is flushed to disk at the end, all at once, instead of one after the other as it is written.
The temporary name carries the writer's pid and host (``pipeline.io.leftovers``), so a later run can
remove it if this process is killed before it can. A full disk (ENOSPC, EDQUOT) is a
``DiskFullError`` naming the folder, with the temporary file removed.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pipeline.errors import RunError
from pipeline.io.leftovers import temp_prefix

#: The errors of a write that found no room.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(RunError):
    """No space left (or the quota reached) while writing into a folder. Exit status 1."""

    def __init__(self, folder: Path | str, what: str = ""):
        self.folder = Path(folder)
        super().__init__(f"no space left on the device of {self.folder}"
                         f"{f' while writing {what}' if what else ''}: free some space "
                         f"(nothing half-written was kept) and run again")


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an OSError saying the disk (or the quota) is full."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


#: The files written inside ``synced_together`` that are still to be flushed (None: outside).
_unsynced: ContextVar[list[Path] | None] = ContextVar("nnpipe_unsynced_files", default=None)
#: Threads flushing files at once: fsyncs issued together share the file system's journal
#: commits (16 files of a run directory: 62 ms one after the other, 16 ms at once, ext4).
SYNC_THREADS = 16


@contextmanager
def synced_together() -> Iterator[None]:
    """Inside, ``atomic_open`` does not flush each file to disk as it closes it; when the block
    ends without an error every file written inside is flushed, all at once, before this
    returns. For a folder that nobody reads before the block ends (a run directory's staging
    folder, renamed into place afterwards): on leaving, its files are on disk exactly as if each
    had been flushed when written. A full disk found while flushing is a ``DiskFullError``."""
    if os.name == "nt":  # fsync needs a writable handle there: flush each file as it is written
        yield
        return
    pending: list[Path] = []
    token = _unsynced.set(pending)
    try:
        yield
    finally:
        _unsynced.reset(token)
    sync_files(pending)


def sync_files(paths: list[Path]) -> None:
    """Flush the data of every file in ``paths`` to disk, on several threads at once."""
    if not paths:
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(SYNC_THREADS, len(paths)), thread_name_prefix="nnpipe-sync") as pool:
        for path, exc in zip(paths, pool.map(_sync, paths)):
            if exc is not None and disk_full(exc):
                raise DiskFullError(path.parent, path.name) from None
            if exc is not None:
                raise exc


def _sync(path: Path) -> OSError | None:
    """fsync ``path``; the error instead of raising it (the caller names the file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except FileNotFoundError:
        return None  # removed since it was written: no data of it to keep
    except OSError as exc:
        return exc
    return None


@contextmanager
def atomic_open(path: Path | str, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if disk_full(exc):
            raise DiskFullError(path.parent, path.name) from None
        raise
    unsynced = _unsynced.get()
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            if unsynced is None:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        if unsynced is not None:
            unsynced.append(path)  # flushed when synced_together ends
    except BaseException as exc:
        # Whatever went wrong (including Ctrl-C), leave no partial file behind.
        Path(tmp).unlink(missing_ok=True)
        if disk_full(exc):
            raise DiskFullError(path.parent, path.name) from None
        raise


def write_text(path: Path | str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_json(path: Path | str, value: Any) -> None:
    """Write ``value`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def write_npz(path: Path | str, arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays to an ``.npz`` file atomically (no pickles inside)."""
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)


def write_npy(path: Path | str, array: np.ndarray) -> None:
    """Write one array to a ``.npy`` file atomically (no pickle), so it can be memory-mapped."""
    with atomic_open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
