"""Elementwise lanes: the threaded update equals the single-threaded one bit for bit, the user's
thread limit is respected, and the pool works after a fork."""

from __future__ import annotations

import multiprocessing
import threading
from types import SimpleNamespace
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from pipeline.artifacts import Dataset, Split
from pipeline.spec import StageContext
from plugins.mlp import parallel
from plugins.mlp.optim import SGD, Adagrad, Adam, AdamW, NAdam, RMSprop
from plugins.mlp.parallel import CHUNK, MIN_BLOCK, Lanes
from plugins.mlp.trainer import MLPTrain

P = 2 * CHUNK + 2 * MIN_BLOCK + 7  # two lanes of several pieces each, sizes not a multiple


def textbook_adam(params, grads_per_step, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """Adam as Kingma & Ba write it, in float64 (the oracle the float32 lanes are held to)."""
    p, m, v = params.astype(np.float64), np.zeros(params.size), np.zeros(params.size)
    for t, g in enumerate(grads_per_step, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return p


def descend(optimizer, lanes: Lanes, steps: int = 4, dtype=np.float32) -> np.ndarray:
    """Parameters (P,) after ``steps`` random-gradient steps of ``optimizer`` on ``lanes``."""
    rng = np.random.default_rng(3)
    params = rng.standard_normal(P).astype(dtype)
    state = optimizer.init_state(params)
    state["_lanes"] = lanes
    for _ in range(steps):
        optimizer.step(params, rng.standard_normal(P).astype(dtype), state, optimizer.lr)
    return params


@pytest.mark.parametrize("optimizer", [
    Adam(), AdamW(weight_decay=0.01), NAdam(), SGD(lr=0.1, momentum=0.9, nesterov=True),
    RMSprop(centered=True, momentum=0.9), RMSprop(), Adagrad(lr_decay=0.01)],
    ids=["adam", "adamw", "nadam", "sgd-nesterov", "rmsprop-centered-momentum", "rmsprop",
         "adagrad"])
def test_two_lanes_equal_one_bit_for_bit(optimizer):
    assert not np.array_equal(descend(optimizer, Lanes(1), steps=0), descend(optimizer, Lanes(1)))
    one, two, three = (descend(optimizer, Lanes(k, adapt=False)) for k in (1, 2, 3))
    assert one.dtype == np.float32
    assert np.array_equal(one, two) and np.array_equal(one, three)


def test_lanes_adam_matches_the_textbook_rule_in_float64():
    rng = np.random.default_rng(3)
    params = rng.standard_normal(P)
    grads = [rng.standard_normal(P) for _ in range(4)]
    np.testing.assert_allclose(descend(Adam(), Lanes(2, adapt=False), dtype=np.float64),
                               textbook_adam(params, grads), rtol=1e-12, atol=1e-15)


def test_blocks_cover_the_array_in_order_on_separate_threads():
    seen, lock = [], threading.Lock()

    def chain(a, b, offset):
        with lock:
            seen.append((threading.get_ident(), int(a[0]), a.size))
        np.add(a, offset, out=b)

    a, b = np.arange(P, dtype=np.float64), np.zeros(P)
    Lanes(2, adapt=False).run(chain, (a, b), 1.0)
    assert np.array_equal(b, a + 1)  # every element once
    assert len({ident for ident, _, _ in seen}) == 2  # the second lane on a pool thread
    assert sum(size for _, _, size in seen) == P and max(size for *_, size in seen) <= CHUNK
    assert Lanes(2).bounds(5) == [(0, 2), (2, 5)]


def test_an_error_in_a_pool_lane_is_raised_to_the_caller():
    def chain(a):
        if a[0] >= P // 2:
            raise FloatingPointError("lane 2")

    with pytest.raises(FloatingPointError, match="lane 2"):
        Lanes(2, adapt=False).run(chain, (np.arange(P, dtype=np.float64),))


def test_the_users_thread_limit_is_respected():
    with threadpool_limits(limits=1):
        assert parallel.allowed_threads() == 1
        assert Lanes.for_size(10 ** 7).threads == 1
        assert Adam().start(np.zeros(10 ** 6, np.float32))["_lanes"].threads == 1
    with threadpool_limits(limits=2):
        assert parallel.allowed_threads() == min(2, len(__import__("os").sched_getaffinity(0)))
    assert Lanes.for_size(2 * MIN_BLOCK - 1, threads=2).threads == 1  # too small to pay
    assert Lanes.for_size(2 * MIN_BLOCK, threads=2).threads == 2
    assert "_lanes" not in Adam().init_state(np.zeros(3, np.float32))  # init_state alone: serial


@pytest.mark.parametrize("slow", [True, False], ids=["threads-slow", "threads-fast"])
def test_adaptive_lanes_keep_the_faster_way(monkeypatch, slow):
    """Probing alternates both ways, then the faster one runs until the next probe.

    The lanes read a virtual clock that each call advances by a fixed cost (10 for the slower
    way, 1 for the faster), so the verdict does not depend on how busy the machine is."""
    lanes, used, clock = Lanes(2), [], [0.0]
    real = Lanes._run

    def timed(self, threaded, chain, arrays, scalars):
        used.append(threaded)
        clock[0] += 10.0 if threaded == slow else 1.0
        real(self, threaded, chain, arrays, scalars)

    monkeypatch.setattr(Lanes, "_run", timed)
    monkeypatch.setattr(parallel, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    a = np.zeros(P)
    for _ in range(2 * parallel.PROBES + 5):
        lanes.run(lambda x: np.add(x, 1, out=x), (a,))
    assert used[:2 * parallel.PROBES] == [True, False] * parallel.PROBES  # the probe
    assert used[2 * parallel.PROBES:] == [not slow] * 5  # then the faster way only
    assert np.all(a == 2 * parallel.PROBES + 5)  # every call did the work once


def _in_child(queue) -> None:
    a = np.zeros(P)
    Lanes(2, adapt=False).run(lambda x: np.add(x, 1, out=x), (a,))
    queue.put(float(a.sum()))


def test_lanes_work_in_a_forked_child():
    Lanes(2).run(lambda x: None, (np.zeros(P),))  # the parent's pool exists before the fork
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_in_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=30) == P
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()


def test_a_training_run_is_identical_with_one_or_two_lanes(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 784)).astype(np.float32)
    y = rng.integers(0, 10, 96)
    spec = MLPTrain(hidden=[256], epochs=2, batch_size=32, dropout=0.1)
    results = []
    for threads in (1, 2):
        monkeypatch.setattr(Lanes, "for_size", classmethod(lambda cls, size, t=None, k=threads:
                                                           cls(k, adapt=False)))
        out = spec.run({"data": Dataset({"train": Split(x, y)})}, StageContext(seed=1))
        results.append(out["model"].params.copy())
    assert results[0].size > 2 * MIN_BLOCK
    assert np.array_equal(results[0], results[1])


def test_omp_num_threads_1_keeps_the_update_on_one_thread():
    import os
    import subprocess
    import sys

    code = ("import numpy as np; from plugins.mlp.optim import Adam; "
            "print(Adam().start(np.zeros(10 ** 6, np.float32))['_lanes'].threads)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("OPENBLAS_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "1"


def test_pool_lanes_keep_the_callers_errstate():
    """The trainer silences overflow warnings around its steps; the pool lane must too."""
    def chain(a):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.multiply(a, np.float64(1e300), out=a)  # overflows to inf in every lane

    a = np.full(P, 1e300)
    with np.errstate(over="ignore"):
        Lanes(2, adapt=False).run(chain, (a,))
    assert np.all(np.isinf(a))
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        Lanes(2, adapt=False).run(chain, (np.full(P, 1e300),))
