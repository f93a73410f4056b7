"""The plugin registry: entry points found through ``importlib.metadata``.

Finding plugins and loading them are separate steps (as in flake8's finder): ``Registry`` lists
every entry point of the ``nnpipe.*`` groups without importing anything, and imports one only when
it is asked for. The built-ins are registered in nnpipe's own ``pyproject.toml`` and go through
exactly the same path as a third party's. A lookup error lists what exists and the closest name.

Which groups exist, and what their members must be, is declared by whoever consumes them
(``pipeline.groups``): the framework's own groups, and those a distribution declares under
``nnpipe.groups``. Every load runs the group's type check; ``nnpipe plugins --check`` runs its
full check.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Iterable, Iterator

from pipeline.errors import PluginError, UserError
from pipeline.groups import FRAMEWORK_GROUPS, PREFIX, Checker, PluginGroup

__all__ = ["Checker", "FRAMEWORK_GROUPS", "PluginEntry", "PluginGroup", "Registry", "closest",
           "default_registry", "plugin_entry_points", "set_default_registry",
           "unknown_name_message"]


def _distributions() -> Iterator[metadata.Distribution]:
    """Every installed distribution once, the first on ``sys.path`` winning, as
    ``metadata.entry_points()`` takes them: by the name in the metadata folder's own name
    (``_normalized_name``, which reads no metadata file), so no METADATA is parsed here."""
    seen: set[str] = set()
    for dist in metadata.distributions():
        # what entry_points() dedups by (Python 3.10-3.13); a later Python without this private
        # attribute falls back to the name in METADATA (parsed, but the same deduplication)
        key = getattr(dist, "_normalized_name", None) or dist.metadata["Name"]
        if key not in seen:
            seen.add(key)
            yield dist


def plugin_entry_points() -> list[metadata.EntryPoint]:
    """Every installed entry point of an ``nnpipe.*`` group (nothing is imported), by group.

    Only the entry-point files that name an ``nnpipe.`` group are parsed: the others (every
    installed package's console scripts) are skipped on a text search, which is exact, since a
    group starts with ``nnpipe.`` only under a section line ``[nnpipe.GROUP]``."""
    found = []
    for dist in _distributions():
        text = dist.read_text("entry_points.txt")
        if text and f"[{PREFIX}" in text:
            found += [ep for ep in dist.entry_points if ep.group.startswith(PREFIX)]
    return sorted(found, key=lambda ep: ep.group)  # stable: in distribution and file order


@functools.lru_cache(maxsize=None)
def _name_and_version(dist: metadata.Distribution) -> tuple[str, str]:
    """A distribution's name and version: its METADATA file is parsed (a few ms, and the import
    of ``email.parser``) when a message or a cache key first needs them, once per process."""
    meta = dist.metadata
    return meta["Name"], meta["Version"]


@dataclass(frozen=True)
class PluginEntry:
    """One registered plugin, before it is loaded."""

    group: str  # short group name, e.g. "stages"
    name: str  # the name a pipeline file uses, e.g. "split"
    target: str  # "module:attribute"
    entry_point: metadata.EntryPoint

    @property
    def distribution(self) -> str:
        """The distribution that registered it ("?" when unknown)."""
        dist = getattr(self.entry_point, "dist", None)
        return "?" if dist is None else _name_and_version(dist)[0]

    @property
    def version(self) -> str:
        """That distribution's version ("" when unknown)."""
        dist = getattr(self.entry_point, "dist", None)
        return "" if dist is None else _name_and_version(dist)[1]

    @property
    def origin(self) -> str:
        """``distribution version``, for messages."""
        return f"{self.distribution} {self.version}".strip()


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to ``name`` in spelling, if any is near enough."""
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return found[0] if found else None


def unknown_name_message(what: str, name: str, candidates: Iterable[str]) -> str:
    """``unknown stage 'splt'; installed: evaluate, split (did you mean 'split'?)``."""
    candidates = sorted(candidates)
    hint = closest(name, candidates)
    message = f"unknown {what} {name!r}; installed: {', '.join(candidates) or '(none)'}"
    return message + (f" (did you mean {hint!r}?)" if hint else "")


class Registry:
    """Every plugin of the ``nnpipe.*`` groups, discovered once and loaded on demand.

    Args:
        entry_points: the entry points to consider; by default those of every installed
            distribution. Tests pass real ``EntryPoint`` objects here.
    """

    def __init__(self, entry_points: Iterable[metadata.EntryPoint] | None = None):
        entry_points = plugin_entry_points() if entry_points is None else list(entry_points)
        # group -> name -> registrations
        self._entries: dict[str, dict[str, list[PluginEntry]]] = {key: {} for key in FRAMEWORK_GROUPS}
        for ep in entry_points:
            if not ep.group.startswith(PREFIX):
                continue
            short = ep.group[len(PREFIX):]
            entry = PluginEntry(short, ep.name, ep.value, ep)
            found = self._entries.setdefault(short, {}).setdefault(ep.name, [])
            # The same distribution seen twice (for example on two sys.path entries) is one plugin.
            if all(e.distribution != entry.distribution or e.target != entry.target for e in found):
                found.append(entry)
        self._loaded: dict[tuple[str, str], Any] = {}  # after the group's type check

    def groups(self) -> list[str]:
        """Every group's short name: the framework's, then those declared under ``groups``,
        then groups that have members but no declaration (``group`` says so), ``groups`` last."""
        declared = [name for name in self._entries["groups"] if name not in FRAMEWORK_GROUPS]
        rest = sorted(set(self._entries) - set(FRAMEWORK_GROUPS) - set(declared))
        framework = [name for name in FRAMEWORK_GROUPS if name != "groups"]
        return framework + declared + [name for name in rest if self._entries[name]] + ["groups"]

    def group(self, name: str) -> PluginGroup:
        """The declaration of the group ``name`` (short name, e.g. "stages").

        Raises:
            PluginError: no installed distribution declares it, or its declaration is broken.
        """
        if name in FRAMEWORK_GROUPS:
            return FRAMEWORK_GROUPS[name]
        if name not in self._entries["groups"]:
            raise PluginError(f"no installed distribution declares the plugin group {name!r} "
                              f"(entry point {name!r} in group {PREFIX}groups)")
        declaration = self.load("groups", name)
        if declaration.name != name:
            raise PluginError(f"plugin group {name!r} is declared by a PluginGroup named "
                              f"{declaration.name!r}")
        return declaration

    def _singular(self, group: str) -> str:
        """The word for one member of ``group``, for messages (the short name if undeclared)."""
        try:
            return self.group(group).singular
        except PluginError:
            return f"{group} plugin"

    def names(self, group: str) -> list[str]:
        """The sorted names registered in ``group`` (short name, e.g. "stages")."""
        return sorted(self._entries.get(group, {}))

    def only(self, group: str, option: str) -> str:
        """The name of the one plugin installed in ``group``, for a command whose ``option``
        may be left out (``nnpipe predict --predictor``).

        Raises:
            UserError: none or several are installed, naming them and ``option``.
        """
        names = self.names(group)
        if len(names) != 1:
            raise UserError(f"{option}: choose one of the installed {group} "
                            f"({', '.join(names) or 'none is installed'})")
        return names[0]

    def entries(self, group: str) -> list[PluginEntry]:
        """Every registration in ``group``, duplicates included, sorted by name."""
        return [e for name in self.names(group) for e in self._entries[group][name]]

    def entry(self, group: str, name: str) -> PluginEntry:
        """The one registration of ``name`` in ``group``.

        Raises:
            PluginError: the name is unknown (listing what exists), or two distributions
                register it (naming both).
        """
        found = self._entries.get(group, {}).get(name)
        if not found:
            raise PluginError(unknown_name_message(self._singular(group), name, self.names(group)))
        if len(found) > 1:
            origins = " and ".join(f"{e.origin} ({e.target})" for e in found)
            raise PluginError(f"{self._singular(group)} {name!r} is registered twice: by {origins}")
        return found[0]

    def load(self, group: str, name: str, check: Checker | None = None) -> Any:
        """Import and return the object registered as ``name`` in ``group``.

        The group's own type check runs on the first load (its declaration is loaded for it, if
        it is not the framework's); ``check``, a further test of the caller's, runs on every
        call, so an object loaded once under a lenient check is still tested by a strict one.
        Any import failure or failed check becomes a ``PluginError`` naming the plugin and its
        distribution; so does a member of a group that nobody declares, or whose declaration
        is broken.
        """
        key = (group, name)
        if key not in self._loaded:
            entry = self.entry(group, name)
            type_check = self.group(group).type_check  # undeclared or broken: PluginError
            try:
                value = entry.entry_point.load()
            except Exception as exc:  # a plugin's import may fail in any way
                raise PluginError(
                    f"{self._singular(group)} {name!r} from {entry.origin} failed to load "
                    f"({entry.target}): {type(exc).__name__}: {exc}"
                ) from exc
            self._refuse(entry, type_check(value) if type_check is not None else None)
            self._loaded[key] = value
        value = self._loaded[key]
        if check is not None:
            self._refuse(self.entry(group, name), check(value))
        return value

    def _refuse(self, entry: PluginEntry, problem: str | None) -> None:
        if problem:
            raise PluginError(f"{self._singular(entry.group)} {entry.name!r} from {entry.origin} "
                              f"({entry.target}) is not usable: {problem}")


_default: Registry | None = None


def default_registry() -> Registry:
    """The registry of the installed distributions, discovered on first use."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def set_default_registry(registry: Registry | None) -> None:
    """Replace (or with None, forget) the default registry; for tests and embedding."""
    global _default
    _default = registry
