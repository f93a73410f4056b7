"""``nnpipe plan``: which stages a run would load from the cache and which it would run, and why.

Nothing runs. Each stage's key comes from the same key chain the runner uses
(``pipeline.engine.chain``); a stage whose key has an entry is "cached". For the first stage that
misses, its key parts are compared with those of the nearest earlier key of that stage recorded
in the cache (the one differing in the fewest parts, the most recent among equals), and the
difference is named: a spec field (from what to what), the code of a module, an input file, the
numpy version, the seed. Every stage after a miss runs too, because its previous key changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.engine.config import LoadedPipeline
from pipeline.engine.addressing import find_stage
from pipeline.engine.chain import StageKey, key_chain
from pipeline.engine.keys import FileHasher


@dataclass
class PlannedStage:
    """One stage of a plan: ``cached`` or ``will run``, and why it will run."""

    index: int
    id: str
    kind: str
    key: str
    status: str
    reason: str = ""
    after: int | None = None  # runs because stages[after], an earlier stage, runs

    def line(self) -> str:
        """``stages[4] mlp_train: will run: spec field epochs changed from 10 to 20``."""
        name = f"stages[{self.index}]"
        if self.id != name:
            name += f" {self.id}"
        if self.after is not None:
            return f"{name}: {self.status} (after stages[{self.after}])"
        reason = f": {self.reason}" if self.reason else ""
        return f"{name}: {self.status}{reason}"


def resolve_stage(pipeline: LoadedPipeline, which: str) -> int:
    """The index of the stage ``--from which`` names (any form ``pipeline.engine.addressing``
    accepts: ``stages[N]``, ``stages.N``, ``N``, an id, a unique kind, ``kind#N``)."""
    return find_stage(which, pipeline.stages, f"--from {which}")


def _short(value: Any) -> str:
    import json

    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _spec_changes(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for name in sorted(set(old) | set(new), key=lambda n: (n not in new, n)):
            where = f"{path}.{name}" if path else name
            if name not in old:
                changes.append(f"spec field {where} added ({_short(new[name])})")
            elif name not in new:
                changes.append(f"spec field {where} removed (was {_short(old[name])})")
            else:
                changes.extend(_spec_changes(old[name], new[name], where))
        return changes
    if old != new:
        return [f"spec field {path or 'spec'} changed from {_short(old)} to {_short(new)}"]
    return []


def _at(items: list, index: int) -> Any:
    return items[index] if index < len(items) else None


def differences(old: StageKey, new: StageKey) -> list[str]:
    """What differs between the key parts of ``old`` (an earlier key of the stage) and ``new``,
    each as a short phrase; empty when only the previous stage's key differs."""
    before, after = old.parts, new.parts
    reasons = []
    if before.get("kind") != after.get("kind"):
        reasons.append(f"kind changed from {before.get('kind')} to {after.get('kind')}")
    else:
        reasons.extend(_spec_changes(before.get("spec", {}), after.get("spec", {})))
    old_code, new_code = before.get("code", {}), after.get("code", {})
    if old_code.get("distribution") != new_code.get("distribution"):
        reasons.append(f"plugin distribution changed from {old_code.get('distribution')} "
                       f"to {new_code.get('distribution')}")
    old_mods, new_mods = old_code.get("modules", {}), new_code.get("modules", {})
    for module in sorted(set(old_mods) | set(new_mods)):
        if old_mods.get(module) != new_mods.get(module):
            reasons.append(f"code of {module} changed")
    for part in ("numpy", "seed"):
        if before.get(part) != after.get(part):
            reasons.append(f"{part} changed from {before.get(part)} to {after.get(part)}")
    old_paths, new_paths = list(old.inputs), list(new.inputs)
    old_hashes, new_hashes = before.get("inputs", []), after.get("inputs", [])
    for i in range(max(len(old_hashes), len(new_hashes))):
        if _at(old_hashes, i) != _at(new_hashes, i):
            reasons.append(f"input file {_at(new_paths, i) or _at(old_paths, i) or '?'} changed")
    return reasons


def explain(old: StageKey | None, new: StageKey) -> str:
    """Why stage ``new`` misses the cache, compared with ``old``, an earlier key of the stage."""
    if old is None:
        return "not in the cache (no earlier run of this stage is recorded)"
    reasons = differences(old, new)
    if not reasons and old.parts.get("previous") != new.parts.get("previous"):
        reasons.append("the result of an earlier stage changed")
    if not reasons:
        reasons.append("cache entry missing (cleared, pruned or damaged)")
    return "; ".join(reasons)


def nearest_earlier(cache, stage: StageKey) -> StageKey | None:
    """The recorded key of the same stage (same pipeline and kind, same name or position) whose
    parts differ least from ``stage``'s, the most recent among equals; None if there is none."""
    same = [r for r in cache.stage_records()
            if r.pipeline == stage.pipeline and r.kind == stage.kind and r.key != stage.key
            and (r.id == stage.id or r.index == stage.index)]

    def distance(record: StageKey) -> tuple[int, bool]:
        return (len(differences(record, stage)),
                record.parts.get("previous") != stage.parts.get("previous"))

    # newest first, so min() keeps the most recent of equally near records
    return min(reversed(same), key=distance, default=None)


def _damage(cache, key: str) -> str | None:
    """Why the entry of ``key`` would not be loaded (a ``StageCache`` checks its record and
    checksum as a run would; a cache without ``verify`` is trusted), or None."""
    verify = getattr(cache, "verify", None)
    problem = verify(key) if verify is not None else None
    return f"cache entry not usable ({problem})" if problem else None


def plan(pipeline: LoadedPipeline, cache, data_dir: Path | None = None,
         hasher: FileHasher | None = None, force_from: int | None = None) -> list[PlannedStage]:
    """What ``nnpipe run`` would do with ``cache`` (a ``StageCache``, or None: everything runs)."""
    from pipeline.engine.wiring import check_wiring

    check_wiring(pipeline)
    planned: list[PlannedStage] = []
    first_miss: int | None = None
    for link in key_chain(pipeline, data_dir, hasher):
        entry = PlannedStage(link.index, link.id, link.kind, link.key, "cached")
        if first_miss is not None:
            entry.status, entry.after = "will run", first_miss
        elif force_from is not None and link.index >= force_from:
            entry.status, entry.reason, first_miss = "will run", "forced by --from", link.index
        elif cache is None:
            entry.status, entry.reason, first_miss = "will run", "cache off", link.index
        elif cache.contains(link.key) and (damage := _damage(cache, link.key)):
            entry.status, entry.reason, first_miss = "will run", damage, link.index
        elif not cache.contains(link.key):
            entry.status, entry.reason = "will run", explain(nearest_earlier(cache, link), link)
            first_miss = link.index
        planned.append(entry)
    return planned
