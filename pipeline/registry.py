"""The plugin registry: entry points found through ``importlib.metadata``.

Finding plugins and loading them are separate steps (as in flake8's finder): ``Registry`` lists
every entry point of the ``nnpipe.*`` groups without importing anything, and imports one only when
it is asked for. The built-ins are registered in nnpipe's own ``pyproject.toml`` and go through
exactly the same path as a third party's. A lookup error lists what exists and the closest name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Iterable

from pipeline.errors import PluginError

#: Short group name -> entry-point group. Third parties register under these.
GROUPS: dict[str, str] = {
    "stages": "nnpipe.stages",
    "activations": "nnpipe.activations",
    "losses": "nnpipe.losses",
    "optimizers": "nnpipe.optimizers",
    "initializers": "nnpipe.initializers",
    "schedules": "nnpipe.schedules",
    "layers": "nnpipe.layers",
    "datasets": "nnpipe.datasets",
    "predictors": "nnpipe.predictors",
    "exporters": "nnpipe.exporters",
}

#: Short group name -> the word for one of its plugins, for messages ("unknown loss 'x'").
SINGULAR: dict[str, str] = {
    "stages": "stage", "activations": "activation", "losses": "loss", "optimizers": "optimizer",
    "initializers": "initializer", "schedules": "schedule", "layers": "layer", "datasets": "dataset",
    "predictors": "predictor", "exporters": "exporter",
}

#: A check run on a loaded object: returns None when it fits the group, else what is wrong.
Checker = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class PluginEntry:
    """One registered plugin, before it is loaded."""

    group: str  # short group name, e.g. "activations"
    name: str  # the name a pipeline file uses, e.g. "relu"
    target: str  # "module:attribute"
    distribution: str  # the distribution that registered it ("?" when unknown)
    version: str
    entry_point: metadata.EntryPoint

    @property
    def origin(self) -> str:
        """``distribution version``, for messages."""
        return f"{self.distribution} {self.version}".strip()


def _entry_of(short_group: str, ep: metadata.EntryPoint,
              origins: dict[int, tuple[str, str]] | None = None) -> PluginEntry:
    """The entry for ``ep``; ``origins`` memoises (name, version) by distribution object, since
    reading a distribution's metadata parses its whole METADATA file (a few ms each time)."""
    dist = getattr(ep, "dist", None)
    origins = {} if origins is None else origins
    if dist is None:
        name, version = "?", ""
    elif id(dist) in origins:
        name, version = origins[id(dist)]
    else:
        meta = dist.metadata  # parsed once, for both fields
        name, version = meta["Name"], meta["Version"]
        origins[id(dist)] = (name, version)
    return PluginEntry(short_group, ep.name, ep.value, name, version, ep)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to ``name`` in spelling, if any is near enough."""
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return found[0] if found else None


def unknown_name_message(what: str, name: str, candidates: Iterable[str]) -> str:
    """``unknown activation 'rlu'; installed: relu, sigmoid, tanh (did you mean 'relu'?)``."""
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
        if entry_points is None:
            found = metadata.entry_points()
            entry_points = [ep for group in GROUPS.values() for ep in found.select(group=group)]
        by_group = {value: key for key, value in GROUPS.items()}
        self._entries: dict[str, dict[str, list[PluginEntry]]] = {key: {} for key in GROUPS}
        origins: dict[int, tuple[str, str]] = {}  # id(distribution) -> (name, version)
        entry_points = list(entry_points)  # keeps each distribution alive while its id is a key
        for ep in entry_points:
            short = by_group.get(ep.group)
            if short is None:
                continue
            self._entries[short].setdefault(ep.name, [])
            entry = _entry_of(short, ep, origins)
            # The same distribution seen twice (for example on two sys.path entries) is one plugin.
            if all(e.distribution != entry.distribution or e.target != entry.target
                   for e in self._entries[short][ep.name]):
                self._entries[short][ep.name].append(entry)
        self._loaded: dict[tuple[str, str], Any] = {}

    def names(self, group: str) -> list[str]:
        """The sorted names registered in ``group`` (short name, e.g. "stages")."""
        return sorted(self._entries[group])

    def entries(self, group: str) -> list[PluginEntry]:
        """Every registration in ``group``, duplicates included, sorted by name."""
        return [e for name in self.names(group) for e in self._entries[group][name]]

    def entry(self, group: str, name: str) -> PluginEntry:
        """The one registration of ``name`` in ``group``.

        Raises:
            PluginError: the name is unknown (listing what exists), or two distributions
                register it (naming both).
        """
        found = self._entries[group].get(name)
        if not found:
            raise PluginError(unknown_name_message(SINGULAR[group], name, self.names(group)))
        if len(found) > 1:
            origins = " and ".join(f"{e.origin} ({e.target})" for e in found)
            raise PluginError(f"{SINGULAR[group]} {name!r} is registered twice: by {origins}")
        return found[0]

    def load(self, group: str, name: str, check: Checker | None = None) -> Any:
        """Import and return the object registered as ``name`` in ``group``.

        ``check`` verifies the object is of the right kind for the group; any import failure or
        failed check becomes a ``PluginError`` naming the plugin and its distribution.
        """
        key = (group, name)
        if key not in self._loaded:
            entry = self.entry(group, name)
            try:
                value = entry.entry_point.load()
            except Exception as exc:  # a plugin's import may fail in any way
                raise PluginError(
                    f"{SINGULAR[group]} {name!r} from {entry.origin} failed to load "
                    f"({entry.target}): {type(exc).__name__}: {exc}"
                ) from exc
            problem = check(value) if check is not None else None
            if problem:
                raise PluginError(
                    f"{SINGULAR[group]} {name!r} from {entry.origin} ({entry.target}) "
                    f"is not usable: {problem}"
                )
            self._loaded[key] = value
        return self._loaded[key]


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
