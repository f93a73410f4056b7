"""``run_tune``: check everything, warm the shared stages, run the study, write its results.

The steps, each in its own module: the space (``space``), the study in its storage and its
numbering (``study``), one trial in a worker (``trial``), the ask-and-tell loop (``loop``), the
results (``results``, ``plots``, ``report``) and the tune directory (``outdir``). Workers, the
loky/Dask engine, the option checks, the metric's direction, shared-stage warm-up and
``best.yaml`` come from ``pipeline.sweep``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from pipeline.engine.config import load_pipeline
from pipeline.errors import RunError, UserError
from pipeline.files import write_json, write_text
from pipeline.io.outputs import check_cache_folder
from pipeline.sweep import metric as metrics
from pipeline.sweep.backend import default_jobs, engine
from pipeline.sweep.options import check_options, warn
from pipeline.sweep.shared import warm_shared_stages
from pipeline.tune import outdir, results, study as studies
from pipeline.tune.drawer import Drawer
from pipeline.tune.loop import Budget, Pool, run_loop
from pipeline.tune.plots import write_plots
from pipeline.tune.report import render
from pipeline.tune.space import Param, check_space, grid_points
from pipeline.tune.trial import TrialTask


@dataclass
class TuneOptions:
    """What ``nnpipe tune`` was asked (defaults as on the command line)."""

    trials: int
    metric: str | None = None  # None: the first metric the pipeline's stages declare
    sampler: str = "tpe"
    pruner: str = "median"
    timeout: float | None = None
    jobs: int | None = None
    backend: str = "loky"
    scheduler: str | None = None
    study: str | None = None
    storage: str | None = None
    fixed: tuple[str, ...] = ()
    seeds: int | None = None
    out: Path | None = None
    threads: int | None = None
    sampler_seed: int = 0  # with the trials so far, the sampler's seed
    deadline: float | None = None  # running trials stop this many seconds after the start
    pruner_warmup: float | None = None  # a share of the complete trials' epochs (None: 0.2)
    start_if_fits: bool = False  # with a deadline: start no trial the time left cannot hold


@dataclass
class TuneResult:
    """What a study holds after this invocation (every trial of every invocation)."""

    out: Path
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    sentence: str | None
    recovered: list[int]
    ran: int
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


def check_tune_options(options: TuneOptions) -> None:
    """Raise a one-line UserError for an option that cannot work."""
    check_options([], options.seeds, options.jobs, options.backend, options.scheduler)
    studies.check_choices(options.sampler, options.pruner, options.pruner_warmup)
    if options.trials < 1:
        raise UserError(f"--trials {options.trials}: must be at least 1")
    for name, seconds in (("--timeout", options.timeout), ("--deadline", options.deadline)):
        if seconds is not None and not seconds > 0:  # not: NaN too
            raise UserError(f"{name} {seconds}: must be more than 0 seconds")
    if options.threads is not None and options.threads < 1:
        raise UserError(f"--threads {options.threads}: must be at least 1")
    if options.sampler_seed < 0:
        raise UserError(f"--sampler-seed {options.sampler_seed}: must be 0 or more")
    if options.start_if_fits and options.deadline is None:
        raise UserError("--start-if-fits: needs --deadline (it starts no trial the time left "
                        "before the deadline cannot hold)")


def _warm(file: Path, params: list[Param], options: TuneOptions, cache_dir, data_dir):
    """Run the stages every trial shares (those before the first tuned one) once, into the
    cache: two configurations per seed that differ in every parameter show where trials part."""
    seeds: list[int | None] = list(range(options.seeds)) if options.seeds else [None]
    ends = [[p.override(p.first()) for p in params],
            [p.override(p.choices[-1] if p.kind == "choice" else p.high) for p in params]]
    pipelines = {}
    for seed in seeds:
        for overrides in ends:
            seed_part = [f"seed={seed}"] if seed is not None else []
            pipelines[len(pipelines)] = load_pipeline(file, [*options.fixed, *overrides,
                                                             *seed_part])
    _, shared, reports = warm_shared_stages(pipelines, cache_dir, data_dir)
    return sorted({r.id for r in reports if r.key in shared})


def run_tune(file: Path, params: list[Param], options: TuneOptions, *, cache_dir: Path,
             data_dir: Path | None = None,
             echo: Callable[[str], None] = lambda line: None) -> TuneResult:
    """Run (or continue) the study and write ``tune.csv``, ``tune.json``, ``best.yaml``,
    ``plots/`` and ``report.html`` into the tune directory.

    Raises:
        UserError: a bad option or space, a foreign ``--out``, Optuna missing, a live owner.
        RunError: no trial could complete.
    """
    check_tune_options(options)
    # a file, an unwritable place: exit 2 now (sweeps and studies share stages through it)
    cache_dir = check_cache_folder(cache_dir, alternative="")
    studies.require_optuna()
    started = time.perf_counter()
    file = Path(file).resolve()
    base = load_pipeline(file, options.fixed)
    check_space(file, params, options.fixed)
    budget = _budget(options, params, started)  # --sampler grid: refuses float ranges now
    name = options.study or base.spec.name
    metric, mode = metrics.choose(base.stages, options.metric, None, warn)
    options = replace(options, metric=metric)
    out = outdir.checked_out(options.out, name, file, cache_dir, data_dir)
    jobs = options.jobs or 1
    threads = options.threads or max(1, default_jobs() // jobs)
    cache_dir, url = Path(cache_dir).resolve(), studies.storage_url(out, options.storage)
    with Drawer(url, name) as drawer:  # it imports the plotting libraries meanwhile
        with engine(options.backend, jobs, options.scheduler, threads):
            outdir.make_out(out)
            study = studies.open_study(url, name, "maximize" if mode == "max" else "minimize",
                                       options.sampler, options.pruner, params,
                                       seed=options.sampler_seed, warmup=options.pruner_warmup)
            recovered = studies.recover(study)
            pool = Pool(options.backend, jobs)
            pool.prepare(url)  # workers start while the shared stages are computed
            if recovered:
                echo(f"Optuna trial(s) {', '.join(map(str, recovered))} were running when their "
                     f"process died: marked failed, their budget given back")
            shared = _warm(file, params, options, cache_dir, data_dir)
            if shared:
                echo(f"shared stages computed before the trials: {', '.join(shared)}")
            make_task = _task_maker(file, params, out, url, name, options, cache_dir, data_dir,
                                    threads, budget.stop_at())
            outcomes = run_loop(study, params, budget, pool,
                                make_task, lambda o: echo(_line(o, options.metric)))
        info = {"pipeline": str(file), "study": name, "storage": url, "metric": options.metric,
                "mode": mode, "sampler": options.sampler, "sampler_seed": options.sampler_seed,
                "pruner": options.pruner, "pruner_warmup": options.pruner_warmup,
                "timeout": options.timeout, "deadline": options.deadline,
                "start_if_fits": options.start_if_fits,
                "trials": options.trials, "seeds": options.seeds, "backend": options.backend,
                "jobs": jobs, "set": list(options.fixed), "shared_stages": shared,
                "params": {p.path: p.text.partition("=")[2] for p in params},
                "seconds": round(time.perf_counter() - started, 3)}
        return _finish(study, file, params, options, out, info, recovered, outcomes,
                       drawer)


def _budget(options: TuneOptions, params: list[Param], started: float) -> Budget:
    """``--trials`` (at most the grid's size for ``--sampler grid``), ``--timeout``,
    ``--deadline`` (counted from the command's start) and ``--start-if-fits``."""
    trials = options.trials
    if options.sampler == "grid":  # a grid has so many points; asking more repeats them
        trials = min(trials, grid_points(params))
    return Budget(trials, options.timeout, started, deadline=options.deadline,
                  fits=options.start_if_fits)


def _task_maker(file, params, out, url, name, options, cache_dir, data_dir, threads, stop_at):
    """``make(number, trial)``: the worker's task for an asked trial."""
    def make(number: int, trial) -> TrialTask:
        overrides = tuple(p.override(trial.params[p.path]) for p in params)
        return TrialTask(number, trial._trial_id, url, name, options.pruner, overrides,
                         tuple(options.fixed), options.seeds, str(file),
                         str((out / "trials").resolve()), str(cache_dir),
                         str(data_dir) if data_dir else None, options.metric, threads,
                         stop_at, options.pruner_warmup)
    return make


def _line(outcome: dict, metric: str) -> str:
    value = "" if outcome["value"] is None else f"{metric} {outcome['value']:.4f}"
    epochs = "" if outcome["epochs"] is None else f"{outcome['epochs']} epochs"
    error = f"  ({outcome['error']})" if outcome.get("error") else (
        "  (stopped at the deadline)" if outcome.get("stopped") == "deadline" else "")
    return (f"  trial {outcome['number']:>3} {outcome['state'].lower():<8} {value:<24} "
            f"{epochs:<10} {outcome['seconds']:7.1f}s{error}")


def _finish(study, file, params, options, out, info, recovered, outcomes,
            drawer: Drawer) -> TuneResult:
    """Write the results of the whole study (the plots by ``drawer``'s helper while the tables
    are written, or here); a study where nothing completed is a RunError."""
    drawing = drawer.submit(out / "plots")
    rows = results.trial_rows(study, params)
    ranked = results.best_rows(rows, info["mode"])
    best = ranked[0] if ranked else None
    comparison = results.seed_comparison(ranked)
    sentence = comparison.sentence() if comparison else None
    write_text(out / "tune.csv", results.to_csv(rows, params, options.metric))
    write_json(out / "tune.json", {**info, "best": best, "seed_comparison": sentence,
                                   "trials_table": rows})
    if best is not None:
        results.write_best_file(out / "best.yaml", file, best, options.metric, options.fixed)
    plots, notes = drawer.result(drawing) or write_plots(study, out / "plots")
    write_text(out / "report.html", render(info, rows, params, best, sentence, plots, notes))
    if best is None and not any(r["state"] == "PRUNED" for r in rows):
        failed = [o for o in outcomes if o.get("error")]
        raise RunError("no trial completed" + (f"; the first error: {failed[0]['error']}"
                                               if failed else ""))
    return TuneResult(out, rows, best, sentence, recovered, len(outcomes),
                      info["seconds"], info)
