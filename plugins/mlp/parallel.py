"""Elementwise work over several cores: a flat array cut into contiguous blocks, one per thread.

The matrix products already run on every core the user allows (OpenBLAS threads); the
elementwise passes (an optimiser's update over the P parameters) are NumPy ufunc loops on one
core. NumPy releases the GIL inside a ufunc loop, so the same chain of ufuncs run on block 0 by
the calling thread and on block 1 by a pool thread runs on two cores at once (so do the compiled
loops of ``fused.py``, which release it too). Every operation is
elementwise, so each entry sees exactly the operations, in the same order, that the
single-threaded pass applies to it: the result is bit-for-bit the same whatever the thread count.

    lanes = Lanes.for_size(P)               # threads the user allows; 1 below MIN_BLOCK per thread
    lanes.run(chain, (params, grads, m, v), 0.9, 1e-3)
        # chain(params[b], grads[b], m[b], v[b], 0.9, 1e-3) for each block b, all at once

Threads pay only when a core is free: ``Lanes`` times both ways now and then and keeps the
faster (a loaded machine makes the hand-off to a pool thread slower than the work it saves).

The thread count is the one the user set for BLAS (``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS``,
``threadpoolctl.threadpool_limits``, ``nnpipe sweep --threads``), as threadpoolctl reports it, at
most the cores this process may run on: a user who asked for one thread gets no pool thread.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:  # imported by the first pool: a command that only reads specs never makes one
    from concurrent.futures import Future, ThreadPoolExecutor

#: Fewest elements per thread for a split to pay: a float32 ufunc pass costs about 4 us per 16K
#: elements, so a ten-pass chain of 64K elements is about 160 us, several hand-offs to a pool
#: thread and back (tens of us on an idle core; session 2 measured 0.12-0.37 ms on a busy one,
#: which is why ``Lanes`` also times both ways: benchmarks/README.md).
MIN_BLOCK = 65536
#: Each thread walks its block in pieces of at most this many elements, so that a chain's ten
#: passes find the piece (5 float32 vectors: 2.5 MB) in cache instead of memory: 1.86M parameters
#: measured 4.9 -> 4.2 ms of CPU per Adam step; under 128K elements per thread nothing changes.
CHUNK = 131072
#: ``Lanes`` times this many threaded and as many single-threaded calls at the start of every
#: ``PERIOD`` calls, and keeps the faster way (at most 8 calls in 256 run the slower way; a
#: loaded machine changes its mind often, so the choice is made again every 256 calls).
PROBES, PERIOD = 8, 256

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def allowed_threads() -> int:
    """The threads the user allows: the smallest BLAS thread limit threadpoolctl reports (every
    BLAS library loaded; the cores when none is), at most the cores this process may use."""
    from threadpoolctl import threadpool_info

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    limits = [int(info["num_threads"]) for info in threadpool_info()
              if info.get("user_api") == "blas" and info.get("num_threads")]
    return max(1, min([cores, *limits]))


def _executor(workers: int) -> ThreadPoolExecutor:
    """The process's pool of ``workers`` threads (created once; grown if more are asked for)."""
    from concurrent.futures import ThreadPoolExecutor

    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            old, _pool = _pool, ThreadPoolExecutor(workers, thread_name_prefix="nnpipe-elementwise")
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def _forget_pool_after_fork() -> None:
    """A forked child has none of the parent's threads: it starts its own pool when it needs one
    (a pool copied from the parent would queue work that no thread ever runs)."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


class Lanes:
    """Runs an elementwise function over ``threads`` contiguous blocks of flat arrays at once.

    With ``adapt`` (the default) it also keeps checking that the threads pay: in the first
    ``2 * PROBES`` calls of every ``PERIOD`` it alternates threaded and single-threaded runs, and
    until the next probe uses whichever gave the smaller median time from one call to the next
    (a whole training step). On a machine whose cores
    other jobs keep busy a hand-off to a pool thread can wait for milliseconds; the result is the
    same bit for bit either way, only the time differs."""

    def __init__(self, threads: int = 1, adapt: bool = True):
        self.threads = max(1, int(threads))
        self.adapt = adapt
        self._pool = _executor(self.threads - 1) if self.threads > 1 else None
        self._pid = os.getpid()
        self._calls, self._threaded = 0, True
        self._started, self._last = 0.0, True  # the last call's start and way
        self._times: dict[bool, list[float]] = {True: [], False: []}  # threaded? -> seconds

    @classmethod
    def for_size(cls, size: int, threads: int | None = None) -> "Lanes":
        """Lanes for arrays of ``size`` elements: ``threads`` (default: ``allowed_threads()``),
        fewer when a block would hold under ``MIN_BLOCK`` elements (one below 2 * MIN_BLOCK)."""
        wanted = allowed_threads() if threads is None else int(threads)
        return cls(max(1, min(wanted, int(size) // MIN_BLOCK)))

    def bounds(self, size: int) -> list[tuple[int, int]]:
        """(start, stop) of each block of ``size`` elements, in order, sizes within one of each
        other (the first blocks take the remainder)."""
        edges = np.linspace(0, size, self.threads + 1).astype(int)  # (threads + 1,)
        return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]

    def run(self, chain: Callable[..., Any], arrays: Sequence[np.ndarray], *scalars: Any) -> None:
        """``chain(*views, *scalars)`` for each block, ``views`` the block of every array in
        ``arrays`` (flat, all of one length); block 0 on the calling thread. An exception in any
        block is raised here, after every block has finished."""
        if self._pool is None:
            _walk(chain, arrays, 0, arrays[0].shape[0], scalars)
            return
        # Probing times whole steps, from one call to the next (the training step around the
        # update included): a pool thread can slow the matrix products after it, not only win
        # or lose on the update itself.
        now, phase = time.perf_counter(), self._calls % PERIOD
        self._calls += 1
        if self.adapt and 0 < phase <= 2 * PROBES:
            self._times[self._last].append(now - self._started)
        if self.adapt and phase == 2 * PROBES:  # the probe is complete: keep the faster way until the next
            on, off = (sorted(self._times[k])[PROBES // 2] for k in (True, False))
            self._threaded, self._times = on <= off, {True: [], False: []}
        threaded = phase % 2 == 0 if self.adapt and phase < 2 * PROBES else self._threaded
        self._started, self._last = now, threaded
        self._run(threaded, chain, arrays, scalars)

    def _run(self, threaded: bool, chain: Callable[..., Any], arrays: Sequence[np.ndarray],
             scalars: tuple) -> None:
        size = arrays[0].shape[0]
        if not threaded:
            _walk(chain, arrays, 0, size, scalars)
            return
        if self._pid != os.getpid():  # these lanes were made before a fork: the child's pool
            self._pool, self._pid = _executor(self.threads - 1), os.getpid()
        blocks = self.bounds(size)
        # the pool threads run in the caller's context: NumPy's errstate (the trainer silences
        # overflow warnings) lives in a context variable a new thread would not see
        context = contextvars.copy_context()
        futures: list[Future] = [self._pool.submit(context.copy().run, _walk, chain, arrays,
                                                   start, stop, scalars)
                                 for start, stop in blocks[1:]]
        try:
            _walk(chain, arrays, *blocks[0], scalars)
        finally:
            for future in futures:
                future.result()


def _walk(chain: Callable[..., Any], arrays: Sequence[np.ndarray], start: int, stop: int,
          scalars: tuple) -> None:
    """``chain`` over ``arrays[start:stop]`` in pieces of at most ``CHUNK`` elements, in order."""
    for begin in range(start, stop, CHUNK):
        end = min(begin + CHUNK, stop)
        chain(*(a[begin:end] for a in arrays), *scalars)


#: One thread, no pool: what an optimiser's state without lanes (``init_state`` alone) uses.
SERIAL = Lanes(1)
