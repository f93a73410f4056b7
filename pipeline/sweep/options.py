"""A sweep's options checked before anything runs, and the runs and BLAS threads at a time."""

from __future__ import annotations

import sys
from typing import Callable

from pipeline.errors import UserError
from pipeline.sweep.backend import BACKENDS, default_jobs, require_dask
from pipeline.sweep.grid import Axis

#: The most seeds a configuration is repeated over: a run per seed is planned up front, and a
#: thousand runs of one configuration already measure its spread to a few percent.
MAX_SEEDS = 1000


def check_options(axes: list[Axis], seeds: int | None, jobs: int | None, backend: str,
                  scheduler: str | None) -> None:
    """Raise a one-line UserError for a sweep (or tune) option that cannot work."""
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend}: unknown backend; choose one of "
                        f"{', '.join(BACKENDS)}")
    if scheduler and backend != "dask":
        raise UserError("--scheduler needs --backend dask")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs {jobs}: must be at least 1")
    if seeds is not None and not 1 <= seeds <= MAX_SEEDS:
        raise UserError(f"--seeds {seeds}: must be at least 1 and at most {MAX_SEEDS}")
    if seeds is not None and any(a.path == "seed" for a in axes):
        raise UserError("--seeds and --grid seed=...: give the seeds one way only")
    if backend == "dask":
        require_dask()


def warn(message: str) -> None:
    """A warning line on stderr (what the library does when no caller gave its own ``warn``)."""
    print(f"warning: {message}", file=sys.stderr)


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
