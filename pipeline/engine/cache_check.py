"""Checking a cache entry before it is used: its record's shape, its bytes' checksum, its outputs.

Internal to ``pipeline.engine.cache``. When an entry is written, its record gets the sha256 of the
entry file's bytes and a *stamp* of the file (size, mtime, ctime, inode) taken after hashing.
When it is loaded:

- the record must be a JSON object of the right shape (anything else is a damaged entry);
- the file's size must be the size written;
- if the stamp is unchanged, and was taken well after the file's last change (so a change in the
  same timestamp tick cannot hide behind it: git's "racy clean" rule), the bytes are the bytes
  hashed, since any write, ``touch`` or ``os.utime`` moves ctime; otherwise the bytes are hashed
  again and must match. A match refreshes the stamp, so the next load is cheap again.

Hashing every entry on every load would cost a cached rerun of Fashion-MNIST more than the rerun
itself (550 MB of entries at 0.6-0.8 GB/s against a 0.8 s rerun: benchmarks/README.md); the stamp
makes the check cost a few ``fstat`` calls. ``NNPIPE_CACHE_VERIFY=always`` hashes on every load.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path
from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import UserError
from pipeline.files import write_json
from pipeline.userfiles import MissingFile, load_json, read_text

#: Largest record or pointer read (a record holds one stage's spec and input hashes: kilobytes).
MAX_RECORD_BYTES = 4 << 20
_DIGEST = "sha256"  # the fastest strong digest measured here (SHA-NI): 0.6-0.8 GB/s vs 0.4 blake2b
_BLOCK = 1 << 22


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class _Code(_Strict):
    distribution: str
    modules: dict[str, str]


class _Parts(_Strict):
    """The key parts ``plan`` compares (see ``pipeline.engine.keys.stage_key_parts``)."""

    kind: str
    spec: dict[str, Any]
    code: _Code
    numpy: str
    previous: Optional[str]
    inputs: list[str]
    seed: Optional[int] = None


class _Record(_Strict):
    """The shape a record must have before anything in it is believed."""

    key: str
    size: int
    checksum: str
    stamp: Annotated[list[int], Field(min_length=4, max_length=4)]
    stamped: int
    outputs: dict[str, str]
    label: str = ""
    pipeline: str = "?"
    stage_id: str = "?"
    kind: str = "?"
    created: str = "?"
    parts: Optional[_Parts] = None
    input_paths: list[str] = []


def shape_of(value: Any) -> str:
    """``a list``, ``a number``... for messages about JSON of the wrong shape."""
    if isinstance(value, dict):
        return "an object with other fields"
    return {list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


#: What ``read_small_json`` returns for a file that does not exist (JSON ``null`` is None).
MISSING = object()


def read_small_json(path: Path, limit: int = MAX_RECORD_BYTES) -> tuple[Any, str | None]:
    """(value, None); (MISSING, None) when ``path`` does not exist; (None, why) when it cannot
    be read as JSON (not a regular file, too large, not UTF-8, bad syntax, duplicate keys)."""
    try:
        return load_json(read_text(path, "cache file", limit), path.name), None
    except MissingFile:
        return MISSING, None
    except UserError as exc:
        return None, str(exc)


def read_record(path: Path, key: str) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None); (None, None) when there is no record; (None, why) for a bad one."""
    value, problem = read_small_json(path)
    if problem:
        return None, f"its record cannot be read: {problem}"
    if value is MISSING:
        return None, None
    try:
        _Record.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        found = shape_of(value) if not first["loc"] else first["msg"].lower()
        return None, f"its record is not a record: {where}: {found}"
    if value["key"] != key:
        return None, f"its record is that of {value['key'][:12]}"
    return value, None


def _stamp(info: os.stat_result) -> list[int]:
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def _hash_open_file(path: Path) -> tuple[str, os.stat_result]:
    """(``sha256:<hex>``, the file's stat taken after hashing) of the regular file ``path``,
    opened without blocking (a FIFO or device put there is refused, not read)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as handle:
            digest = hashlib.file_digest(handle, _DIGEST) if hasattr(hashlib, "file_digest") \
                else _hash_blocks(handle)
        return f"{_DIGEST}:{digest.hexdigest()}", os.fstat(fd)
    finally:
        os.close(fd)


def _hash_blocks(handle) -> Any:  # pragma: no cover - Python 3.10
    digest = hashlib.new(_DIGEST)
    while block := handle.read(_BLOCK):
        digest.update(block)
    return digest


def checksum_fields(path: Path) -> dict[str, Any]:
    """What a record holds to check ``path`` later: size, checksum, stamp, when stamped."""
    checksum, info = _hash_open_file(path)
    return {"size": info.st_size, "checksum": checksum, "stamp": _stamp(info),
            "stamped": time.time_ns()}


def _racy(record: dict[str, Any]) -> bool:
    """Whether the stamp was taken too soon after the file's last change to vouch for it: a
    change within the same timestamp tick would leave mtime and ctime as they were. Ticks are a
    few milliseconds on Linux; whole seconds where the file system keeps no nanoseconds."""
    ctime = record["stamp"][2]
    margin = 2_000_000_000 if ctime % 1_000_000_000 == 0 else 100_000_000
    return record["stamped"] - ctime < margin


#: ``check_content``'s answer for an entry file another process has just replaced (a new inode
#: within the last minute) whose record it has not written yet: a miss, not damage.
REPLACED = "another process replaced it and has not written its record yet"
_FRESH_NS = 60 * 10**9


def fresh_entry(path: Path) -> bool:
    """Whether the entry file ``path`` exists and was written within the last minute."""
    try:
        return time.time_ns() - os.stat(path).st_ctime_ns < _FRESH_NS
    except OSError:
        return False


def check_content(path: Path, record: dict[str, Any], record_path: Path,
                  always: bool = False) -> str | None:
    """Why the entry file ``path`` is not what ``record`` says was written, or None.

    Hashes the file unless its stamp vouches for it (see the module docstring); a successful hash
    refreshes the stamp in ``record_path``."""
    try:
        info = os.stat(path)
        # Another process wrote the same entry again (a new inode, just now): equal bytes are
        # the same entry (hashed below); other bytes are that process's, whose record follows.
        replaced = info.st_ino != record["stamp"][3] and \
            time.time_ns() - info.st_ctime_ns < _FRESH_NS
        if info.st_size != record["size"]:
            return REPLACED if replaced else \
                f"its size is {info.st_size} bytes, {record['size']} were written"
        if not always and _stamp(info) == list(record["stamp"]) and not _racy(record):
            return None
        checksum, info = _hash_open_file(path)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if checksum != record["checksum"]:
        return REPLACED if replaced else "its content does not match its checksum"
    refreshed = dict(record, stamp=_stamp(info), stamped=time.time_ns())
    try:
        write_json(record_path, refreshed)
    except OSError:
        pass  # a read-only cache: the next load hashes again
    return None


def type_name(value: Any) -> str:
    """``module.QualName`` of ``value``'s type, as recorded for each output."""
    return _class_name(type(value))


def _class_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def outputs_problem(loaded: Any, names: tuple[str, ...] | None,
                    record: dict[str, Any]) -> str | None:
    """Why ``loaded`` is not the outputs of the stage (other names than ``names``, other types
    than the record lists), or None."""
    if not isinstance(loaded, dict):
        return f"it holds a {type(loaded).__name__}, not a stage's outputs"
    if names is not None and set(loaded) != set(names):
        return f"it holds {sorted(map(str, loaded))}, the stage declares {sorted(names)}"
    types = record.get("outputs", {})
    for name, value in loaded.items():
        # A subclass is the type written (arrays come back as numpy.memmap, an ndarray).
        if name in types and types[name] not in map(_class_name, type(value).__mro__):
            return f"its {name!r} is a {type_name(value)}, a {types[name]} was written"
    return None
