"""One run of a sweep (or one seed of a tune trial), executed in a worker process.

A ``Task`` is plain data, so it pickles to any worker (a loky process, a Dask worker on another
machine). ``run_one`` never raises for a failed run: the failure is the outcome.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.engine.config import Override, load_pipeline
from pipeline.errors import NnpipeError, Stopped
from pipeline.sweep.metric import read_metric


@dataclass
class Task:
    """Everything a worker needs to do one run; plain data, so it pickles to any worker."""

    index: int
    config: int
    overrides: tuple[str, ...]
    seed: int | None
    pipeline_file: str
    run_dir: str
    cache_dir: str
    data_dir: str | None
    metric: str
    threads: int
    fixed: tuple[str, ...] = ()
    #: The option the configuration's values came from, named in any message about them.
    option: str = "--grid"

    def all_overrides(self) -> list[Override]:
        """The ``--set`` overrides of every run, then this run's configuration, then its seed,
        each with the option the user gave it with."""
        seed = [f"seed={self.seed}"] if self.seed is not None else []
        return [*(Override.parse(text) for text in self.fixed),
                *(Override.parse(text, self.option) for text in self.overrides),
                *(Override.parse(text, "--seeds") for text in seed)]


def _outcome(task: Task) -> dict[str, Any]:
    """A run's outcome before it ran: ``ok`` until something says otherwise."""
    return {"index": task.index, "config": task.config, "overrides": list(task.overrides),
            "seed": task.seed, "run_dir": task.run_dir, "status": "ok", "metric": None,
            "error": None, "stages": [], "completed": False}


def _execute(task: Task, monitor, outcome: dict[str, Any]) -> None:
    """Run the task's pipeline into its run directory; record its stages and metric."""
    from threadpoolctl import threadpool_limits

    from pipeline.engine.cache import StageCache
    from pipeline.engine.runner import Runner

    with threadpool_limits(limits=task.threads):
        pipeline = load_pipeline(task.pipeline_file, task.all_overrides())
        runner = Runner(data_dir=Path(task.data_dir) if task.data_dir else None,
                        cache=StageCache(task.cache_dir), state_dir=Path(task.cache_dir),
                        monitor=monitor)
        result = runner.run(pipeline, out=Path(task.run_dir))
    outcome["stages"] = [dict(report.__dict__) for report in result.stages]
    outcome["completed"] = True  # it ran to the end, whether or not it left the metric
    outcome["metric"] = read_metric(Path(task.run_dir), task.metric)
    if outcome["metric"] is None:
        outcome.update(status="failed", error=f"the run produced no {task.metric!r} "
                                              f"(in history.json or metrics.json)")


def run_one(task: Task, monitor=None) -> dict[str, Any]:
    """Run one configuration; return its outcome as plain data. Never raises for a failed run:
    the failure is the outcome (``status: failed`` with the message). ``monitor`` is the
    Runner's (``nnpipe tune`` prunes through it); a run it stops has ``status: stopped``."""
    started = time.perf_counter()
    outcome = _outcome(task)
    try:
        _execute(task, monitor, outcome)
    except Stopped as exc:
        outcome.update(status="stopped", error=str(exc))
    except NnpipeError as exc:
        outcome.update(status="failed", error=" / ".join(str(exc).splitlines()) or
                       type(exc).__name__)
    except Exception as exc:  # a bug in a plugin fails its run, not the sweep
        outcome.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    outcome["seconds"] = round(time.perf_counter() - started, 3)
    return outcome
