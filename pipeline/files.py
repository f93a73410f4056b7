"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

Everything nnpipe writes (run directories, models, checkpoints, cache entries) goes through these
helpers: write to a temporary file in the same folder, flush it to disk, then ``os.replace``.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextmanager
def atomic_open(path: Path | str, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Whatever went wrong (including Ctrl-C), leave no partial file behind.
        Path(tmp).unlink(missing_ok=True)
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
