"""Plugin groups: how one is declared, and the groups the framework itself consumes.

A group is declared by the code that consumes its members, so its contract is written once, next
to that code. The framework declares only the groups it uses (``FRAMEWORK_GROUPS``); a plugin
distribution declares its own groups as entry points of the ``nnpipe.groups`` group, each naming
a ``PluginGroup`` (``pipeline.registry`` finds them without importing anything first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

#: A check run on a loaded object: returns None when it fits the group, else what is wrong.
Checker = Callable[[Any], "str | None"]

#: Every plugin group's entry-point group is this prefix and the group's short name.
PREFIX = "nnpipe."


@dataclass(frozen=True)
class PluginGroup:
    """What the members of one plugin group are, and how they are checked.

    Attributes:
        name: the short name, e.g. "stages"; members register under ``nnpipe.<name>``.
        singular: the word for one member, for messages ("unknown stage 'x'").
        contract: one line saying what a member is (for the docs and messages).
        type_check: a cheap test of a loaded object's kind, run on every load: None if it fits,
            else what is wrong.
        check: the full check ``nnpipe plugins --check`` runs on a loaded member; it raises
            (``pipeline.testing.PluginCheckError``) when the member breaks its contract. None:
            the group has none, and members that load are listed as ``LOADED``.
    """

    name: str
    singular: str
    contract: str = ""
    type_check: Checker | None = None
    check: Callable[[Any], Any] | None = None

    @property
    def entry_point_group(self) -> str:
        """The entry-point group its members register under, e.g. ``nnpipe.stages``."""
        return PREFIX + self.name


def _stage_type(value: Any) -> str | None:
    from pipeline.spec import stage_class_problem

    return stage_class_problem(value)


def _check_stage(value: Any) -> None:
    from pipeline.testing import check_stage

    check_stage(value)


def _dataset_type(value: Any) -> str | None:
    """A dataset source lists its files per split and finds (or fetches) their folder."""
    missing = [m for m in ("locate", "candidates") if not callable(getattr(value, m, None))]
    if missing or not isinstance(getattr(value, "files", None), Mapping):
        return (f"expected a dataset source with .files (a mapping), .locate() and "
                f".candidates(), got {type(value).__name__}")
    return None


def _check_dataset(value: Any) -> None:
    from pipeline.testing import check_dataset

    check_dataset(value)


def _function(what: str) -> Checker:
    def check(value: Any) -> str | None:
        return None if callable(value) else f"expected {what}, got {type(value).__name__}"

    return check


def _group_type(value: Any) -> str | None:
    if not isinstance(value, PluginGroup):
        return f"expected a pipeline.registry.PluginGroup, got {type(value).__name__}"
    if value.name in FRAMEWORK_GROUPS:
        return f"the group {value.name!r} is the framework's own and cannot be declared again"
    return None


#: The groups the framework consumes itself, in the order ``nnpipe plugins`` lists them.
FRAMEWORK_GROUPS: dict[str, PluginGroup] = {group.name: group for group in (
    PluginGroup("stages", "stage", "a pipeline.spec.StageSpec subclass", _stage_type,
                _check_stage),
    PluginGroup("datasets", "dataset", "a dataset source (files per split, locate, candidates)",
                _dataset_type, _check_dataset),
    PluginGroup("predictors", "predictor",
                "a function (run_dir, input, top, labels) -> a result with lines() and names",
                _function("a predictor function")),
    PluginGroup("exporters", "exporter", "a function (run_dir, out, ...) -> the file written",
                _function("an exporter function")),
    PluginGroup("groups", "plugin group", "a pipeline.registry.PluginGroup", _group_type),
)}
