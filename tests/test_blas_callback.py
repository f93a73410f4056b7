"""benchmarks/blas_callback.py: its team of sleeping threads, the callback's install and removal,
and products under the callback bit for bit the same as OpenBLAS's own threads give."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

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


#: run in a fresh interpreter: the callback is process-wide (a BLAS call of another test's
#: thread would go through it), and the suite's earlier tests leave OpenBLAS's threads as they like
PRODUCTS = """
import json, sys
import numpy as np
from threadpoolctl import threadpool_limits
sys.path.insert(0, sys.argv[1])
import blas_callback
setter = blas_callback.openblas_setter()
if setter is None:
    print(json.dumps(None)); raise SystemExit
rng = np.random.default_rng(3)
a, b = rng.standard_normal((96, 700), np.float32), rng.standard_normal((700, 600), np.float32)
team, regions = blas_callback.Team(1), []
callback = blas_callback.team_callback(team)
counting = blas_callback.CALLBACK(lambda *args: (regions.append(args[2]), callback(*args)))
with threadpool_limits(2, user_api="blas"):
    plain = [a @ b, a.T @ (a @ b), (a @ b) @ b.T]
    with blas_callback.installed(setter, counting):
        via = [a @ b, a.T @ (a @ b), (a @ b) @ b.T]
    after = len(regions)
    a @ b  # the callback is gone: OpenBLAS's own threads again
team.close()
print(json.dumps({"regions": regions, "after": after,
                  "same": [bool(np.array_equal(p, v)) for p, v in zip(plain, via)]}))
"""


def test_products_under_the_callback_are_bit_identical_and_go_through_it():
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: OpenBLAS makes no parallel region to hand over")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", PRODUCTS, str(ROOT / "benchmarks")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    if result is None:
        pytest.skip("numpy's BLAS has no OpenBLAS threads callback")
    # OpenBLAS handed each product's two jobs to the callback, and none once it was removed
    assert len(result["regions"]) >= 3 and set(result["regions"]) == {2}
    assert result["after"] == len(result["regions"])
    assert result["same"] == [True, True, True]
