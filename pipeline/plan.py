"""``nnpipe plan``: which stages a run would load from the cache and which it would run, and why.

Nothing runs. Each stage's key is computed exactly as the runner computes it; a stage whose key has
an entry is "cached". For the first stage that misses, its key parts are compared with those of
the key it had in the last run of the same pipeline (the cache's "last key" pointer), and the
difference is named: a spec field (from what to what), the code of a module, an input file, the
numpy version, the seed. Every stage after a miss runs too, because its previous key changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import LoadedPipeline
from pipeline.errors import UserError
from pipeline.keys import FileHasher, digest, input_hashes, stage_key_parts
from pipeline.spec import StageContext


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
        if self.after is not None:
            return f"stages[{self.index}] {self.id}: {self.status} (after stages[{self.after}])"
        reason = f": {self.reason}" if self.reason else ""
        return f"stages[{self.index}] {self.id}: {self.status}{reason}"


def resolve_stage(pipeline: LoadedPipeline, which: str) -> int:
    """The index of the stage named by ``which``: an id, a kind (when unique) or an index."""
    ids = pipeline.stage_ids()
    stages = pipeline.stages
    if which in ids:
        return ids.index(which)
    kinds = [i for i, s in enumerate(stages) if s.kind == which]
    if len(kinds) == 1:
        return kinds[0]
    text = which.removeprefix("stages[").removesuffix("]").removeprefix("stages.")
    if text.isdigit() and int(text) < len(stages):
        return int(text)
    if len(kinds) > 1:
        raise UserError(f"--from {which}: {len(kinds)} stages are of kind {which!r}; "
                        f"name one by id or index ({', '.join(ids[i] for i in kinds)})")
    raise UserError(f"--from {which}: no such stage; the stages are "
                    f"{', '.join(f'{i}:{name}' for i, name in enumerate(ids))}")


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


def explain(old: dict[str, Any] | None, new: dict[str, Any], input_paths: list[str],
            old_paths: list[str] | None = None) -> str:
    """Why key parts ``new`` differ from ``old`` (the parts of the last run's key)."""
    if old is None:
        return "not in the cache (no earlier run of this stage is recorded)"
    reasons = []
    if old.get("kind") != new.get("kind"):
        reasons.append(f"kind changed from {old.get('kind')} to {new.get('kind')}")
    else:
        reasons.extend(_spec_changes(old.get("spec", {}), new.get("spec", {})))
    old_code, new_code = old.get("code", {}), new.get("code", {})
    if old_code.get("distribution") != new_code.get("distribution"):
        reasons.append(f"plugin distribution changed from {old_code.get('distribution')} "
                       f"to {new_code.get('distribution')}")
    old_mods, new_mods = old_code.get("modules", {}), new_code.get("modules", {})
    for module in sorted(set(old_mods) | set(new_mods)):
        if old_mods.get(module) != new_mods.get(module):
            reasons.append(f"code of {module} changed")
    if old.get("numpy") != new.get("numpy"):
        reasons.append(f"numpy changed from {old.get('numpy')} to {new.get('numpy')}")
    if old.get("seed") != new.get("seed"):
        reasons.append(f"seed changed from {old.get('seed')} to {new.get('seed')}")
    old_inputs, new_inputs = old.get("inputs", []), new.get("inputs", [])
    for i in range(max(len(old_inputs), len(new_inputs))):
        before = old_inputs[i] if i < len(old_inputs) else None
        after = new_inputs[i] if i < len(new_inputs) else None
        if before != after:
            name = input_paths[i] if i < len(input_paths) else (old_paths or ["?"] * (i + 1))[i]
            reasons.append(f"input file {name} changed")
    if not reasons and old.get("previous") != new.get("previous"):
        reasons.append("the result of an earlier stage changed")
    if not reasons:
        reasons.append("cache entry missing (cleared, pruned or damaged)")
    return "; ".join(reasons)


def _damage(cache, key: str) -> str | None:
    """Why the entry of ``key`` would not be loaded (a ``StageCache`` checks its record and
    checksum as a run would; a cache without ``verify`` is trusted), or None."""
    verify = getattr(cache, "verify", None)
    problem = verify(key) if verify is not None else None
    return f"cache entry not usable ({problem})" if problem else None


def plan(pipeline: LoadedPipeline, cache, data_dir: Path | None = None,
         hasher: FileHasher | None = None, force_from: int | None = None) -> list[PlannedStage]:
    """What ``nnpipe run`` would do with ``cache`` (a ``StageCache``, or None: everything runs)."""
    from pipeline.runner import check_wiring

    check_wiring(pipeline)
    hasher = hasher or FileHasher()
    planned: list[PlannedStage] = []
    previous_key = None
    first_miss: int | None = None
    for index, (stage, stage_id) in enumerate(zip(pipeline.stages, pipeline.stage_ids())):
        context = StageContext(seed=pipeline.spec.seed, data_dir=data_dir, stage_index=index)
        inputs = input_hashes(stage, context, hasher)  # path -> sha256
        parts = stage_key_parts(stage, previous_key, context, inputs=inputs)
        key = digest(parts)
        entry = PlannedStage(index, stage_id, stage.kind, key, "cached")
        if first_miss is not None:
            entry.status, entry.after = "will run", first_miss
        elif force_from is not None and index >= force_from:
            entry.status, entry.reason, first_miss = "will run", "forced by --from", index
        elif cache is None:
            entry.status, entry.reason, first_miss = "will run", "cache off", index
        elif cache.contains(key) and (damage := _damage(cache, key)):
            entry.status, entry.reason, first_miss = "will run", damage, index
        elif not cache.contains(key):
            last = cache.last_key(pipeline.spec.name, stage_id)
            record = cache.record(last) if last else None
            entry.status = "will run"
            entry.reason = explain(record.get("parts") if record else None, parts, list(inputs),
                                   record.get("input_paths") if record else None)
            first_miss = index
        planned.append(entry)
        previous_key = key
    return planned
