"""``--set PATH=VALUE`` applied to the raw document of a pipeline file, before validation.

The stage part of a path is resolved by ``pipeline.engine.addressing`` (every name the tool
prints is accepted); the rest walks into the stage's mappings and lists. A path that would walk
into a scalar (``--set stages.0.method.x=1`` where ``method`` is a string), replace a stage with
a scalar (``--set stages.0=5``) or index a list out of range is a UserError naming the override,
never a traceback. A field not written in the file yet is created, so validation can then name it.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, Union

from pipeline.engine.addressing import format_loc, split_stage_path
from pipeline.errors import UserError

#: A path into the raw pipeline document, e.g. ("stages", 4, "batch_size").
Loc = tuple[Union[str, int], ...]


class OverrideLike(Protocol):
    path: str
    value: Any
    text: str
    option: str  # what the user typed it with: --set, --grid, --param


def _describe(loc: Loc) -> str:
    return format_loc(loc) or "the document"


def _step(container: Any, part: str, done: Loc, option: str) -> Union[str, int]:
    """``part`` as a key of ``container`` (an int index for a list)."""
    if isinstance(container, list):
        if not part.isdigit() or int(part) >= len(container):
            raise UserError(f"{option}: {_describe(done)} is a list of {len(container)}; "
                            f"{part!r} is not one of its indices")
        return int(part)
    if not isinstance(container, dict):
        raise UserError(f"{option}: {_describe(done)} is {container!r}, not a mapping; "
                        f"there is no field {part!r} inside it")
    return part


def assign(document: dict, parts: list[str], value: Any, option: str,
           start: Loc = ()) -> Loc:
    """Set ``document`` at ``start + parts`` to ``value``; return the location set."""
    target: Any = document
    loc: Loc = ()
    for part in start:
        target, loc = target[part], loc + (part,)
    for position, part in enumerate(parts):
        key = _step(target, part, loc, option)
        loc = loc + (key,)
        if position == len(parts) - 1:
            target[key] = value
        else:
            if isinstance(target, dict) and target.get(key) is None:
                target[key] = {}  # a nested field not written in the file yet
            target = target[key]
    return loc


def apply_overrides(document: dict, overrides: Iterable[OverrideLike]) -> list[tuple[Loc, str]]:
    """Apply overrides to the raw document in place; return the path each override set, with
    the override as the user typed it (``--set PATH=VALUE``) for messages.

    ``mlp_train.epochs=20`` addresses a stage by id or kind, ``stages.4.epochs=20`` and
    ``stages[4].epochs=20`` by position, ``seed=1`` a top-level field. A field that does not
    exist is caught by validation, which then names the override.
    """
    touched = []
    for override in overrides:
        option = f"{override.option} {override.text}"
        stages = document.get("stages")
        stages = stages if isinstance(stages, list) else []
        index, parts = split_stage_path(override.path, stages, [k for k in document
                                                                if k != "stages"], option)
        if index is None:
            loc = assign(document, parts, override.value, option)
        elif not parts:
            if not isinstance(override.value, dict):
                raise UserError(f"{option}: replaces stages[{index}] with {override.value!r}; "
                                f"a stage is a mapping such as {{kind: ..., ...}}")
            stages[index] = override.value
            loc = ("stages", index)
        else:
            loc = assign(document, parts, override.value, option, ("stages", index))
        touched.append((loc, option))
    return touched
