"""Sweeps: run one pipeline file over the cartesian product of ``--set`` overrides, in parallel.

The engine is joblib: every run is one ``joblib.Parallel`` task, on the loky backend (processes on
this machine) or on Dask (a local cluster, or any scheduler by address) chosen with
``parallel_config``. Nothing here knows about MLPs: a grid value is an override, and the metric
a configuration is ranked by is read from whatever its run directory holds (the last epoch of
``history.json``, else ``metrics.json``).

Stages every run has in common are computed once. Before fanning out, each run's stage keys are
computed (exactly as the runner does); a stage whose key more than one run shares is run once here
in the parent, into the stage cache, and every worker then loads it from there. The cache folder
must therefore be one all workers see (a shared file system for a remote cluster).

A run that fails (a diverging network, a value the spec refuses) becomes a ``failed`` row with
its message; the others go on.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import itertools
import os
import re
import time
from collections import Counter, defaultdict
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import yaml

from pipeline.engine.config import LoadedPipeline, load_pipeline
from pipeline.errors import ConfigError, NnpipeError, Stopped, UserError
from pipeline.files import write_json, write_text
from pipeline.engine.chain import key_chain
from pipeline.engine.keys import FileHasher
from pipeline.io.names import slug
from pipeline.io.outputs import SWEEP, SWEEP_FORMAT, check_output, protected_places
from pipeline.runs.seedstats import compare_best, mean_std
from pipeline.spec import StageContext
from pipeline.userfiles import MAX_RUN_FILE_BYTES, load_yaml, read_json

BACKENDS = ("loky", "dask")


# --------------------------------------------------------------------------------------------
# The grid


@dataclass(frozen=True)
class Axis:
    """One ``--grid PATH=V1,V2,...``: an override path and the value texts it takes."""

    path: str
    values: tuple[str, ...]

    def overrides(self) -> list[str]:
        return [f"{self.path}={value}" for value in self.values]


def split_values(text: str) -> list[str]:
    """Split ``V1,V2,...`` on the commas outside brackets, so ``[64],[128,64]`` is two values."""
    values, depth, current = [], 0, ""
    for char in text:
        if char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    values.append(current.strip())
    return values


def parse_grid(text: str) -> Axis:
    """Parse ``PATH=V1,V2,...``; anything else is a one-line UserError."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    example = "e.g. --grid mlp_train.optimizer.lr=0.1,0.01"
    if not sep or not path or not re.fullmatch(r"[A-Za-z0-9_.\-\[\]#]+", path):
        raise UserError(f"--grid {text!r}: expected PATH=V1,V2,... ({example})")
    values = split_values(raw)
    if any(not value for value in values):
        raise UserError(f"--grid {text!r}: empty value in {raw!r} ({example})")
    for value in values:
        load_yaml(value, f"--grid {text!r}: value {value!r}")  # within the pipeline file's caps
    return Axis(path, tuple(values))


def configurations(axes: list[Axis]) -> list[tuple[str, ...]]:
    """The cartesian product of the axes, each configuration a tuple of override texts."""
    paths = [axis.path for axis in axes]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise UserError(f"--grid {repeated[0]}: given more than once; list all its values in one "
                        f"--grid")
    return [tuple(combo) for combo in itertools.product(*(axis.overrides() for axis in axes))]


# --------------------------------------------------------------------------------------------
# One run (executed in a worker process)


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

    def all_overrides(self) -> list[str]:
        """The ``--set`` overrides of every run, then this run's grid values, then its seed."""
        return [*self.fixed, *self.overrides, *([f"seed={self.seed}"] if self.seed is not None
                                                else [])]


def read_metric(run_dir: Path, metric: str) -> float | None:
    """``metric`` from a run directory: the last epoch of ``history.json`` that has it, else the
    top level of ``metrics.json``; None when neither holds it."""
    history = run_dir / "history.json"
    if history.is_file():
        epochs = read_json(history, "run directory file", MAX_RUN_FILE_BYTES)
        for epoch in reversed(epochs if isinstance(epochs, list) else []):
            if isinstance(epoch, dict) and isinstance(epoch.get(metric), (int, float)):
                return float(epoch[metric])
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        found = read_json(metrics, "run directory file", MAX_RUN_FILE_BYTES)
        value = found.get(metric) if isinstance(found, dict) else None
        if isinstance(value, (int, float)):
            return float(value)
    return None


def run_one(task: Task, monitor=None) -> dict[str, Any]:
    """Run one configuration; return its outcome as plain data. Never raises for a failed run:
    the failure is the outcome (``status: failed`` with the message). ``monitor`` is the
    Runner's (``nnpipe tune`` prunes through it); a run it stops has ``status: stopped``."""
    from threadpoolctl import threadpool_limits

    from pipeline.engine.cache import StageCache
    from pipeline.engine.runner import Runner

    started = time.perf_counter()
    outcome: dict[str, Any] = {"index": task.index, "config": task.config,
                               "overrides": list(task.overrides), "seed": task.seed,
                               "run_dir": task.run_dir, "status": "ok", "metric": None,
                               "error": None, "stages": []}
    try:
        with threadpool_limits(limits=task.threads):
            pipeline = load_pipeline(task.pipeline_file, task.all_overrides())
            runner = Runner(data_dir=Path(task.data_dir) if task.data_dir else None,
                            cache=StageCache(task.cache_dir), state_dir=Path(task.cache_dir),
                            monitor=monitor)
            result = runner.run(pipeline, out=Path(task.run_dir))
        outcome["stages"] = [dict(report.__dict__) for report in result.stages]
        outcome["metric"] = read_metric(Path(task.run_dir), task.metric)
        if outcome["metric"] is None:
            outcome.update(status="failed", error=f"the run produced no {task.metric!r} "
                                                  f"(in history.json or metrics.json)")
    except Stopped as exc:
        outcome.update(status="stopped", error=str(exc))
    except NnpipeError as exc:
        outcome.update(status="failed", error=" / ".join(str(exc).splitlines()) or
                       type(exc).__name__)
    except Exception as exc:  # a bug in a plugin fails its run, not the sweep
        outcome.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    outcome["seconds"] = round(time.perf_counter() - started, 3)
    return outcome


# --------------------------------------------------------------------------------------------
# Shared stages


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


# --------------------------------------------------------------------------------------------
# Executing the runs: joblib, on loky or Dask


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextmanager
def engine(backend: str, jobs: int, scheduler: str | None, threads: int) -> Iterator[None]:
    """The joblib backend the runs go to, set with ``parallel_config`` for the ``with`` block.

    loky gets ``inner_max_num_threads`` (BLAS threads per worker); Dask workers limit theirs with
    threadpoolctl inside ``run_one``. With ``backend="dask"`` and no ``scheduler``, a local
    cluster of ``jobs`` single-threaded worker processes on 127.0.0.1 is started, and closed when
    the block ends. Entered before anything runs, so an unreachable scheduler fails at once.
    """
    from joblib import parallel_config

    with ExitStack() as stack:
        if backend == "dask":
            try:
                from dask.distributed import Client, LocalCluster
            except ImportError:
                raise UserError("--backend dask: dask is not installed "
                                "(pip install 'nnpipe[dask]')") from None
            if scheduler:
                try:
                    stack.enter_context(Client(scheduler, timeout="10s"))
                except (OSError, TimeoutError, ValueError) as exc:
                    raise UserError(f"--scheduler {scheduler}: cannot connect: {exc}") from None
            else:
                cluster = stack.enter_context(LocalCluster(
                    n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=None))
                stack.enter_context(Client(cluster))
            stack.enter_context(parallel_config(backend="dask", wait_for_workers_timeout=60))
        else:
            stack.enter_context(parallel_config(backend="loky", n_jobs=jobs,
                                                inner_max_num_threads=threads))
        yield


def execute(tasks: list[Task], on_result: Callable[[dict], None]) -> list[dict[str, Any]]:
    """Run ``tasks`` through ``joblib.Parallel`` on the backend of the enclosing ``engine``;
    call ``on_result`` with each outcome as it comes; return the outcomes in order."""
    from joblib import Parallel, delayed

    outcomes = []
    for outcome in Parallel(batch_size=1, return_as="generator")(
            delayed(run_one)(task) for task in tasks):
        on_result(outcome)
        outcomes.append(outcome)
    return outcomes


# --------------------------------------------------------------------------------------------
# The sweep


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


def metric_mode(metric: str) -> str:
    """``min`` for losses and errors, ``max`` for everything else (accuracy, F1, ...)."""
    return "min" if re.search(r"loss|error|mse|mae", metric) else "max"


def _label(overrides: Iterable[str]) -> str:
    """A folder-name label: the last part of each path with its value (``lr=0.1,seed=0``)."""
    parts = []
    for override in overrides:
        path, _, value = override.partition("=")
        parts.append(f"{path.rpartition('.')[2]}={value}")
    return re.sub(r"[^A-Za-z0-9=.,_-]+", "_", ",".join(parts))[:60] or "base"


def summarise(configs: list[tuple[str, ...]], outcomes: list[dict], mode: str) -> list[dict]:
    """One row per configuration: mean and spread of the metric over its seeds, best first;
    configurations with a failed run keep it in ``error`` and go below the complete ones."""
    by_config: dict[int, list[dict]] = defaultdict(list)
    for outcome in outcomes:
        by_config[outcome["config"]].append(outcome)
    rows = []
    for number, overrides in enumerate(configs):
        runs = by_config.get(number, [])
        values = [r["metric"] for r in runs if r["status"] == "ok"]
        failed = [r for r in runs if r["status"] != "ok"]
        mean, std = mean_std(values)  # std: the sample standard deviation over seeds
        status = "ok" if not failed else ("failed" if not values else "partial")
        error = None
        if failed:
            seeds = ", ".join(str(r["seed"]) for r in failed if r["seed"] is not None)
            error = (f"seed {seeds}: " if seeds and len(runs) > 1 else "") + failed[0]["error"]
        rows.append({"config": number, "overrides": list(overrides), "runs": len(runs),
                     "ok": len(values), "mean": mean, "std": std, "status": status,
                     "error": error, "values": values,
                     "run_dirs": [r["run_dir"] for r in runs]})
    sign = -1 if mode == "max" else 1
    rows.sort(key=lambda r: (r["status"] != "ok", r["mean"] is None,
                             sign * r["mean"] if r["mean"] is not None else 0, r["config"]))
    return rows


def table(rows: list[dict], metric: str, axes: list[Axis]) -> str:
    """The results as a plain-text table (what the terminal shows)."""
    headers = ["#", *[a.path for a in axes], "runs", metric, "±", "status"]
    body = []
    for rank, row in enumerate(rows, 1):
        values = {o.partition("=")[0]: o.partition("=")[2] for o in row["overrides"]}
        body.append([str(rank), *[values.get(a.path, "") for a in axes],
                     f"{row['ok']}/{row['runs']}",
                     "" if row["mean"] is None else f"{row['mean']:.4f}",
                     "" if row["std"] is None else f"{row['std']:.4f}",
                     row["status"] + (f": {row['error']}" if row["error"] else "")])
    widths = [max(len(r[i]) for r in [headers, *body]) for i in range(len(headers) - 1)]
    lines = []
    for cells in [headers, *body]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + cells[-1])
    return "\n".join(line.rstrip() for line in lines)


def to_csv(rows: list[dict], metric: str, axes: list[Axis]) -> str:
    """The rows as CSV: rank, one column per grid path, runs, ok, mean, std, status, error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", *[a.path for a in axes], "runs", "ok", f"{metric}_mean",
                     f"{metric}_std", "status", "error"])
    for rank, row in enumerate(rows, 1):
        values = {o.partition("=")[0]: o.partition("=")[2] for o in row["overrides"]}
        writer.writerow([rank, *[values.get(a.path, "") for a in axes], row["runs"], row["ok"],
                         "" if row["mean"] is None else repr(row["mean"]),
                         "" if row["std"] is None else repr(row["std"]),
                         row["status"], row["error"] or ""])
    return buffer.getvalue()


def default_out(name: str, root: Path = Path("runs")) -> Path:
    """``runs/sweep-<name>-<date>-<time>``, the name made safe (``pipeline.io.names.slug``)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = slug(name)
    candidate, counter = root / f"sweep-{name}-{stamp}", 1
    while candidate.exists():
        counter += 1
        candidate = root / f"sweep-{name}-{stamp}-{counter}"
    return candidate


def _load_config(file: Path, overrides: list[str]) -> tuple[LoadedPipeline | None, str | None]:
    """Load one configuration. A path that does not exist is the user's mistake (UserError);
    a value the spec refuses only fails that configuration (returns its message)."""
    grid = lambda text: text.replace("--set ", "--grid ")  # noqa: E731 - the user typed --grid
    try:
        return load_pipeline(file, overrides), None
    except ConfigError as exc:
        unknown = [p for p in exc.problems if "unknown field" in p]
        if unknown:
            raise UserError(grid(unknown[0])) from None
        return None, grid(" / ".join(exc.problems))
    except UserError as exc:  # an override naming no stage
        raise UserError(grid(str(exc))) from None


def plan_runs(file: Path, configs: list[tuple[str, ...]], seed_list: list[int | None], out: Path,
              make_task: Callable[..., Task]):
    """A task per (configuration, seed) whose pipeline validates, a ``failed`` outcome per one
    whose values the spec refuses, and the loaded pipelines by run index.

    Raises:
        UserError: an override path that does not exist, or no configuration valid at all.
    """
    tasks, invalid, pipelines = [], [], {}
    for number, overrides in enumerate(configs):
        for seed in seed_list:
            index = len(tasks) + len(invalid)
            seed_part = [f"seed={seed}"] if seed is not None else []
            task = make_task(index, number, overrides, seed,
                             out / f"{index:03d}-{_label([*overrides, *seed_part])}")
            pipeline, error = _load_config(file, task.all_overrides())
            if pipeline is None:
                invalid.append({"index": index, "config": number, "overrides": list(overrides),
                                "seed": seed, "run_dir": None, "status": "failed",
                                "metric": None, "error": f"invalid: {error}", "stages": [],
                                "seconds": 0.0})
            else:
                tasks.append(task)
                pipelines[index] = pipeline
    if invalid and not tasks:
        raise UserError(f"every configuration is invalid; the first: "
                        f"{invalid[0]['error'].removeprefix('invalid: ')}")
    return tasks, invalid, pipelines


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


def check_options(axes: list[Axis], seeds: int | None, jobs: int | None, backend: str,
                  scheduler: str | None, mode: str | None) -> None:
    """Raise a one-line UserError for a sweep option that cannot work."""
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend}: unknown backend; choose one of "
                        f"{', '.join(BACKENDS)}")
    if scheduler and backend != "dask":
        raise UserError("--scheduler needs --backend dask")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs {jobs}: must be at least 1")
    if seeds is not None and seeds < 1:
        raise UserError(f"--seeds {seeds}: must be at least 1")
    if seeds is not None and any(a.path == "seed" for a in axes):
        raise UserError("--seeds and --grid seed=...: give the seeds one way only")
    if mode not in (None, "min", "max"):
        raise UserError(f"--mode {mode}: choose min or max")
    if backend == "dask":
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            raise UserError("--backend dask: dask is not installed "
                            "(pip install 'nnpipe[dask]')") from None


def capped(option: str, value: int | None, cores: int, warn: Callable[[str], None]) -> int:
    """``value`` (default: ``cores``), at most ``cores``: more workers or BLAS threads than cores
    only make every run slower. A capped value is reported with one warning line."""
    if value is None:
        return cores
    if value > cores:
        warn(f"{option} {value}: more than the {cores} core(s) this process may use; "
             f"using {cores}")
        return cores
    return value


def workers(jobs: int | None, threads: int | None, scheduler: str | None,
            warn: Callable[[str], None]) -> tuple[int, int]:
    """(runs at a time, BLAS threads per run): by default every core and cores / jobs; on this
    machine (no ``scheduler``: a remote cluster's size is not this machine's) capped at the
    cores."""
    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads}: must be at least 1")
    cores = default_jobs()
    if not scheduler:
        jobs = capped("--jobs", jobs, cores, warn)
        threads = capped("--threads", threads, cores, warn) if threads is not None else None
    jobs = jobs or cores
    return jobs, threads or max(1, cores // jobs)


def _warn(message: str) -> None:
    import sys

    print(f"warning: {message}", file=sys.stderr)


def run_sweep(file: Path, axes: list[Axis], *, seeds: int | None = None, jobs: int | None = None,
              backend: str = "loky", scheduler: str | None = None, out: Path | None = None,
              cache_dir: Path, data_dir: Path | None = None, metric: str = "val_accuracy",
              mode: str | None = None, fixed: Iterable[str] = (), threads: int | None = None,
              echo: Callable[[str], None] = lambda line: None,
              warn: Callable[[str], None] = _warn) -> SweepResult:
    """Run the sweep and write ``sweep.csv``, ``sweep.json`` and ``best.yaml`` into ``out``.

    ``fixed`` holds ``--set`` overrides applied to every run before its grid values; ``threads``
    the BLAS threads of each run (default: the cores divided by ``jobs``, at least 1). On this
    machine (no ``scheduler``) ``jobs`` and ``threads`` are capped at the core count.

    Raises:
        UserError: bad options, an unknown override path, dask missing for ``--backend dask``,
            an ``out`` nnpipe may not write (``pipeline.io.outputs``).
    """
    check_options(axes, seeds, jobs, backend, scheduler, mode)
    jobs, threads = workers(jobs, threads, scheduler, warn)
    mode = mode or metric_mode(metric)
    started = time.perf_counter()
    file = Path(file).resolve()
    fixed = tuple(fixed)
    base = load_pipeline(file, fixed)
    configs = configurations(axes)
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
    best_file = None
    if rows and rows[0]["status"] == "ok":
        best_file = out / "best.yaml"
        write_best(best_file, file, rows[0], metric, fixed)
    info = {"pipeline": str(file), "metric": metric, "mode": mode, "backend": backend,
            "scheduler": scheduler, "jobs": jobs, "threads_per_job": threads, "set": list(fixed),
            "grid": {a.path: list(a.values) for a in axes}, "seeds": seeds, "cache_dir":
            str(cache_dir), "seconds": round(seconds, 3),
            "seed_comparison": seed_sentence(rows, seeds)}
    write_json(out / "sweep.json", {"format": SWEEP_FORMAT, "status": "done", **info,
                                    "shared": shared, "configurations": rows, "runs": outcomes})
    write_text(out / "sweep.csv", to_csv(rows, metric, axes))
    return SweepResult(out, rows, outcomes, shared, seconds, best_file, info)


def seed_sentence(rows: list[dict], seeds: int | None) -> str | None:
    """Welch's t-test between the two best complete configurations, as a sentence; None
    without several seeds."""
    if not seeds or seeds < 2:
        return None
    comparison = compare_best([(" ".join(r["overrides"]) or "base", r["values"]) for r in rows
                               if r["status"] == "ok"])
    return comparison.sentence() if comparison else None


def _run_all(tasks, invalid, pipelines, cache_dir, data_dir, echo, metric, headline):
    """Warm the cache with the shared stages, then run every task; return the outcomes (by run
    index, invalid configurations included) and the shared-stage counts."""
    keys_by_run, shared_keys, warm_reports = warm_shared_stages(pipelines, cache_dir, data_dir)
    shared = _shared_counts(shared_keys, warm_reports, keys_by_run, pipelines)
    if shared["stages"]:
        echo(f"shared stages computed before the runs: {', '.join(shared['ids'])}")
    echo(headline)

    def report(outcome: dict) -> None:
        value = f"{metric} {outcome['metric']:.4f}" if outcome["metric"] is not None else ""
        what = " ".join([*outcome["overrides"], *([f"seed={outcome['seed']}"]
                                                  if outcome["seed"] is not None else [])])
        echo(f"  run {outcome['index']:>3} {outcome['status']:<6} {value:<24} "
             f"{outcome['seconds']:7.1f}s  {what}"
             + (f"  ({outcome['error']})" if outcome["error"] else ""))

    for outcome in invalid:
        report(outcome)
    outcomes = execute(tasks, report) if tasks else []
    outcomes = sorted(outcomes + invalid, key=lambda o: o["index"])
    return outcomes, _shared_counts(shared_keys, warm_reports, keys_by_run, pipelines, outcomes)


def _shared_counts(shared_keys: set[str], warm_reports, keys_by_run, pipelines,
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
    ids = []
    for run, keys in keys_by_run.items():
        for stage_id, key in zip(pipelines[run].stage_ids(), keys):
            if key in shared_keys and stage_id not in ids:
                ids.append(stage_id)
    return {"stages": len(shared_keys), "ids": ids, "ran": sum(ran.values()),
            "ran_per_stage_max": max(ran.values(), default=0), "cached": sum(cached.values()),
            "runs_loading_all_shared_from_cache": runs_cached,
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


def write_best(path: Path, file: Path, row: dict, metric: str, fixed: Iterable[str] = (),
               what: str = "a sweep") -> None:
    """The pipeline file with the best configuration's overrides applied, every default resolved;
    ``what`` names the search in the header (``a sweep``, ``a tune study``)."""
    pipeline = load_pipeline(file, [*fixed, *row["overrides"]])
    mean = f"{row['mean']:.4f}" + (f" ± {row['std']:.4f}" if row["runs"] > 1 else "")
    header = (f"# best of {what} of {file}: {metric} {mean}\n"
              f"# overrides: {' '.join([*fixed, *row['overrides']]) or '(none)'}\n")
    write_text(path, header + yaml.safe_dump(pipeline.resolved(), sort_keys=False))
