"""One trial, run in a worker process: the pipeline with the trial's parameters, over its seeds.

The worker opens the study from its storage and reports every intermediate value a stage gives
(``StageContext.report``: a training stage's per-step validation) to the Optuna trial, which
answers whether the trial should be pruned. That answer reaches the stage as "stop": the stage
returns within the step, the runner neither caches nor writes the partial result, and the trial is
recorded as pruned with its last value. The stages know nothing about Optuna.

With ``--seeds N`` the configuration runs with seeds 0..N-1, one after another, and its value is
the mean; the first seed's run is the one watched for pruning.

``--deadline``: the same monitor stops every seed's run at its first step after the study's
deadline, and the trial is recorded as pruned with its last value (``stopped: deadline``, where
the pruner's own stops say ``pruner``), so no trial runs past the study's time.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.sweep.worker import Task, run_one


@dataclass
class TrialTask:
    """Everything a worker needs for one trial; plain data, so it pickles to any worker."""

    number: int  # nnpipe's trial number (the run directory's prefix)
    trial_id: int  # Optuna's id of the trial in the storage
    storage: str
    study: str
    pruner: str
    overrides: tuple[str, ...]  # this trial's parameter values, as --set texts
    fixed: tuple[str, ...]  # --set for every trial
    seeds: int | None
    pipeline_file: str
    trials_dir: str
    cache_dir: str
    data_dir: str | None
    metric: str
    threads: int
    stop_at: float | None = None  # --deadline as time.time(): running seeds stop then
    pruner_warmup: float | None = None  # --pruner-warmup (None: the default share)

    def runs(self) -> list[Task]:
        """One sweep ``Task`` per seed (or one with the file's seed)."""
        seeds: list[int | None] = list(range(self.seeds)) if self.seeds else [None]
        return [Task(index=self.number, config=self.number, overrides=self.overrides, seed=seed,
                     pipeline_file=self.pipeline_file,
                     run_dir=str(Path(self.trials_dir) / (f"{self.number:03d}" + (
                         f"-seed{seed}" if seed is not None else ""))),
                     cache_dir=self.cache_dir, data_dir=self.data_dir, metric=self.metric,
                     threads=self.threads, fixed=self.fixed, option="--param")
                for seed in seeds]


def past(stop_at: float | None) -> bool:
    """Whether the study's deadline (``time.time()`` seconds, None: none) has passed. Wall
    time, not a process's own clock: the parent sets it, workers on any host read it."""
    return stop_at is not None and time.time() >= stop_at


class DeadlineMonitor:
    """The monitor of a trial's later seeds: stop at the deadline, nothing else to judge."""

    def __init__(self, stop_at: float | None = None):
        self.stop_at = stop_at
        self.stopped_by: str | None = None  # "deadline" once it said stop

    def __call__(self, stage_id: str, step: int, values: Any) -> bool:
        if past(self.stop_at):
            self.stopped_by = "deadline"
            return True
        return False


class PruningMonitor(DeadlineMonitor):
    """The Runner's monitor for one trial: report ``metric`` at each step, answer should-stop
    (the pruner's rule, or the study's deadline: ``stop_at``, see ``past``)."""

    def __init__(self, trial, metric: str, stop_at: float | None = None):
        super().__init__(stop_at)
        self.trial = trial
        self.metric = metric
        self.step: int | None = None
        self.value: float | None = None

    def __call__(self, stage_id: str, step: int, values: Any) -> bool:
        value = values.get(self.metric) if hasattr(values, "get") else None
        if isinstance(value, (int, float)) and math.isfinite(value):
            # reported first, so a trial stopped at the deadline keeps this step's value
            self.step, self.value = int(step), float(value)
            self.trial.report(self.value, self.step)
        if super().__call__(stage_id, step, values):
            return True
        if self.step != step:
            return False  # nothing to judge this step by
        if self.trial.should_prune():
            self.stopped_by = "pruner"
            return True
        return False


def _epochs(run_dir: str) -> int | None:
    """Epochs in a run directory's ``history.json``; None without one."""
    path = Path(run_dir) / "history.json"
    try:
        history = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return len(history) if isinstance(history, list) else None


@functools.lru_cache(maxsize=4)
def storage_for(url: str):
    """This worker's connection to the study's storage, opened once per process (a worker
    runs many trials; opening costs about a second)."""
    from pipeline.tune.study import open_storage

    return open_storage(url, created=True)


def prepare(url: str) -> None:
    """Import what trials need and open the storage: a worker does it while the parent still
    computes the shared stages, so the first trials do not pay for it."""
    import pipeline.engine.runner  # noqa: F401
    from pipeline.engine.config import stage_classes
    from pipeline.registry import default_registry

    stage_classes(default_registry())  # imports every installed stage's module

    storage_for(url)


def _open_trial(task: TrialTask):
    """The Optuna trial in the storage, seen from this worker (pruner included)."""
    import optuna

    from pipeline.tune.study import make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=task.study, storage=storage_for(task.storage),
                              pruner=make_pruner(task.pruner, task.pruner_warmup))
    return optuna.trial.Trial(study, task.trial_id)


def run_trial(task: TrialTask) -> dict[str, Any]:
    """Run the trial's seeds; return ``state`` (COMPLETE, PRUNED or FAIL), ``value`` (the mean
    over seeds, or the last reported value when pruned), ``values`` per seed, ``epochs``,
    ``seconds``, ``run_dirs``, ``error`` and ``stopped`` (what stopped a pruned trial:
    ``pruner`` or ``deadline``). Never raises for a failed run."""
    started = time.perf_counter()
    outcome: dict[str, Any] = {"number": task.number, "trial_id": task.trial_id,
                               "state": "COMPLETE", "value": None, "values": [],
                               "epochs": None, "run_dirs": [], "error": None, "stages": [],
                               "stopped": None}
    try:
        monitor = PruningMonitor(_open_trial(task), task.metric, task.stop_at)
    except Exception as exc:  # the storage went away: the trial fails, the study goes on
        return {**outcome, "state": "FAIL", "error": f"cannot open the study: {exc}",
                "seconds": round(time.perf_counter() - started, 3)}
    for position, run in enumerate(task.runs()):
        watch = monitor if position == 0 else DeadlineMonitor(task.stop_at)
        result = run_one(run, watch)
        outcome["stages"].extend(result["stages"])
        if result["status"] == "stopped":
            # a later seed stopped at the deadline: the trial keeps its first run's epochs
            outcome.update(state="PRUNED", value=monitor.value, stopped=watch.stopped_by,
                           epochs=monitor.step if position == 0 else outcome["epochs"])
            break
        if result["status"] != "ok":
            outcome.update(state="FAIL", error=result["error"])
            break
        outcome["values"].append(result["metric"])
        outcome["run_dirs"].append(result["run_dir"])
        if position == 0:
            outcome["epochs"] = _epochs(result["run_dir"]) or monitor.step
    if outcome["state"] == "COMPLETE":
        outcome["value"] = sum(outcome["values"]) / len(outcome["values"])
    outcome["seconds"] = round(time.perf_counter() - started, 3)
    return outcome
