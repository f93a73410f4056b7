"""Reading what the user hands us (pipeline files, run directories' JSON) at a bounded cost.

A file named on the command line can be anything: a link to ``/dev/zero``, a FIFO nobody writes
to, a directory, 1 GB of YAML, or 500 bytes of nested aliases that expand to gigabytes ("billion
laughs"). Every reader here answers within seconds and bounded memory:

- ``read_bytes`` opens with ``O_NONBLOCK`` (a FIFO cannot block the open), checks ``S_ISREG`` on
  the opened descriptor (no race between a check and the open) and reads at most ``limit`` + 1
  bytes, so a file over the cap is refused without reading the rest.
- ``load_yaml`` composes with a loader that caps the nesting depth and the number of nodes while
  composing, then counts the nodes and the characters of scalars of the document with every
  alias expanded (memoised by node, so it costs what the file costs, not what it expands to)
  before anything walks it; recursive aliases are refused. Duplicate mapping keys are refused
  naming the key and both lines.
- ``load_json`` refuses duplicate keys (naming the key and its line) and nesting that is too deep.

The caps are module constants (``MAX_FILE_BYTES``, ``MAX_NODES``, ``MAX_EXPANDED_CHARS``,
``MAX_DEPTH``): far above any real pipeline file (the examples are under 2 KB, 100 nodes, depth
5), and low enough that the pure-Python YAML parser reaches them in about a second. Callers that
need more pass ``limit=`` to ``read_bytes``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

from pipeline.errors import UserError

#: Largest pipeline file read (1 MiB; the examples are under 2 KB).
MAX_FILE_BYTES = 1 << 20
#: Largest JSON file of a run directory read (a history of 10,000 epochs is about 2 MiB).
MAX_RUN_FILE_BYTES = 32 << 20
#: Most nodes a YAML document may hold once every alias is expanded.
MAX_NODES = 50_000
#: Most characters of scalar values a YAML document may hold once every alias is expanded (an
#: alias repeats its anchor's text wherever the document is serialised, e.g. into a cache key).
MAX_EXPANDED_CHARS = 4 << 20
#: Deepest nesting of mappings and lists in a YAML or JSON document.
MAX_DEPTH = 100


class MissingFile(UserError):
    """The file to read does not exist (callers for which that is normal catch this one)."""


def read_bytes(path: Path | str, what: str = "file", limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``; a UserError naming it for anything else.

    Refused without blocking or reading on: a missing file, a directory, a FIFO, a socket, a
    device (``/dev/zero``), a link to any of those, and a file larger than ``limit`` bytes.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise MissingFile(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a {what}") from None
    except OSError as exc:
        _refuse_special(path, what)  # a socket cannot even be opened (ENXIO): say what it is
        raise UserError(f"{path}: cannot open the {what}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UserError(f"{path}: is a directory, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{path}: is {_file_type(info.st_mode)}, not a regular file; "
                            f"a {what} must be a regular file")
        if info.st_size > limit:
            raise UserError(f"{path}: is {info.st_size} bytes; a {what} may be at most "
                            f"{limit} bytes")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=True) as handle:
            fd = -1
            data = handle.read(limit + 1)  # a file growing while read is still capped
    except OSError as exc:
        raise UserError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > limit:
        raise UserError(f"{path}: is more than {limit} bytes; a {what} may be at most "
                        f"{limit} bytes")
    return data


def _refuse_special(path: Path, what: str) -> None:
    """Raise the 'not a regular file' error if ``path`` is a FIFO, socket or device."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise UserError(f"{path}: is {_file_type(mode)}, not a regular file; "
                        f"a {what} must be a regular file")


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def read_text(path: Path | str, what: str = "file", limit: int = MAX_FILE_BYTES) -> str:
    """``read_bytes`` decoded as UTF-8; undecodable bytes are a UserError naming the file."""
    data = read_bytes(path, what, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


# --------------------------------------------------------------------------------------------
# YAML


class DocumentRefused(yaml.YAMLError):
    """A YAML document over a cap, with a duplicate key or a value that cannot be built; carries
    the mark of where it was found, like PyYAML's errors."""

    def __init__(self, problem: str, mark=None):
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses, while composing, nesting deeper than ``MAX_DEPTH`` (before
    Python's recursion limit is reached) and more than ``MAX_NODES`` nodes, and duplicate mapping
    keys while constructing."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._composed = 0  # nodes and aliases composed so far: stops a huge document early

    def compose_node(self, parent, index):
        self._depth += 1
        self._composed += 1
        try:
            if self._depth > MAX_DEPTH:
                raise DocumentRefused(f"nested more than {MAX_DEPTH} levels deep",
                                       self.peek_event().start_mark)
            if self._composed > MAX_NODES:
                raise DocumentRefused(f"holds more than {MAX_NODES} values",
                                       self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            # e.g. an int of 5,000 digits, a date of month 13: not a traceback
            problem = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise DocumentRefused(f"cannot read the value: {problem}", node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}  # key -> the line it was first given on
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<' merges: explicit keys may override merged ones
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: SafeConstructor reports it
            if first is not None:
                raise DocumentRefused(f"duplicate key {key!r} (first given on line {first})",
                                       key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(nodes, characters of scalars) ``root`` holds with every alias expanded, computed once per
    distinct node (iteratively: no recursion limit). A node that contains itself is a
    DocumentRefused."""
    sizes: dict[int, tuple[int, int]] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done:
            open_nodes.discard(id(node))
            own = len(node.value) if isinstance(node, yaml.ScalarNode) else 0
            sizes[id(node)] = (1 + sum(sizes[id(c)][0] for c in children),
                               own + sum(sizes[id(c)][1] for c in children))
            continue
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise DocumentRefused("an alias refers to a node that contains it",
                                       child.start_mark)
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document within the caps; return it and its composed node (for lines).

    Raises:
        UserError: ``source:line:column: YAML syntax error: ...`` for bad syntax, and
            ``source:line:column: ...`` for a document over a cap or a duplicate key.
    """
    loader = None
    try:
        loader = BoundedLoader(text)  # reads the first characters: may refuse them already
        node = loader.get_single_node()
        if node is None:
            return None, None
        nodes, characters = expanded_size(node)
        if nodes > MAX_NODES:
            raise DocumentRefused(f"expands to more than {MAX_NODES} values (aliases included)",
                                   node.start_mark)
        if characters > MAX_EXPANDED_CHARS:
            raise DocumentRefused(f"expands to more than {MAX_EXPANDED_CHARS} characters of "
                                   "values (aliases included)", node.start_mark)
        return loader.construct_document(node), node
    except DocumentRefused as exc:
        raise UserError(f"{source}{_where(exc.problem_mark)}: {exc.problem}") from None
    except RecursionError:
        raise UserError(f"{source}: YAML nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{source}{_where(mark)}: YAML syntax error: {problem}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _where(mark) -> str:
    return f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""


# --------------------------------------------------------------------------------------------
# JSON


class _Duplicate(ValueError):
    def __init__(self, key: str, position: int):
        super().__init__(key)
        self.key, self.position = key, position


def _strict_decoder(text: str) -> json.JSONDecoder:
    """A JSON decoder that raises ``_Duplicate`` at the second occurrence of a key in an object
    (the pure-Python scanner, so each object's span in ``text`` is known)."""
    decoder = json.JSONDecoder()
    spans: list[tuple[int, int]] = []  # every object parsed so far, (start, end) in text

    def parse_object(s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo=None):
        start = s_and_end[1]
        pairs, end = json.decoder.JSONObject(s_and_end, strict, scan_once, None, list, memo)
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            key = next(k for i, k in enumerate(keys) if k in keys[:i])
            inner = [span for span in spans if start <= span[0] and span[1] <= end]
            found = [m.start() for m in re.finditer(re.escape(json.dumps(key)) + r"\s*:",
                                                    text[start:end])]
            found = [start + p for p in found if not any(a <= start + p < b for a, b in inner)]
            raise _Duplicate(key, found[1] if len(found) > 1 else start)
        spans.append((start, end))
        return dict(pairs), end

    decoder.parse_object = parse_object
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    return decoder


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _Duplicate(next(k for i, k in enumerate(keys) if k in keys[:i]), -1)
    return dict(pairs)


def load_json(text: str, source: str) -> Any:
    """Parse JSON, refusing duplicate keys and nesting deeper than Python can follow.

    The C decoder parses; only when it finds a duplicate key does the slower pure-Python one run
    again to find the key's line.

    Raises:
        UserError: ``source:line: JSON syntax error: ...``, ``source:line: duplicate key 'x'``.
    """
    with _value_errors(source, "JSON"):
        try:
            try:
                return json.loads(text, object_pairs_hook=_refuse_duplicates)
            except _Duplicate:
                return _strict_decoder(text).decode(text)
        except _Duplicate as exc:
            line = text.count("\n", 0, max(exc.position, 0)) + 1
            raise UserError(f"{source}:{line}: duplicate key {exc.key!r}") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{source}:{exc.lineno}: JSON syntax error: {exc.msg}") from None


def load_toml(text: str, source: str) -> Any:
    """Parse TOML (which refuses duplicate keys itself); every refusal is a one-line UserError."""
    if sys.version_info >= (3, 11):  # imported here: a YAML pipeline does not pay for it
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    with _value_errors(source, "TOML"):
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{source}: TOML syntax error: {exc}") from None


@contextmanager
def _value_errors(source: str, language: str) -> Iterator[None]:
    """Nesting deeper than Python follows, and values Python will not build (an int of more
    than 4,300 digits), as one-line UserErrors."""
    try:
        yield
    except RecursionError:
        raise UserError(f"{source}: {language} nested too deeply") from None
    except ValueError as exc:
        raise UserError(f"{source}: cannot read a value: {str(exc)[:120]}") from None


def read_json(path: Path | str, what: str = "JSON file", limit: int = MAX_FILE_BYTES) -> Any:
    """``load_json`` of a regular file of at most ``limit`` bytes."""
    return load_json(read_text(path, what, limit), str(path))



def load_json_file(path: Path | str, limit: int = MAX_RUN_FILE_BYTES) -> Any:
    """``json.loads(path.read_text())`` within the caps above, raising what that raises: a
    ``FileNotFoundError`` when ``path`` is missing, a one-line ``ValueError`` (naming the file)
    for anything else it refuses (a FIFO or device, over ``limit``, duplicate keys, bad JSON).
    A drop-in for readers of files nnpipe wrote that catch ``(OSError, ValueError)``."""
    try:
        return read_json(path, "JSON file", limit)
    except MissingFile:
        raise FileNotFoundError(2, "No such file or directory", str(path)) from None
    except UserError as exc:
        raise ValueError(str(exc)) from None
