"""``run_sweep``: check the options, load every configuration, warm the shared stages, run, rank.

A run that fails (a diverging network, a value the spec refuses) becomes a ``failed`` row with
its message; the others go on. The sweep directory goes through ``pipeline.io.outputs`` (never a
folder nnpipe did not write) and is marked as nnpipe's (``sweep.json``) before the first run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from pipeline.engine.config import load_pipeline
from pipeline.files import write_json, write_text
from pipeline.io.outputs import (SWEEP, SWEEP_FORMAT, check_cache_folder, check_output,
                              protected_places)
from pipeline.sweep import metric as metrics
from pipeline.sweep.backend import engine, execute
from pipeline.sweep.grid import Axis, configurations
from pipeline.sweep.options import check_options, warn as _warn, workers
from pipeline.sweep.paths import default_out
from pipeline.sweep.ranking import seed_sentence, summarise
from pipeline.sweep.results import to_csv, write_best
from pipeline.sweep.shared import shared_counts, warm_shared_stages
from pipeline.sweep.tasks import plan_runs
from pipeline.sweep.worker import Task, run_one


@dataclass
class SweepResult:
    """What a sweep did: one row per configuration (best first), one outcome per run."""

    out: Path
    rows: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    shared: dict[str, Any]
    seconds: float
    best_file: Path | None
    info: dict[str, Any] = field(default_factory=dict)

    def failure(self) -> str | None:
        """Why the sweep as a whole failed (every run stopped before its end, the first error
        said), or None. A run that ended without the metric is no failure of the sweep: it just
        cannot be ranked."""
        if not self.runs or any(r["status"] == "ok" or r.get("completed") for r in self.runs):
            return None
        first = next((r["error"] for r in self.runs if r.get("error")), None)
        return f"no run completed{f'; the first error: {first}' if first else ''}"


def progress_line(outcome: dict, metric: str) -> str:
    """The line printed as a run finishes: index, status, value, seconds, what it set."""
    value = f"{metric} {outcome['metric']:.4f}" if outcome["metric"] is not None else ""
    what = " ".join([*outcome["overrides"], *([f"seed={outcome['seed']}"]
                                              if outcome["seed"] is not None else [])])
    return (f"  run {outcome['index']:>3} {outcome['status']:<6} {value:<24} "
            f"{outcome['seconds']:7.1f}s  {what}"
            + (f"  ({outcome['error']})" if outcome["error"] else ""))


def _run_all(tasks, invalid, pipelines, cache_dir, data_dir, echo, metric, headline):
    """Warm the cache with the shared stages, then run every task; return the outcomes (by run
    index, invalid configurations included) and the shared-stage counts."""
    keys_by_run, shared_keys, warm_reports = warm_shared_stages(pipelines, cache_dir, data_dir)
    shared = shared_counts(shared_keys, warm_reports, keys_by_run, pipelines)
    if shared["stages"]:
        echo(f"shared stages computed before the runs: {', '.join(shared['ids'])}")
    echo(headline)
    for outcome in invalid:
        echo(progress_line(outcome, metric))
    outcomes = execute(run_one, tasks, lambda o: echo(progress_line(o, metric))) if tasks else []
    outcomes = sorted(outcomes + invalid, key=lambda o: o["index"])
    return outcomes, shared_counts(shared_keys, warm_reports, keys_by_run, pipelines, outcomes)


def _write_results(out: Path, file: Path, axes: list[Axis], rows, outcomes, shared,
                   info: dict[str, Any], fixed: tuple[str, ...]) -> Path | None:
    """``sweep.json`` (done), ``sweep.csv`` and, when the best configuration is complete,
    ``best.yaml`` (returned)."""
    best_file = None
    if rows and rows[0]["status"] == "ok":
        best_file = out / "best.yaml"
        write_best(best_file, file, rows[0], info["metric"], fixed)
    write_json(out / "sweep.json", {"format": SWEEP_FORMAT, "status": "done", **info,
                                    "shared": shared, "configurations": rows, "runs": outcomes})
    write_text(out / "sweep.csv", to_csv(rows, info["metric"], axes))
    return best_file


def run_sweep(file: Path, axes: list[Axis], *, seeds: int | None = None, jobs: int | None = None,
              backend: str = "loky", scheduler: str | None = None, out: Path | None = None,
              cache_dir: Path, data_dir: Path | None = None, metric: str | None = None,
              mode: str | None = None, fixed: Iterable[str] = (), threads: int | None = None,
              echo: Callable[[str], None] = lambda line: None,
              warn: Callable[[str], None] = _warn) -> SweepResult:
    """Run the sweep and write ``sweep.csv``, ``sweep.json`` and ``best.yaml`` into ``out``.

    ``fixed`` holds ``--set`` overrides applied to every run before its grid values; ``threads``
    the BLAS threads of each run (default: the cores divided by ``jobs``, at least 1). On this
    machine (no ``scheduler``) ``jobs`` and ``threads`` are capped at the core count. ``metric``
    and ``mode`` default to what the pipeline's stages declare (``pipeline.sweep.metric``).

    Raises:
        UserError: bad options, an unknown override path, dask missing for ``--backend dask``,
            an ``out`` nnpipe may not write (``pipeline.io.outputs``).
    """
    check_options(axes, seeds, jobs, backend, scheduler)
    # a file, an unwritable place: exit 2 now (sweeps and studies share stages through it)
    cache_dir = check_cache_folder(cache_dir, alternative="")
    jobs, threads = workers(jobs, threads, scheduler, warn)
    started = time.perf_counter()
    file, fixed = Path(file).resolve(), tuple(fixed)
    base = load_pipeline(file, fixed)
    metric, mode = metrics.choose(base.stages, metric, mode, warn)
    configs = configurations(axes, seeds)
    seed_list: list[int | None] = list(range(seeds)) if seeds else [None]
    out = check_output(Path(out) if out is not None else default_out(base.spec.name), "--out",
                       SWEEP, protected_places(cache_dir, data_dir), file)
    cache_dir = Path(cache_dir).resolve()
    # Load every configuration first: a bad path stops the sweep before anything runs.
    tasks, invalid, pipelines = plan_runs(
        file, configs, seed_list, out,
        lambda index, number, overrides, seed, run_dir: Task(
            index, number, overrides, seed, str(file), str(run_dir.resolve()), str(cache_dir),
            str(data_dir) if data_dir else None, metric, threads, fixed))
    with engine(backend, jobs, scheduler, threads):
        out.mkdir(parents=True, exist_ok=True)  # only once the sweep is known to be runnable
        # Marks the folder as a sweep directory at once (pipeline.io.outputs): a rerun may replace it.
        write_json(out / "sweep.json", {"format": SWEEP_FORMAT, "status": "running",
                                        "pipeline": str(file)})
        outcomes, shared = _run_all(tasks, invalid, pipelines, cache_dir, data_dir, echo, metric,
                                    f"{len(tasks) + len(invalid)} runs ({len(configs)} "
                                    f"configurations{f' x {seeds} seeds' if seeds else ''}), "
                                    f"backend {backend}, jobs {jobs}, {threads} BLAS thread(s) "
                                    f"per job")
    rows = summarise(configs, outcomes, mode)
    seconds = time.perf_counter() - started
    info = {"pipeline": str(file), "metric": metric, "mode": mode, "backend": backend,
            "scheduler": scheduler, "jobs": jobs, "threads_per_job": threads, "set": list(fixed),
            "grid": {a.path: list(a.values) for a in axes}, "seeds": seeds, "cache_dir":
            str(cache_dir), "seconds": round(seconds, 3),
            "seed_comparison": seed_sentence(rows, seeds)}
    best_file = _write_results(out, file, axes, rows, outcomes, shared, info, fixed)
    return SweepResult(out, rows, outcomes, shared, seconds, best_file, info)
