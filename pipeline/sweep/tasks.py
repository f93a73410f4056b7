"""The runs of a sweep: every (configuration, seed) loaded before anything runs.

A configuration whose values the spec refuses becomes a ``failed`` outcome with the problem, and
the others go on; a value naming no field at all is the user's mistake and stops the sweep. The
messages name ``--grid`` because each override carries the option it came from
(``pipeline.engine.config.Override``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pipeline.engine.config import LoadedPipeline, load_pipeline
from pipeline.errors import ConfigError, UserError
from pipeline.sweep.paths import run_dir
from pipeline.sweep.worker import Task


def load_config(file: Path, task: Task) -> tuple[LoadedPipeline | None, str | None]:
    """Load one run's pipeline. A field that does not exist is the user's mistake (UserError,
    as is an override naming no stage); a value the spec refuses only fails that run (returns
    its message)."""
    try:
        return load_pipeline(file, task.all_overrides()), None
    except ConfigError as exc:
        unknown = [p for p in exc.problems if "unknown field" in p]
        if unknown:
            raise UserError(unknown[0]) from None
        return None, " / ".join(exc.problems)


def invalid_outcome(task: Task, error: str) -> dict[str, Any]:
    """The outcome of a run whose pipeline does not validate: failed, without running."""
    return {"index": task.index, "config": task.config, "overrides": list(task.overrides),
            "seed": task.seed, "run_dir": None, "status": "failed", "metric": None,
            "error": f"invalid: {error}", "stages": [], "seconds": 0.0, "completed": False}


def plan_runs(file: Path, configs: list[tuple[str, ...]], seed_list: list[int | None], out: Path,
              make_task: Callable[..., Task]):
    """A task per (configuration, seed) whose pipeline validates, a ``failed`` outcome per one
    whose values the spec refuses, and the loaded pipelines by run index.

    Raises:
        UserError: an override path that does not exist, or no configuration valid at all.
    """
    tasks, invalid, pipelines, problems = [], [], {}, []
    for number, overrides in enumerate(configs):
        for seed in seed_list:
            index = len(tasks) + len(invalid)
            seed_part = [f"seed={seed}"] if seed is not None else []
            task = make_task(index, number, overrides, seed,
                             run_dir(out, index, [*overrides, *seed_part]))
            pipeline, error = load_config(file, task)
            if pipeline is None:
                invalid.append(invalid_outcome(task, error))
                problems.append(error)
            else:
                tasks.append(task)
                pipelines[index] = pipeline
    if invalid and not tasks:
        raise UserError(f"every configuration is invalid; the first: {problems[0]}")
    return tasks, invalid, pipelines
