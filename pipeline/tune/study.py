"""The study in its database: opening or continuing it, the budget, and trials left by a crash.

By default the study is an SQLite file in the tune directory (``study.db``), opened through
Optuna's ``RDBStorage`` with a busy timeout, so the parent and its workers (processes, Dask
workers on a shared file system) write to it in turn. SQLite commits are atomic and its locks are
the operating system's, released when a process dies, so a SIGKILL at any moment leaves a
readable database with every committed trial; a journal file would leave a lock file behind
instead. Any other Optuna storage URL (``postgresql://...``) works through ``--storage``.

Numbering. Optuna numbers every trial it creates, failed ones included. nnpipe gives each trial
its own number (user attribute ``nnpipe_number``, also the run directory's prefix): the lowest
number no COMPLETE, PRUNED or RUNNING trial holds. A trial that fails (a crash, a diverging run)
gives its number back, so a study of N trials ends with N counted trials numbered 0..N-1,
however often it was interrupted; Optuna's own number stays in the table beside it.

Ownership. The process that asks for a trial records itself on it (host, pid and the process's
start, ``pipeline.tune.owner``, so a reused pid is not taken for the owner). When the same
command runs again, a RUNNING trial whose owner is gone from this host is marked FAIL; one owned
by a live process means another ``nnpipe tune`` is running this study, which is refused.
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

from pipeline.errors import UserError
from pipeline.tune.foreign import refuse_foreign_storage
from pipeline.tune.owner import alive as owner_alive, this_owner

#: The trial states that count towards ``--trials``.
COUNTED = ("COMPLETE", "PRUNED")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "median-reached", "quartile", "none")
#: The share (percent) of the complete trials' values at a step a trial must be among to go
#: on: the better half for ``median``, the best quarter for ``quartile`` (Optuna's percentile).
KEPT = {"median": 50.0, "quartile": 25.0}
NUMBER = "nnpipe_number"
OWNER = "nnpipe_owner"


def require_optuna():
    """Import optuna, or say how to install it (exit 2)."""
    try:
        import optuna
    except ImportError:
        raise UserError("nnpipe tune needs Optuna: install nnpipe[tune] "
                        "(pip install 'nnpipe[tune]')") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage_url(out: Path, url: str | None) -> str:
    """``--storage`` as given, else ``sqlite:///<out>/study.db`` (absolute)."""
    return url or f"sqlite:///{(Path(out) / 'study.db').resolve()}"


def open_storage(url: str, created: bool = False):
    """An Optuna storage for ``url``; SQLite with a 60 s busy timeout for concurrent writers.
    ``created``: the parent made the tables and checked the schema (a worker skips both)."""
    optuna = require_optuna()
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs,
                                          skip_compatibility_check=created,
                                          skip_table_creation=created)
    except Exception as exc:  # sqlalchemy: bad URL, missing driver, unreachable server
        raise UserError(f"--storage {url}: cannot open it: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def make_sampler(name: str, params, seed: int):
    """The Optuna sampler ``--sampler`` names, seeded with ``seed`` (see ``sampler_seed``)."""
    optuna = require_optuna()
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        class AskTellGrid(optuna.samplers.GridSampler):
            """GridSampler stops ``study.optimize`` when the grid is done; the ask-and-tell
            loop has no optimize to stop (its budget is capped at the grid's size)."""

            def after_trial(self, study, trial, state, values):
                pass

        return AskTellGrid({p.path: p.grid() for p in params}, seed=seed)
    # Three random start-up trials, then TPE over all parameters together (multivariate):
    # a study of a dozen trials should spend most of them learning from the others. The
    # constant liar keeps parallel workers from being sent to the same point.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # multivariate is "experimental" in Optuna
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=2, multivariate=True,
                                          constant_liar=True)


#: A trial may be pruned once it has run this share of the steps complete trials ran: early
#: epochs mostly measure how fast a configuration starts, not where it ends (pruning at the
#: first epoch stopped the best learning rate of tune_vs_grid.py on its second).
WARMUP_SHARE = 0.2


def make_pruner(name: str, warmup: float | None = None):
    """``median``: stop a trial whose value at a step (the trainer's epoch) is worse than the
    median of complete trials' values at that step, once 2 trials are complete and the trial
    has run ``warmup`` (a share, default ``WARMUP_SHARE``) of their steps; ``quartile``: the
    same, unless among the best quarter; ``none``: never stop."""
    optuna = require_optuna()
    warmup = WARMUP_SHARE if warmup is None else warmup
    if name == "none":
        return optuna.pruners.NopPruner()
    rule = (ReachedMedian() if name == "median-reached" else
            optuna.pruners.PercentilePruner(KEPT[name], n_startup_trials=2, n_warmup_steps=0))

    class Warmup(optuna.pruners.BasePruner):
        """The percentile rule, after a warm-up measured in the complete trials' own steps
        (the study cannot know a trial's epochs before one completes)."""

        def prune(self, study, trial) -> bool:
            from optuna.trial import TrialState

            step = trial.last_step
            study = TrialsReadOnce(study)  # the rule reads the complete trials again
            complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            longest = max((t.last_step or 0 for t in complete), default=0)
            if step is None or step < warmup * longest:
                return False
            return rule.prune(study, trial)

    return Warmup()


class TrialsReadOnce:
    """The study as one pruning judgement sees it: each ``get_trials`` query is read from the
    storage once (a round trip to the database: about 4 ms of a trial's epoch on SQLite), the
    rest is the study's own."""

    def __init__(self, study):
        self._study = study
        self._read: dict = {}

    def get_trials(self, deepcopy: bool = True, states=None):
        key = tuple(states) if states is not None else None
        if key not in self._read:
            self._read[key] = self._study.get_trials(deepcopy=False, states=states)
        return copy.deepcopy(self._read[key]) if deepcopy else list(self._read[key])

    def __getattr__(self, name):
        return getattr(self._study, name)


class ReachedMedian:
    """``median-reached``: the median over every other trial that reached the step (complete,
    pruned or running), not only the complete ones. The complete trials are the survivors of
    earlier judgements, so their median at an early step is the median of the best, and a
    configuration that starts slowly (much dropout) and ends best is stopped by it; every trial
    that got as far is the unbiased field (as successive halving ranks a rung). The trial is
    judged by its best value so far, as Optuna's rule; 2 complete trials are still needed."""

    def prune(self, study, trial) -> bool:
        import numpy as np
        from optuna.study import StudyDirection
        from optuna.trial import TrialState

        step = trial.last_step
        trials = study.get_trials(deepcopy=False, states=(
            TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
        if sum(t.state == TrialState.COMPLETE for t in trials) < 2:
            return False
        others = [t.intermediate_values[step] for t in trials
                  if t.number != trial.number and step in t.intermediate_values]
        others = [v for v in others if math.isfinite(v)]
        mine = [v for v in trial.intermediate_values.values() if math.isfinite(v)]
        if not others or not mine:
            return False
        maximize = study.direction == StudyDirection.MAXIMIZE
        best = max(mine) if maximize else min(mine)
        median = float(np.median(others))
        return best < median if maximize else best > median


def check_choices(sampler: str, pruner: str, warmup: float | None = None) -> None:
    """``--sampler``, ``--pruner`` and ``--pruner-warmup`` (a share: 0 <= SHARE < 1)."""
    if warmup is not None and not 0 <= warmup < 1:  # not: NaN too
        raise UserError(f"--pruner-warmup {warmup}: must be at least 0 and less than 1 (a "
                        f"share of the complete trials' epochs)")
    if sampler not in SAMPLERS:
        raise UserError(f"--sampler {sampler}: choose one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise UserError(f"--pruner {pruner}: choose one of {', '.join(PRUNERS)}")


def sampler_seed(seed: int, trials_so_far: int) -> int:
    """The sampler's seed for this invocation: ``--sampler-seed`` and the trials already in
    the study together, so a resumed study does not draw its first points again and two
    ``--sampler-seed`` values never replay each other's draws shifted by a trial."""
    import numpy as np

    return int(np.random.SeedSequence([seed, trials_so_far]).generate_state(1)[0])


def open_study(url: str, name: str, direction: str, sampler: str, pruner: str, params,
               seed: int = 0, warmup: float | None = None):
    """Create the study, or load it to continue it (``seed``: ``--sampler-seed``). A study
    created for the other direction (``--metric`` changed to one ranked the other way) is
    refused."""
    optuna = require_optuna()
    refuse_foreign_storage(url)
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name=name, direction=direction,
                                load_if_exists=True)
    if study.direction.name.lower() != direction:
        raise UserError(f"--study {name}: the stored study is {study.direction.name.lower()}d, "
                        f"but --metric asks to {direction} (use another --study or --out)")
    check_same_search(study, params)
    study.sampler = make_sampler(sampler, params, seed=sampler_seed(seed, len(study.trials)))
    study.pruner = make_pruner(pruner, warmup)
    return study


def check_same_search(study, params) -> None:
    """Record the space on a new study; refuse to continue a study with another space (its
    trials would be ranked and applied to ``best.yaml`` by parameters it no longer has)."""
    space = {p.path: p.text.partition("=")[2].strip() for p in params}
    stored = study.user_attrs.get("nnpipe_space")
    if stored is None:
        study.set_user_attr("nnpipe_space", space)
    elif stored != space:
        given = " ".join(f"--param {k}={v}" for k, v in stored.items())
        raise UserError(f"study {study.study_name}: it was started with {given}; continue it "
                        f"with the same --param options, or start another with --study NAME")


def recover(study) -> list[int]:
    """Mark FAIL every RUNNING trial whose owner died; return their Optuna numbers.

    Raises:
        UserError: a live process on this host is running the study.
    """
    from optuna.trial import TrialState

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(OWNER, "")
        alive = owner_alive(owner) if owner else False
        if alive and owner != this_owner():
            raise UserError(f"study {study.study_name}: trial {trial.number} is being run by "
                            f"process {owner}; run one 'nnpipe tune' per study at a time "
                            f"(add workers with --jobs or --scheduler)")
        if alive is False:
            study._storage.set_trial_user_attr(trial._trial_id, "nnpipe_error",
                                               "its process died while it ran")
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            failed.append(trial.number)
    return failed


def counted(study) -> int:
    """COMPLETE + PRUNED trials: what ``--trials`` counts."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def free_number(study, in_flight: set[int]) -> int:
    """The lowest nnpipe number no counted or running trial holds (failed ones give theirs back)."""
    from optuna.trial import TrialState

    held = {t.user_attrs.get(NUMBER) for t in study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))}
    held |= in_flight
    number = 0
    while number in held:
        number += 1
    return number
