"""Where the runs execute: joblib, on loky (processes on this machine) or Dask (any cluster).

The backend is chosen with ``joblib.parallel_config`` for a ``with engine(...)`` block, entered
before anything runs, so an unreachable scheduler fails at once. The cache folder must be one all
workers see (a shared file system for a remote cluster): workers load the shared stages from it.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator

from pipeline.errors import UserError

BACKENDS = ("loky", "dask")


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def require_dask() -> None:
    """Import Dask's distributed scheduler, or say how to install it (exit 2)."""
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        raise UserError("--backend dask: dask is not installed "
                        "(pip install 'nnpipe[dask]')") from None


def _dask(stack: ExitStack, jobs: int, scheduler: str | None) -> None:
    """A client of ``scheduler``, or of a local cluster of ``jobs`` single-threaded workers."""
    require_dask()
    from dask.distributed import Client, LocalCluster

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


@contextmanager
def engine(backend: str, jobs: int, scheduler: str | None, threads: int) -> Iterator[None]:
    """The joblib backend the runs go to, set with ``parallel_config`` for the ``with`` block.

    loky gets ``inner_max_num_threads`` (BLAS threads per worker); Dask workers limit theirs with
    threadpoolctl inside ``run_one``. With ``backend="dask"`` and no ``scheduler``, a local
    cluster of ``jobs`` single-threaded worker processes on 127.0.0.1 is started, and closed when
    the block ends.
    """
    from joblib import parallel_config

    with ExitStack() as stack:
        if backend == "dask":
            _dask(stack, jobs, scheduler)
            stack.enter_context(parallel_config(backend="dask", wait_for_workers_timeout=60))
        else:
            stack.enter_context(parallel_config(backend="loky", n_jobs=jobs,
                                                inner_max_num_threads=threads))
        yield


def execute(function: Callable[[Any], dict], tasks: list, on_result: Callable[[dict], None]
            ) -> list[dict[str, Any]]:
    """``function(task)`` for every task through ``joblib.Parallel`` on the backend of the
    enclosing ``engine``; call ``on_result`` with each outcome as it comes; return them in order."""
    from joblib import Parallel, delayed

    outcomes = []
    for outcome in Parallel(batch_size=1, return_as="generator")(
            delayed(function)(task) for task in tasks):
        on_result(outcome)
        outcomes.append(outcome)
    return outcomes
