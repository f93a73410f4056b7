"""benchmarks/blas_callback.py: its team of sleeping threads, the callback's install and removal,
and products under the callback bit for bit the same as OpenBLAS's own threads give."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("blas_callback", ROOT / "benchmarks" / "blas_callback.py")
blas_callback = importlib.util.module_from_spec(spec)
spec.loader.exec_module(blas_callback)


def test_the_team_runs_every_task_at_once_and_hands_back_a_workers_error():
    team = blas_callback.Team(2)
    try:
        # each task waits for the other two: run one after another they would never pass
        barrier, seen = threading.Barrier(3, timeout=10), []
        team.run([lambda i=i: (barrier.wait(), seen.append(i)) for i in range(3)])
        assert sorted(seen) == [0, 1, 2]

        def fails():
            raise KeyError("lane 1")

        done = []
        with pytest.raises(KeyError, match="lane 1"):
            team.run([lambda: done.append(0), fails, lambda: done.append(2)])
        assert sorted(done) == [0, 2]  # the other tasks still ran to the end
        team.run([lambda: done.append(3), lambda: done.append(4)])  # the error is not kept
        assert sorted(done) == [0, 2, 3, 4]
        with pytest.raises(ValueError, match="4 tasks for a team of 2"):
            team.run([lambda: None] * 4)
    finally:
        team.close()
    assert not [t for t in threading.enumerate() if t.name == "nnpipe-blas-team"]


def test_the_callback_is_removed_after_the_block_on_an_error_too():
    calls = []
    with pytest.raises(RuntimeError):
        with blas_callback.installed(calls.append, blas_callback.CALLBACK(lambda *a: None)):
            assert calls and calls[-1] is not None
            raise RuntimeError("a failing step")
    assert calls[-1] is None


def test_products_under_the_callback_are_bit_identical_and_go_through_it():
    setter = blas_callback.openblas_setter()
    if setter is None:
        pytest.skip("numpy's BLAS has no OpenBLAS threads callback")
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((96, 700), np.float32), rng.standard_normal((700, 600), np.float32)
    team, regions = blas_callback.Team(1), []
    callback = blas_callback.team_callback(team)
    try:
        with threadpool_limits(2, user_api="blas"):
            plain = [a @ b, a.T @ (a @ b), (a @ b) @ b.T]
            counting = blas_callback.CALLBACK(lambda *args: (regions.append(args[2]),
                                                             callback(*args)))
            with blas_callback.installed(setter, counting):
                via = [a @ b, a.T @ (a @ b), (a @ b) @ b.T]
    finally:
        team.close()
    assert regions and max(regions) == 2  # OpenBLAS handed its two jobs to the callback
    for p, v in zip(plain, via):
        assert np.array_equal(p, v)
