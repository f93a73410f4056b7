"""The key of a stage: what must be equal for a stage's result to be reused.

A stage's key is the sha256 of canonical JSON holding its kind, its spec (``model_dump(mode=
"json")``, never the model object: equal specs written differently share a key), a fingerprint
of its code, the numpy version, the seed when the stage uses it, the content of the files it
reads, and the key of the stage before it. So a change anywhere reruns that stage and every stage
after it, and nothing else.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import re
import stat
import sys
from importlib import metadata, util
from pathlib import Path
from typing import Any, Callable, Iterator

from pipeline.errors import DataError, UserError
from pipeline.spec import StageContext, StageSpec
from pipeline.userfiles import MissingFile, load_json, read_text


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(value: Any) -> str:
    """The sha256 hex digest of ``value``'s canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def spec_fields(stage: StageSpec) -> dict[str, Any]:
    """The stage's spec as plain JSON data, without ``id`` (a label, not a setting)."""
    return stage.model_dump(mode="json", exclude={"id"})


def _module_file(name: str) -> Path | None:
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if file is None:
        try:
            found = util.find_spec(name)
        except (ImportError, ValueError):
            return None
        file = found.origin if found is not None else None
    return Path(file) if file and file.endswith(".py") else None


def _statements(tree: ast.Module) -> Iterator[ast.AST]:
    """Every statement of ``tree``, nested ones included (function and class bodies, branches,
    handlers, match cases). An import is always a statement, so this finds the same imports as
    ``ast.walk`` while skipping the expressions, most of a module's nodes."""
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            todo.extend(getattr(node, name, ()))


def _imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """The absolute names of the modules ``source`` imports (relative imports resolved)."""
    names = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in _statements(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@functools.lru_cache(maxsize=1024)
def _read_module(path: Path, stamp: tuple[int, int], name: str, is_package: bool):
    """(sha256, imported module names) of a source file, memoised while its stamp holds."""
    source = path.read_bytes()
    imported = _imported_modules(source.decode("utf-8", "replace"), name, is_package)
    return hashlib.sha256(source).hexdigest(), frozenset(imported)


class ModuleIndex:
    """(sha256, imported module names) of source files, kept between runs in a small JSON file
    while a file's size and modification time hold: parsing every plugin module again costs a
    cached rerun more than all the rest of its keys."""

    def __init__(self, memo_file: Path | None = None):
        self.memo_file = memo_file
        self.memo: dict[str, Any] = {}
        if memo_file is not None and memo_file.is_file():
            try:
                loaded = json.loads(memo_file.read_text())
                self.memo = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self.memo = {}  # a damaged index only costs a re-parse
        self._dirty = False

    def read(self, path: Path, name: str, is_package: bool) -> tuple[str, frozenset[str]]:
        """(sha256, imported modules) of module ``name`` at ``path``."""
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        slot = f"{name}|{int(is_package)}|{path}"
        known = self.memo.get(slot)
        if (isinstance(known, list) and len(known) == 4 and known[:2] == stamp
                and isinstance(known[2], str) and isinstance(known[3], list)):
            return known[2], frozenset(map(str, known[3]))
        sha, imported = _read_module(path, tuple(stamp), name, is_package)
        if self.memo_file is not None:
            self.memo[slot] = [*stamp, sha, sorted(imported)]
            self._dirty = True
        return sha, imported

    def flush(self) -> None:
        """Write the index back (atomically), if it changed."""
        if self.memo_file is not None and self._dirty:
            from pipeline.files import write_json

            write_json(self.memo_file, self.memo)
            self._dirty = False


def code_fingerprint(modules: list[str], index: ModuleIndex | None = None) -> dict[str, str]:
    """sha256 of the source of ``modules`` and of every module of the same top-level package they
    import, transitively: editing a helper of a stage invalidates the stage, editing another stage
    does not. ``index`` keeps what was read between runs."""
    index = index or ModuleIndex()
    roots = {name.partition(".")[0] for name in modules}
    seen: dict[str, str] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen or name.partition(".")[0] not in roots:
            continue
        path = _module_file(name)
        if path is None:
            continue
        sha, imported = index.read(path, name, path.name == "__init__.py")
        seen[name] = sha
        todo.extend(imported)
    return dict(sorted(seen.items()))


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    """``metadata.packages_distributions()``, read once per process: it parses the metadata of
    every installed distribution (0.2-0.7 s), and every stage key asks for it."""
    return metadata.packages_distributions()


def _registered_distributions() -> dict[str, str]:
    """Top-level package -> ``name version`` of the distribution whose entry points load from it,
    from the registry (which read each distribution's metadata once). A package two
    distributions register from is left out (``packages_distributions`` decides it)."""
    from pipeline.registry import default_registry

    registry = default_registry()
    found: dict[str, set[str]] = {}
    for group in registry.groups():
        for entry in registry.entries(group):
            if entry.distribution != "?":
                top = entry.target.partition(":")[0].partition(".")[0]
                found.setdefault(top, set()).add(entry.origin)
    return {top: origins.pop() for top, origins in found.items() if len(origins) == 1}


@functools.lru_cache(maxsize=256)
def _distribution_of_package(top: str) -> str:
    for dist_name in _packages_distributions().get(top, []):
        try:
            return f"{dist_name} {metadata.version(dist_name)}"
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def distribution_of(module: str) -> str:
    """``name version`` of the distribution that provides ``module``'s top-level package.

    A plugin's package is found through the registry's entry points (cheap); anything else
    through ``metadata.packages_distributions()``, which reads every installed distribution's
    file list (0.2-0.7 s), once per process."""
    top = module.partition(".")[0]
    return _registered_distributions().get(top) or _distribution_of_package(top)


def _numpy_version() -> str:
    import numpy

    return numpy.__version__


#: Largest file-hash memo read (an entry per input file, about 150 bytes each).
MAX_MEMO_BYTES = 64 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _valid_memo_entry(value: Any) -> bool:
    """``[size, mtime_ns, sha256]``: two ints (not booleans) and 64 hex digits."""
    return (isinstance(value, list) and len(value) == 3
            and all(type(part) is int for part in value[:2])
            and isinstance(value[2], str) and bool(_SHA256.match(value[2])))


def read_memo(memo_file: Path, warn: Callable[[str], None]) -> dict[str, list]:
    """The memo in ``memo_file``: every valid entry; a damaged file or entry costs a re-hash and
    one warning, never a traceback."""
    try:
        memo = load_json(read_text(memo_file, "file-hash index", MAX_MEMO_BYTES), str(memo_file))
    except MissingFile:
        return {}
    except UserError as exc:
        warn(f"{exc}; the input files will be hashed again")
        return {}
    if not isinstance(memo, dict):
        warn(f"{memo_file}: expected an object of file hashes, found {type(memo).__name__}; "
             "the input files will be hashed again")
        return {}
    valid = {path: entry for path, entry in memo.items() if _valid_memo_entry(entry)}
    if len(valid) < len(memo):
        warn(f"{memo_file}: {len(memo) - len(valid)} of {len(memo)} entries are not "
             "[size, mtime_ns, sha256]; those files will be hashed again")
    return valid


def _default_warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class FileHasher:
    """sha256 of files, reusing a hash while a file's size and modification time are unchanged.

    The memo lives in memory and, when given a path, in a small JSON file, so a rerun does not
    read a 30 MB dataset again just to find it unchanged. ``warn`` receives one line when that
    file is damaged.
    """

    def __init__(self, memo_file: Path | None = None,
                 warn: Callable[[str], None] | None = None):
        self.memo_file = memo_file
        self.memo: dict[str, list] = {}
        if memo_file is not None:
            self.memo = read_memo(memo_file, warn or _default_warn)
        self._dirty = False
        #: The plugin modules' parsed imports, beside the file hashes.
        self.modules = ModuleIndex(memo_file.with_name("module-index.json")
                                   if memo_file is not None else None)

    def hash(self, path: Path) -> str:
        """The sha256 of the regular file at ``path`` (a directory, FIFO or device is a
        DataError: never read, never waited on)."""
        path = Path(path).resolve()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except IsADirectoryError:
            raise DataError(f"{path}: is a directory, expected a file") from None
        except OSError as exc:
            raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise DataError(f"{path}: is {kind}, expected a file")
        with os.fdopen(fd, "rb") as handle:
            stamp = [info.st_size, info.st_mtime_ns]
            known = self.memo.get(str(path))
            if known is not None and known[:2] == stamp:
                return known[2]
            os.set_blocking(fd, True)
            sha = hashlib.sha256()
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        self.memo[str(path)] = [*stamp, sha.hexdigest()]
        self._dirty = True
        return sha.hexdigest()

    def flush(self) -> None:
        """Write the memo (and the module index) back (atomically), if it changed."""
        self.modules.flush()
        if self.memo_file is not None and self._dirty:
            from pipeline.files import write_json

            write_json(self.memo_file, self.memo)
            self._dirty = False


def input_hashes(stage: StageSpec, context: StageContext,
                 hasher: FileHasher | None = None) -> dict[str, str]:
    """The files ``stage`` reads (in its order), each with its sha256."""
    hasher = hasher or FileHasher()
    return {str(path): hasher.hash(path) for path in stage.input_files(context)}


def stage_key_parts(stage: StageSpec, previous_key: str | None, context: StageContext,
                    hasher: FileHasher | None = None,
                    inputs: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything a stage's key is made of, by name (``plan`` compares these to explain a miss).

    ``inputs`` is ``input_hashes(stage, context, hasher)`` when the caller has it already."""
    if inputs is None:
        inputs = input_hashes(stage, context, hasher)
    module = type(stage).__module__
    code_modules = [module, *stage.code_modules()]
    parts = {
        "kind": stage.kind,
        "spec": spec_fields(stage),
        "code": {
            "distribution": distribution_of(module),
            "modules": code_fingerprint(code_modules, hasher.modules if hasher else None),
        },
        "numpy": _numpy_version(),
        "previous": previous_key,
        # The content of the files read, not their paths: a moved dataset is the same data.
        "inputs": list(inputs.values()),
    }
    if stage.uses_seed:
        parts["seed"] = context.seed
    return parts


def stage_key(stage: StageSpec, previous_key: str | None, context: StageContext,
              hasher: FileHasher | None = None) -> str:
    """The stage's key: sha256 hex of its key parts."""
    return digest(stage_key_parts(stage, previous_key, context, hasher))
