"""The ask-and-tell loop: the parent asks Optuna for trials, workers run them, the parent tells.

Asking in one place keeps the budget exact: a trial is asked only while the counted trials
(COMPLETE + PRUNED) plus those in flight are fewer than ``--trials``, so parallel workers never
overshoot and a resumed study runs only what is missing. Workers are a loky process pool on this
machine, or the Dask client of the enclosing ``pipeline.sweep.backend.engine`` block; with one job on
loky the trial runs in this process.
"""

from __future__ import annotations

import concurrent.futures
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pipeline.tune.owner import this_owner
from pipeline.tune.study import NUMBER, OWNER, counted, free_number
from pipeline.tune.trial import TrialTask, prepare, run_trial


class _Deferred:
    """A trial to run in this process when its result is asked for (``--jobs 1`` on loky), so
    it is in flight (and told FAIL if interrupted) while it runs."""

    def __init__(self, task: TrialTask):
        self.task = task

    def result(self) -> dict[str, Any]:
        return run_trial(self.task)


class Pool:
    """``submit`` a trial, ``wait`` for at least one to finish: loky, Dask, or inline."""

    def __init__(self, backend: str, jobs: int):
        self.backend, self.jobs = backend, jobs
        self.executor = None
        if backend == "dask":
            from dask.distributed import get_client

            self.executor = get_client()
        elif jobs > 1:
            from joblib.externals.loky import get_reusable_executor

            self.executor = get_reusable_executor(max_workers=jobs)

    def prepare(self, url: str) -> None:
        """Start the loky workers now, each importing and opening the storage (no waiting)."""
        if self.executor is not None and self.backend != "dask":
            for _ in range(self.jobs):
                self.executor.submit(prepare, url)

    def submit(self, task: TrialTask):
        if self.executor is None:  # inline: the trial runs when its result is asked for
            return _Deferred(task)
        if self.backend == "dask":
            return self.executor.submit(run_trial, task, pure=False)
        from joblib.externals.loky import get_reusable_executor

        # the same executor, or a new one if a killed worker broke it
        self.executor = get_reusable_executor(max_workers=self.jobs)
        return self.executor.submit(run_trial, task)

    def wait(self, futures) -> list:
        if self.executor is None:
            return list(futures)
        if self.backend == "dask":
            from dask.distributed import wait

            return list(wait(list(futures), return_when="FIRST_COMPLETED").done)
        return list(concurrent.futures.wait(list(futures),
                                            return_when="FIRST_COMPLETED").done)


@dataclass
class Budget:
    """When to stop asking: the total of counted trials, the time, and a run of failures.
    ``timeout``: no trial starts after it; ``deadline``: none starts after it either, and the
    trials running then stop at their next step (``stop_at``); both in seconds from ``started``.
    ``fits`` (``--start-if-fits``): before the deadline, no trial starts either that the time
    left cannot hold (``holds_a_trial``)."""

    trials: int
    timeout: float | None
    started: float = field(default_factory=time.perf_counter)  # the command's start
    failures: int = 0
    deadline: float | None = None
    fits: bool = False

    def timed_out(self) -> bool:
        limits = [s for s in (self.timeout, self.deadline) if s is not None]
        return bool(limits) and time.perf_counter() - self.started >= min(limits)

    def stop_at(self) -> float | None:
        """The deadline as ``time.time()`` seconds (workers on other hosts compare it with
        their own wall clock), or None."""
        if self.deadline is None:
            return None
        return time.time() + self.deadline - (time.perf_counter() - self.started)

    def holds_a_trial(self, study) -> bool:
        """Whether the time left before the deadline holds a trial as long as the median of
        the study's complete trials (their seconds); always without ``fits``, a deadline or a
        complete trial. A trial it cannot hold would stop at the deadline unfinished, and only
        a complete trial can be the best: its worker idling instead, the study ends sooner with
        the same best."""
        from optuna.trial import TrialState

        if not self.fits or self.deadline is None:
            return True
        seconds = [t.user_attrs.get("nnpipe_seconds") for t in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE,))]
        seconds = [s for s in seconds if isinstance(s, (int, float))]
        left = self.deadline - (time.perf_counter() - self.started)
        return not seconds or statistics.median(seconds) <= left

    def may_ask(self, study, in_flight: int) -> bool:
        # Every trial failing (a pipeline that cannot run) must not loop for ever.
        return (not self.timed_out() and self.failures < max(3, self.trials)
                and counted(study) + in_flight < self.trials and self.holds_a_trial(study))


def _ask(study, params, make_task: Callable[[int, Any], TrialTask], in_flight: dict):
    """Ask for a trial, give it nnpipe's number and this process as owner; its task."""
    trial = study.ask({p.path: p.distribution() for p in params})
    number = free_number(study, {n for _, n in in_flight.values()})
    trial.set_user_attr(OWNER, this_owner())
    trial.set_user_attr(NUMBER, number)
    return trial, number, make_task(number, trial)


def _result(future, trial, number) -> dict[str, Any]:
    """A future's outcome; a worker that died (killed, out of memory) is a failed trial."""
    try:
        return future.result()
    except Exception as exc:
        return {"number": number, "trial_id": trial._trial_id, "state": "FAIL", "value": None,
                "values": [], "epochs": None, "run_dirs": [], "stages": [], "seconds": 0.0,
                "error": f"the worker died: {type(exc).__name__}: {exc}", "stopped": None}


def tell(study, trial, outcome: dict[str, Any]) -> None:
    """Record an outcome in the storage: attributes first, then the state (the commit point)."""
    from optuna.trial import TrialState

    for key in ("epochs", "seconds", "values", "run_dirs", "error", "stopped"):
        trial.set_user_attr(f"nnpipe_{key}", outcome.get(key))
    if outcome["state"] == "COMPLETE":
        study.tell(trial, outcome["value"])
    else:
        study.tell(trial, state=getattr(TrialState, outcome["state"]))


def run_loop(study, params, budget: Budget, pool: Pool, make_task, on_outcome) -> list[dict]:
    """Ask, run and tell until the budget is spent; return this invocation's outcomes.
    Interrupted (Ctrl-C), the trials in flight are told FAIL so their budget is given back."""
    from optuna.trial import TrialState

    in_flight: dict = {}  # future -> (trial, nnpipe number)
    outcomes = []
    try:
        while True:
            while len(in_flight) < pool.jobs and budget.may_ask(study, len(in_flight)):
                trial, number, task = _ask(study, params, make_task, in_flight)
                in_flight[pool.submit(task)] = (trial, number)
                if pool.executor is None:
                    break  # inline: run and tell this trial before asking for the next
            if not in_flight:
                return outcomes
            for future in pool.wait(in_flight):
                trial, number = in_flight.pop(future)
                outcome = _result(future, trial, number)
                tell(study, trial, outcome)
                budget.failures += outcome["state"] == "FAIL"
                outcomes.append(outcome)
                on_outcome(outcome)
    finally:
        for trial, _ in in_flight.values():
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
