"""The stage cache: a stage's outputs stored under its key, loaded back memory-mapped.

joblib is the engine. Each entry is one item of a ``joblib.Memory`` store (``<cache>/joblib/
stages/<key>/output.pkl``), written by joblib's own concurrency-safe dump (a temporary file
renamed into place, so a reader sees a whole entry or none) and read back with ``mmap_mode="r"``:
numpy arrays inside come back as read-only memory maps, so loading a cached dataset costs a few
milliseconds whatever its size. ``Memory.reduce_size`` prunes the store, least recently used first.

The key is computed by ``pipeline.engine.keys`` (kind, canonical spec, code fingerprint, numpy version,
seed, input file content, previous key); the store never hashes Python objects itself, so a
joblib upgrade cannot silently change keys. Beside each entry a small JSON *record* keeps what the
key was made of, the sha256 of the entry's bytes and the type of each output, and a *last key*
pointer per (pipeline name, stage id) lets ``nnpipe plan`` explain what changed since the last
run. No entry is used before ``pipeline.engine.cache_check`` has checked it against its record: the
record's shape, the size, the checksum (hashed again whenever the file changed since), the
output names and types. Anything else is a one-line warning and a recompute.

The cache folder holds pickles: loading an entry runs code chosen by whoever wrote it. It is a
trust boundary; use only a folder you control (see ``pipeline.io.settings``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pipeline.engine.cache_check import (MISSING, REPLACED, check_content, checksum_fields, fresh_entry,
                                  outputs_problem, read_record, read_small_json, shape_of,
                                  type_name)
from pipeline.io import settings
from pipeline.engine.chain import StageKey
from pipeline.errors import UserError
from pipeline.files import DISK_FULL, DiskFullError, disk_full, write_json, write_text
from pipeline.io.leftovers import remove_abandoned, writer_mark
from pipeline.io.outputs import CACHE_TAG, CACHE_TAG_TEXT, is_cache_folder

#: The joblib "function" folder every stage entry lives under.
_FOLDER = "stages"
_KEY = re.compile(r"^[0-9a-f]{64}$")
#: What ``clear`` removes: everything the cache writes in its folder.
_MANAGED = ("joblib", "records", "last", "checkpoints", "file-hashes.json", "module-index.json")


def _default_warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


#: Control characters (a newline in a damaged record's key, say) written as escapes.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(32), 127)}


def one_line(message: str) -> str:
    """``message`` with every control character escaped: what a damaged file holds may not
    break a warning over lines (``{"\\n": null}`` as a record's outputs)."""
    return message.translate(_CONTROL)


def parse_size(text: str) -> int:
    """Bytes from ``"500M"``, ``"2G"``, ``"1.5GB"``, ``"64k"`` or ``"1000"``; UserError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise UserError(f"--max-size: {text!r} is not a size (examples: 500M, 2G, 1.5GB, 4096)")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * 1024 ** " kmgt".index(unit or " "))


def _safe_name(text: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:40]
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass
class EntryInfo:
    """What ``nnpipe cache info`` shows of one entry."""

    key: str
    size: int
    pipeline: str
    stage_id: str
    kind: str
    created: str


class StageCache:
    """Stage outputs by key in ``location`` (a folder the user trusts).

    Args:
        location: the cache folder (``--cache-dir``, ``NNPIPE_CACHE`` or the per-user default).
        warn: called with a one-line message when an entry cannot be read or written.
    """

    def __init__(self, location: Path | str, warn: Callable[[str], None] | None = None,
                 verify_always: bool | None = None):
        self.location = Path(location)
        report = warn or _default_warn
        self.warn = lambda message: report(one_line(message))  # one line, whatever it quotes
        # Hash every entry on every load (NNPIPE_CACHE_VERIFY=always), not only changed ones.
        self.verify_always = (settings.cache_verify_always() if verify_always is None
                              else verify_always)
        self._memory = None

    # --- the joblib store ----------------------------------------------------------------

    @property
    def memory(self):
        """The ``joblib.Memory`` behind the cache (imported on first use: joblib is slow to
        import and a fully cached run should not wait for what it does not need)."""
        if self._memory is None:
            from joblib import Memory

            # A str location: joblib stores under <location>/joblib (a Path would skip the
            # "joblib" level, joblib issue 1684).
            self._memory = Memory(str(self.location), mmap_mode="r", verbose=0)
            assert Path(self._memory.store_backend.location) == self.store_dir.parent
        return self._memory

    @property
    def store_dir(self) -> Path:
        return self.location / "joblib" / _FOLDER

    def _entry_file(self, key: str) -> Path:
        return self.store_dir / key / "output.pkl"

    def _record_file(self, key: str) -> Path:
        return self.location / "records" / f"{key}.json"

    def _pointer_file(self, pipeline: str, stage_id: str) -> Path:
        return self.location / "last" / f"{_safe_name(pipeline)}--{_safe_name(stage_id)}.json"

    def contains(self, key: str) -> bool:
        """Whether an entry for ``key`` exists (without loading or checking it)."""
        return self._entry_file(key).is_file()

    def verify(self, key: str) -> str | None:
        """Why ``key``'s entry cannot be trusted (no record, a record of the wrong shape, a size
        or checksum that does not match), or None when it can. Nothing is removed."""
        return self._checked_record(key)[1]

    def _checked_record(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        """(the record, None) when the entry's bytes are those it vouches for, else (None, why)."""
        record, problem = self._read_record(key)
        if problem or record is None:
            return None, problem or "it has no record holding its checksum"
        problem = check_content(self._entry_file(key), record, self._record_file(key),
                                self.verify_always)
        return (None, problem) if problem else (record, None)

    def lookup(self, key: str, label: str = "", outputs: tuple[str, ...] | None = None
               ) -> dict[str, Any] | None:
        """The stored outputs for ``key``, or None when there are none or the entry is damaged.

        An entry without a record is a miss. A damaged entry (its size or checksum not what was
        written, a record of the wrong shape, a pickle that does not load, outputs other than the
        names ``outputs`` or of other types than its record lists) is reported with one warning
        line naming ``label``, removed and treated as a miss, so the stage is recomputed and its
        entry rewritten; it is never used.
        """
        if not self.contains(key):
            return None
        if not self._record_file(key).exists():
            # Being written by another process (entry first, record next), or its record was
            # deleted: a miss, not damage; the stage runs and its entry is written again.
            return None
        record, problem = self._checked_record(key)
        if problem == REPLACED:
            return None  # two processes computed the same entry: the other's record follows
        if problem:
            self._damaged(key, label, problem)
            return None
        try:
            loaded = self.memory.store_backend.load_item([_FOLDER, key], verbose=0)
        except Exception as exc:  # a truncated or corrupt pickle: whatever the unpickler raises
            self._damaged(key, label, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
                          if str(exc) else type(exc).__name__)
            return None
        problem = outputs_problem(loaded, outputs, record)
        if problem:
            self._damaged(key, label, problem)
            return None
        return loaded

    def _damaged(self, key: str, label: str, why: str) -> None:
        self.warn(f"cache entry of {label or key[:12]} is damaged ({why}); recomputing it")
        shutil.rmtree(self.store_dir / key, ignore_errors=True)
        self._record_file(key).unlink(missing_ok=True)

    def store(self, key: str, outputs: dict[str, Any], record: StageKey | None = None) -> None:
        """Store ``outputs`` under ``key`` (atomically, via joblib), then its record.

        ``record`` (a ``pipeline.engine.chain.StageKey``) holds what ``plan`` and ``cache info``
        show: the key parts, pipeline name, stage id, kind. The checksum of the entry's bytes and
        the type of each output are added to it. A failure to write is a warning: the run goes on
        without that entry; but a full disk is a ``DiskFullError`` naming the cache folder (every
        later write would fail too). Either way, and on Ctrl-C, joblib's temporary file is removed.
        """
        if fresh_entry(self._entry_file(key)) and self._record_file(key).exists() \
                and self.verify(key) is None:
            return  # another process stored this entry a moment ago: keep it, do not replace it
        mark = writer_mark(self.store_dir / key)  # joblib's temporary name has no host
        try:
            self._tag()
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.touch()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.memory.store_backend.dump_item([_FOLDER, key], outputs, verbose=0)
        except BaseException as exc:
            self._remove_own_temporaries(key)
            if disk_full(exc):
                raise DiskFullError(self.location, "a cache entry") from None
            raise
        mark.unlink(missing_ok=True)
        problems = [str(w.message) for w in caught]
        if problems or not self.contains(key):
            self._remove_own_temporaries(key)
            label = record.label if record else key[:12]
            if any(f"[Errno {number}]" in problem for problem in problems for number in DISK_FULL):
                raise DiskFullError(self.location, f"the cache entry of {label}")
            self.warn(f"could not store {label} "
                      f"in the cache: {problems[0] if problems else 'no entry written'}")
            return
        try:
            checksum = checksum_fields(self._entry_file(key))
        except OSError as exc:  # removed meanwhile by another process's prune or clear
            self.warn(f"could not store {key[:12]} in the cache: {exc.strerror or exc}")
            return
        entry = record.to_json() if record is not None else {}
        entry.update(key=key, created=_dt.datetime.now().isoformat(timespec="seconds"),
                     outputs={name: type_name(value) for name, value in outputs.items()},
                     **checksum)
        self._write_record(key, entry)

    def _write_record(self, key: str, entry: dict[str, Any]) -> None:
        """Write ``entry`` as ``key``'s record so that it describes the entry file in place.

        Two processes computing the same entry each replace the file, then write a record: the
        last record written may stamp the file the other replaced (and pickles of equal outputs
        need not be equal bytes). So after writing, look again: while the file in place is not
        the one stamped, describe that one (a whole entry of the same key: joblib replaces
        atomically) and write again. The writer whose look comes last leaves a true record."""
        entry_file = self._entry_file(key)
        for _ in range(5):
            write_json(self._record_file(key), entry)
            try:
                if entry_file.stat().st_ino == entry["stamp"][3]:
                    return
                entry.update(checksum_fields(entry_file))
            except OSError:  # removed meanwhile by another process's prune or clear
                return

    def _remove_own_temporaries(self, key: str) -> None:
        """Remove what this process's failed or interrupted write of ``key`` left (joblib names
        its temporary file ``output.pkl.<uuid>-<pid>-<thread>``), and the folder if empty."""
        folder = self.store_dir / key
        for path in folder.glob(f"output.pkl.*-{os.getpid()}-*"):
            path.unlink(missing_ok=True)
        writer_mark(folder).unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty (an entry another process wrote) or already gone

    def remove_abandoned(self) -> None:
        """Remove the temporary files and folders killed processes left in the cache
        (``pipeline.io.leftovers``: only nnpipe's and joblib's own, only when their owner is gone)."""
        folders = [self.location, self.location / "records", self.location / "last"]
        for parent in (self.store_dir, self.location / "checkpoints"):
            if parent.is_dir():
                folders.extend(p for p in parent.iterdir() if p.is_dir())
        for folder in folders:
            if remove_abandoned(folder) and folder.parent == self.store_dir:
                try:
                    folder.rmdir()  # the entry folder of a write that never finished
                except OSError:
                    pass  # it holds an entry (or another process's live write)

    # --- records and last-key pointers ----------------------------------------------------

    def _read_record(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        """(record, None), (None, None) when there is none, or (None, why it is unusable)."""
        return read_record(self._record_file(key), key)

    def record(self, key: str) -> dict[str, Any] | None:
        """The record written beside ``key``'s entry, or None (with a warning when the file is
        there but is not a record)."""
        record, problem = self._read_record(key)
        if problem:
            self.warn(f"cache record {key[:12]} is damaged ({problem}); ignoring it")
        return record

    def stage_record(self, key: str) -> StageKey | None:
        """The typed record of ``key``'s entry; None when there is none or it is unreadable
        (a record of an older version that does not parse is "no record", never an error)."""
        return StageKey.from_json(self.record(key))

    def stage_records(self) -> list[StageKey]:
        """Every readable record in the cache, oldest first."""
        found = []
        folder = self.location / "records"
        for path in folder.glob("*.json") if folder.is_dir() else ():
            raw = self._read_record(path.stem)[0]  # silently: records of other pipelines too
            typed = StageKey.from_json(raw)
            if typed is not None and typed.key == path.stem:
                found.append((str(raw.get("created", "")), typed))
        return [typed for _, typed in sorted(found, key=lambda pair: pair[0])]

    def remember(self, pipeline: str, stage_id: str, key: str) -> None:
        """Note ``key`` as the last key of ``stage_id`` in pipeline ``pipeline`` (unless it is
        already: an unchanged rerun writes nothing here)."""
        if self.last_key(pipeline, stage_id) == key:
            return
        write_json(self._pointer_file(pipeline, stage_id),
                   {"pipeline": pipeline, "stage_id": stage_id, "key": key})

    def last_key(self, pipeline: str, stage_id: str) -> str | None:
        """The key ``stage_id`` of pipeline ``pipeline`` had in its last run, or None (with a
        warning when the pointer file is there but is not a pointer)."""
        path = self._pointer_file(pipeline, stage_id)
        value, problem = read_small_json(path)
        if value is MISSING:
            return None
        if problem is None and not (isinstance(value, dict) and isinstance(value.get("key"), str)
                                    and _KEY.match(value["key"])):
            problem = f"expected an object with a 64-hex 'key', found {shape_of(value)}"
        if problem:
            self.warn(f"last-run pointer {path.name} is damaged ({problem}); ignoring it")
            return None
        return value["key"]

    # --- info, clear, prune ----------------------------------------------------------------

    def entries(self) -> list[EntryInfo]:
        """Every entry in the store, with what its record says about it."""
        found = []
        if not self.store_dir.is_dir():
            return found
        for folder in sorted(self.store_dir.iterdir()):
            if not _KEY.match(folder.name):
                continue
            try:
                size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            except OSError:
                continue  # being removed by another process
            raw = self._read_record(folder.name)[0]
            typed = StageKey.from_json(raw)
            created = raw.get("created", "?") if raw else "?"
            found.append(EntryInfo(folder.name, size, typed.pipeline if typed else "?",
                                   typed.id if typed else "?", typed.kind if typed else "?",
                                   str(created)))
        return found

    def _refuse_foreign(self) -> None:
        """Raise a UserError (removing nothing) when the folder holds names this cache manages
        but is not a cache nnpipe wrote: they are someone else's ``records/``, ``last/``..."""
        managed = [name for name in _MANAGED if (self.location / name).exists()]
        if managed and not is_cache_folder(self.location):
            raise UserError(f"{self.location}: not an nnpipe cache folder (no {CACHE_TAG}), yet it "
                            f"holds {', '.join(managed)}; nothing was removed")

    def _tag(self) -> None:
        """Tag the folder as nnpipe's cache (``CACHEDIR.TAG``) when it is not yet."""
        tag = self.location / CACHE_TAG
        if not tag.exists():
            write_text(tag, CACHE_TAG_TEXT)

    def clear(self) -> int:
        """Remove every entry, record, pointer and checkpoint; return how many entries there were.
        A folder that is not an nnpipe cache is refused (see ``_refuse_foreign``)."""
        self._refuse_foreign()
        count = len(self.entries())
        for name in _MANAGED:
            path = self.location / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return count

    def prune(self, max_size: int) -> int:
        """Remove the least recently used entries until the store holds at most ``max_size``
        bytes (``joblib.Memory.reduce_size``); return how many entries went. A folder that is
        not an nnpipe cache is refused (see ``_refuse_foreign``)."""
        self._refuse_foreign()
        before = {e.key for e in self.entries()}
        if before:
            self.memory.reduce_size(bytes_limit=max_size)
        kept = {e.key for e in self.entries()}
        for key in before - kept:
            self._record_file(key).unlink(missing_ok=True)
            shutil.rmtree(self.location / "checkpoints" / key, ignore_errors=True)
        return len(before - kept)
