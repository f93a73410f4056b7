"""Stage addressing: the one set of names a stage is printed under and accepted under.

Every command that names a stage (``--set``, ``--from``, ``sweep --grid``, the stage column of
``plan``, ``runs compare`` and the manifest) goes through here, so nothing prints a name that
another command refuses.

Printed (``stage_names``), one canonical name per stage:
    its ``id`` when it has one; else its ``kind`` when no other stage without an id has that kind
    (and no stage has it as its id); else ``stages[N]``.
Accepted (``find_stage``), for a stage at index N:
    ``stages[N]``, ``stages.N``, ``N`` (a bare index), its id, its kind when it is the only stage
    of that kind (or the only one of that kind without an id), and ``kind#N``, the form ``plan``
    and the manifest printed before (old run directories keep it).

The functions take stages as spec objects or as the raw mappings of a pipeline file (overrides are
applied before validation), reading only ``kind`` and ``id`` from either.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from pipeline.errors import UserError
from pipeline.registry import closest

#: ``stages[3]`` or ``stages.3`` (and the rest of a dotted path after it, if any).
_BY_INDEX = re.compile(r"^stages(?:\[(\d+)\]|\.(\d+))(?:\.(.+))?$")
#: ``normalize#3``: the form printed for a repeated kind before ``stages[N]`` was canonical.
_LEGACY = re.compile(r"^(.+)#(\d+)$")


def format_loc(loc: Sequence[str | int]) -> str:
    """``("stages", 4, "batch_size")`` -> ``stages[4].batch_size``: a path as messages print it
    (and as ``--set`` accepts it)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _field(stage: Any, name: str) -> str | None:
    value = stage.get(name) if isinstance(stage, dict) else getattr(stage, name, None)
    return None if value is None else str(value)


def _kind(stage: Any) -> str | None:
    return _field(stage, "kind")


def stage_names(stages: Sequence[Any]) -> list[str]:
    """The canonical printed name of each stage: id, else unique kind, else ``stages[N]``."""
    # the kinds of the stages without an id: a kind names a stage when one of them has it
    kinds = [_field(s, "kind") for s in stages if _field(s, "id") is None]
    ids = {_field(s, "id") for s in stages} - {None}
    names = []
    for index, stage in enumerate(stages):
        own_id, kind = _field(stage, "id"), _field(stage, "kind")
        if own_id is not None:
            names.append(own_id)
        elif kind is not None and kinds.count(kind) == 1 and kind not in ids:
            names.append(kind)
        else:
            names.append(f"stages[{index}]")
    return names


def valid_names(stages: Sequence[Any]) -> str:
    """``0:idx_reader, 1:stages[1], ...`` for messages: what a stage can be called."""
    return ", ".join(f"{i}:{name}" for i, name in enumerate(stage_names(stages))) or "(none)"


def find_stage(name: str, stages: Sequence[Any], option: str) -> int:
    """The index of the stage ``name`` addresses (any accepted form).

    Raises:
        UserError: naming ``option`` (e.g. ``--from x``), when no stage or several stages answer
            to ``name``; the message lists the valid names.
    """
    name = name.strip()
    match = _BY_INDEX.match(name)
    if match and match.group(3) is None:
        name = match.group(1) or match.group(2)
    if name.isdigit():
        if int(name) < len(stages):
            return int(name)
        raise UserError(f"{option}: there is no stages[{name}] (the pipeline has {len(stages)} "
                        f"stages: {valid_names(stages)})")
    by_id = [i for i, s in enumerate(stages) if _field(s, "id") == name]
    if by_id:
        return by_id[0]
    by_kind = [i for i, s in enumerate(stages) if _field(s, "kind") == name]
    without_id = [i for i in by_kind if _field(stages[i], "id") is None]
    for candidates in (by_kind, without_id):  # the only stage of that kind, or the only one
        if len(candidates) == 1:              # of that kind the file gave no id
            return candidates[0]
    if len(by_kind) > 1:
        raise UserError(f"{option}: {len(by_kind)} stages are of kind {name!r}; name one of them: "
                        f"{', '.join(stage_names(stages)[i] for i in by_kind)}")
    legacy = _LEGACY.match(name)
    if legacy and int(legacy.group(2)) < len(stages) \
            and _field(stages[int(legacy.group(2))], "kind") == legacy.group(1):
        return int(legacy.group(2))
    hint = closest(name, stage_names(stages) + [k for k in map(_kind, stages) if k])
    raise UserError(f"{option}: unknown stage {name!r}; the stages are {valid_names(stages)}"
                    + (f" (did you mean {hint!r}?)" if hint else ""))


def split_stage_path(path: str, stages: Sequence[Any],
                     top_level: Sequence[str], option: str) -> tuple[int | None, list[str]]:
    """Split a dotted override path into (stage index, the field path inside that stage).

    ``stages[1].method``, ``stages.1.method``, ``normalize.method``, ``normalize#1.method`` and
    ``prep.method`` (an id) all address a field of one stage; a path whose first part is one of
    ``top_level`` (or that has one part) is a top-level field and gives ``(None, parts)``.
    """
    match = _BY_INDEX.match(path)
    if match:
        index = find_stage(match.group(1) or match.group(2), stages, option)
        return index, match.group(3).split(".") if match.group(3) else []
    head, _, rest = path.partition(".")
    if not rest or head in top_level:
        return None, path.split(".")
    return find_stage(head, stages, option), rest.split(".")
