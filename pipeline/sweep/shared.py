"""Stages every run has in common, computed once before the runs, and how often they ran.

Before fanning out, each run's stage keys are computed with the key chain the runner uses
(``pipeline.engine.chain``). Keys chain, so runs sharing a stage's key share every stage before
it: each distinct longest shared prefix of stages is run once here, in the parent, into the
stage cache, and every worker then loads it from there.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.engine.config import LoadedPipeline
from pipeline.engine.chain import key_chain
from pipeline.engine.keys import FileHasher


def stage_keys(pipeline: LoadedPipeline, data_dir: Path | None, hasher: FileHasher) -> list[str]:
    """The key of every stage of ``pipeline``, from the key chain the runner uses."""
    return [link.key for link in key_chain(pipeline, data_dir, hasher)]


def shared_prefixes(keys_by_run: dict[int, list[str]]) -> dict[str, tuple[int, int]]:
    """The stage prefixes more than one run shares: ``{last key: (a run holding it, length)}``,
    one entry per distinct longest shared prefix (keys chain, so sharing a stage's key means
    sharing every stage before it)."""
    counts = Counter(key for keys in keys_by_run.values() for key in keys)
    prefixes: dict[str, tuple[int, int]] = {}
    for run, keys in keys_by_run.items():
        length = 0
        while length < len(keys) and counts[keys[length]] > 1:
            length += 1
        if length:
            prefixes.setdefault(keys[length - 1], (run, length))
    return prefixes


def prefix_pipeline(pipeline: LoadedPipeline, length: int) -> LoadedPipeline:
    """The pipeline cut after its first ``length`` stages (same name, seed, keys)."""
    spec = pipeline.spec.model_copy(update={"stages": pipeline.spec.stages[:length]})
    return LoadedPipeline(spec, pipeline.path, pipeline.overrides)


def warm_shared_stages(pipelines: dict[int, LoadedPipeline], cache_dir: Path,
                       data_dir: Path | None):
    """Compute every run's stage keys; run each prefix of stages more than one run shares once,
    here, into the cache. Return the keys by run, the shared keys and the warm-up's reports."""
    from pipeline.engine.cache import StageCache
    from pipeline.engine.runner import Runner

    hasher = FileHasher(cache_dir / "file-hashes.json")
    keys_by_run = {i: stage_keys(p, data_dir, hasher) for i, p in pipelines.items()}
    hasher.flush()
    counts = Counter(k for keys in keys_by_run.values() for k in keys)
    shared_keys = {key for key, n in counts.items() if n > 1}
    reports = []
    runner = Runner(data_dir=data_dir, cache=StageCache(cache_dir), state_dir=cache_dir)
    for run, length in shared_prefixes(keys_by_run).values():
        reports.extend(runner.run(prefix_pipeline(pipelines[run], length), write=False).stages)
    return keys_by_run, shared_keys, reports


def shared_ids(shared_keys: set[str], keys_by_run, pipelines) -> list[str]:
    """The names of the shared stages, in pipeline order, each once."""
    ids: list[str] = []
    for run, keys in keys_by_run.items():
        for stage_id, key in zip(pipelines[run].stage_ids(), keys):
            if key in shared_keys and stage_id not in ids:
                ids.append(stage_id)
    return ids


def shared_counts(shared_keys: set[str], warm_reports, keys_by_run, pipelines,
                  outcomes: list[dict] | None = None) -> dict[str, Any]:
    """How often the shared stages ran and were loaded from the cache, parent and runs together."""
    ran: Counter = Counter()
    cached: Counter = Counter()
    for report in warm_reports:  # the parent's warm-up: only what it computed counts
        if report.status == "ran":
            ran[report.key] += 1
    runs_cached = runs_reported = 0
    for outcome in outcomes or []:
        hits = [s for s in outcome["stages"] if s["key"] in shared_keys]
        for stage in hits:
            (ran if stage["status"] == "ran" else cached)[stage["key"]] += 1
        runs_reported += bool(hits)
        if hits and all(s["status"] == "cached" for s in hits):
            runs_cached += 1
    return {"stages": len(shared_keys), "ids": shared_ids(shared_keys, keys_by_run, pipelines),
            "ran": sum(ran.values()), "ran_per_stage_max": max(ran.values(), default=0),
            "cached": sum(cached.values()), "runs_loading_all_shared_from_cache": runs_cached,
            "runs_reporting_shared": runs_reported}


def shared_line(shared: dict[str, Any]) -> str:
    """``shared stages (reader, split): ran once, loaded from the cache in 4 of 4 runs``.

    Runs that failed before the runner could report (a diverged trainer) are not counted."""
    if not shared["stages"]:
        return "shared stages: none (every run differs from its first stage on)"
    if shared["ran"] == 0:
        ran = "ran 0 times (already in the cache)"
    elif shared["ran_per_stage_max"] <= 1 and shared["ran"] == shared["stages"]:
        ran = "ran once" + ("" if shared["stages"] == 1
                            else f" each ({shared['stages']} stage results)")
    else:
        ran = f"ran {shared['ran']} times for {shared['stages']} stage results"
    return (f"shared stages ({', '.join(shared['ids'])}): {ran}, loaded from the cache in "
            f"{shared['runs_loading_all_shared_from_cache']} of "
            f"{shared['runs_reporting_shared']} completed runs")
