"""OpenBLAS's own job partition on sleeping threads: whole training steps, today against the
threads callback against PyTorch (issue #14's speed goals; the figures are in README.md).

NumPy's bundled OpenBLAS (>= 0.3.27) can hand each parallel region to a caller's function
instead of its own worker threads, which spin for about 2^28 cycles after every product and so
share the second core with anything nnpipe runs there (Adam's second lane). This benchmark
installs such a callback, a ctypes function that runs job 0 on the calling thread and jobs 1..n-1
on a ``Team`` of threads sleeping on locks (no spinning), and runs Adam's lanes on the same team:

    callback(sync, dojob, numjobs, elsize, jobdata, dojob_data):
        dojob(i, jobdata + i * elsize, dojob_data) for every i at once   (level-3 jobs wait on
                                                                          each other)

The products stay OpenBLAS's own partition and kernels, so the weights are checked bit for bit
against today's run. Printed per network: ms per step (fastest of ``--repeats`` interleaved
blocks of steps, the first third of each block a warm-up so the previous variant's spinning
threads have settled), the ratios, the load average, and the round trip the callback adds to one
product. Where the callback is missing (another BLAS, an older OpenBLAS) it says so and stops.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/blas_callback.py
    ... benchmarks/blas_callback.py --only 1024b32 default --repeats 5
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import ctypes
import os
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: the setter's name in NumPy's wheel (symbols suffixed ``64_``) and in a plain OpenBLAS
SETTERS = ("scipy_openblas_set_threads_callback_function64_",
           "openblas_set_threads_callback_function")
DOJOB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t,
                            ctypes.c_void_p, ctypes.c_int)
#: name -> (widths, batch, batch norm?)
NETWORKS = {"1024b32": ((1024, 1024), 32, False), "1024b512": ((1024, 1024), 512, False),
            "default": ((256, 128), 128, False), "bn": ((256, 128), 128, True),
            "64b32": ((64, 32), 32, False)}


class Team:
    """``size`` threads that sleep on a lock until given work: ``run(tasks)`` runs ``tasks[0]``
    on the calling thread and ``tasks[i]`` on thread i - 1, all at once, and returns when all
    are done (the first exception raised, after every task has finished)."""

    def __init__(self, size: int):
        self._workers: list[dict[str, Any]] = []
        for _ in range(size):
            worker = {"go": _thread.allocate_lock(), "done": _thread.allocate_lock(),
                      "task": None, "error": None}
            worker["go"].acquire()
            worker["done"].acquire()
            threading.Thread(target=self._serve, args=(worker,), daemon=True,
                             name="nnpipe-blas-team").start()
            self._workers.append(worker)

    @staticmethod
    def _serve(worker: dict[str, Any]) -> None:
        while True:
            worker["go"].acquire()  # sleeps (a futex), no spinning
            task = worker["task"]
            if task is None:  # close()
                worker["done"].release()
                return
            try:
                task()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller of run()
                worker["error"] = exc
            worker["done"].release()

    def run(self, tasks: Sequence[Callable[[], Any]]) -> None:
        if len(tasks) - 1 > len(self._workers):
            raise ValueError(f"{len(tasks)} tasks for a team of {len(self._workers)} + 1")
        workers = self._workers[:len(tasks) - 1]
        for worker, task in zip(workers, tasks[1:]):
            worker["task"] = task
            worker["go"].release()
        try:
            tasks[0]()
        finally:
            for worker in workers:
                worker["done"].acquire()
        errors = [w["error"] for w in workers if w["error"] is not None]
        for worker in workers:
            worker["error"] = None
        if errors:
            raise errors[0]

    def close(self) -> None:
        """End every thread (each finishes its task first)."""
        for worker in self._workers:
            worker["task"] = None
            worker["go"].release()
            worker["done"].acquire()
        self._workers = []


def openblas_setter() -> Callable[[Any], None] | None:
    """NumPy's OpenBLAS threads-callback setter, or None (another BLAS, OpenBLAS < 0.3.27)."""
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info.get("internal_api") != "openblas":
            continue
        library = ctypes.CDLL(info["filepath"])
        for name in SETTERS:
            setter = getattr(library, name, None)
            if setter is not None:
                setter.argtypes, setter.restype = [ctypes.c_void_p], None
                return setter
    return None


def team_callback(team: Team) -> Any:
    """The C callback: job 0 here, the others on ``team`` (one per thread, all at once)."""
    functions: dict[int, Any] = {}  # dojob address -> ctypes function (OpenBLAS passes one)

    def callback(sync: int, dojob: int, numjobs: int, elsize: int, jobdata: int,
                 data: int) -> None:
        run = functions.get(dojob) or functions.setdefault(dojob, DOJOB(dojob))
        if numjobs == 1:
            run(0, jobdata, data)
            return
        team.run([partial(run, i, jobdata + i * elsize, data) for i in range(numjobs)])

    return CALLBACK(callback)


@contextlib.contextmanager
def installed(setter: Callable[[Any], None], callback: Any) -> Iterator[None]:
    """``callback`` handles OpenBLAS's parallel regions inside the block, none after it (on an
    exception too)."""
    setter(ctypes.cast(callback, ctypes.c_void_p))
    try:
        yield
    finally:
        setter(None)


def team_lanes(team: Team, threads: int) -> Any:
    """``plugins.mlp.parallel.Lanes`` whose blocks run on ``team`` (always threaded)."""
    from plugins.mlp import parallel

    class TeamLanes(parallel.Lanes):
        def _run(self, threaded: bool, chain: Any, arrays: Any, scalars: tuple) -> None:
            team.run([partial(parallel._walk, chain, arrays, a, b, scalars)
                      for a, b in self.bounds(arrays[0].shape[0])])

    return TeamLanes(threads, adapt=False)


def nnpipe_step(widths: Sequence[int], batch: int, bn: bool, team: Team | None):
    """(one training step of nnpipe's: gather, forward, loss, backward, hooks, Adam, the model);
    Adam's lanes on ``team`` when given, today's lanes otherwise."""
    from plugins.mlp import losses
    from plugins.mlp.diagnostics import LayerDiagnostics
    from plugins.mlp.model import MLP
    from plugins.mlp.optim import Adam

    rng = np.random.default_rng(0)
    x = rng.random((10000, 784), dtype=np.float32)  # (n, d)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 10000)]  # (n, k)
    layers = [entry for w in widths for entry in
              ({"kind": "dense", "units": w}, {"kind": "batch_norm"}, "relu")] if bn else None
    model = MLP([784, 10], init="he_uniform", rng=0, layers=layers) if bn else \
        MLP([784, *widths, 10], init="he_uniform", rng=0)
    adam = Adam(lr=1e-3)
    state = adam.start(model.params)
    if team is not None and state["_lanes"].threads > 1:
        state["_lanes"] = team_lanes(team, state["_lanes"].threads)
    hooks = LayerDiagnostics(model, 10000 // batch)
    xb, yb = np.empty((batch, 784), np.float32), np.empty((batch, 10), np.float32)

    def step(i: int) -> None:
        rows = rng.integers(0, 10000, batch)  # (b,)
        np.take(x, rows, axis=0, out=xb, mode="clip")
        np.take(y, rows, axis=0, out=yb, mode="clip")
        gradient = losses.value_and_gradient(model.loss_fn, model.forward(xb, rng), yb)[1]
        model.backward(gradient)
        hooks.after_backward(i % 32 + 1)
        adam.step(model.params, model.grads, state, 1e-3)
        hooks.after_update()

    return step, model


def torch_step(widths: Sequence[int], batch: int, bn: bool):
    """PyTorch's step on the same network: Linear (+ BatchNorm1d) + ReLU, Adam, cross-entropy."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    modules: list[Any] = []
    fan_in = 784
    for width in widths:
        modules += [nn.Linear(fan_in, width), *([nn.BatchNorm1d(width)] if bn else []),
                    nn.ReLU()]
        fan_in = width
    model = nn.Sequential(*modules, nn.Linear(fan_in, 10))
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    X, Y = torch.rand(10000, 784), torch.randint(0, 10, (10000,))
    loss = nn.CrossEntropyLoss()

    def step(i: int) -> None:
        rows = torch.randint(0, 10000, (batch,))
        adam.zero_grad()
        loss(model(X[rows]), Y[rows]).backward()
        adam.step()

    return step


def ms_per_step(step: Callable[[int], None], steps: int) -> float:
    for i in range(steps // 3):  # warm-up: the previous variant's spinning threads settle
        step(i)
    started = time.perf_counter()
    for i in range(steps):
        step(i)
    return (time.perf_counter() - started) / steps * 1e3


def compare(name: str, setter: Any, team: Team, callback: Any, repeats: int) -> str:
    """One network's line: today, the callback and PyTorch, interleaved, fastest of each."""
    widths, batch, bn = NETWORKS[name]
    steps = max(100, int(400000 / (batch * (1 + widths[0] * widths[1] / 30000))))
    today, today_model = nnpipe_step(widths, batch, bn, None)
    ours, ours_model = nnpipe_step(widths, batch, bn, team)
    theirs = torch_step(widths, batch, bn)
    times: dict[str, list[float]] = {"today": [], "callback": [], "torch": []}
    for _ in range(repeats):
        times["today"].append(ms_per_step(today, steps))
        with installed(setter, callback):
            times["callback"].append(ms_per_step(ours, steps))
        times["torch"].append(ms_per_step(theirs, steps))
    best = {k: min(v) for k, v in times.items()}
    same = np.array_equal(today_model.params, ours_model.params)
    return (f"{name:9s} ms/step: today {best['today']:.3f}  callback {best['callback']:.3f}  "
            f"torch {best['torch']:.3f} | today/torch {best['today'] / best['torch']:.2f}x  "
            f"callback/torch {best['callback'] / best['torch']:.2f}x  callback/today "
            f"{best['callback'] / best['today']:.2f}x | same weights: {same} | load "
            f"{os.getloadavg()[0]:.2f}")


def round_trips(setter: Any, callback: Any) -> list[str]:
    """What the callback adds to one product (us, fastest of 5 x 200 calls, both ways)."""
    rng, lines = np.random.default_rng(0), []
    for m, k, n in [(32, 784, 1024), (32, 1024, 1024), (512, 1024, 1024), (128, 784, 256),
                    (128, 256, 128), (32, 784, 64)]:
        a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        product = partial(np.matmul, a, b, out=out)
        plain = 1e6 * min(_timed(product, 200) for _ in range(5))
        with installed(setter, callback):
            via = 1e6 * min(_timed(product, 200) for _ in range(5))
        lines.append(f"  {m}x{k} @ {k}x{n}: OpenBLAS's threads {plain:.0f} us, callback "
                     f"{via:.0f} us ({via - plain:+.0f})")
    return lines


def _timed(f: Callable[[], Any], calls: int) -> float:
    f()
    started = time.perf_counter()
    for _ in range(calls):
        f()
    return (time.perf_counter() - started) / calls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import torch
    from bench_layers import kernel

    setter = openblas_setter()
    print(f"numpy BLAS {kernel()}; torch {torch.__version__} {torch.get_num_threads()} thr; "
          f"load {os.getloadavg()[0]:.2f}")
    if setter is None:
        print("numpy's BLAS has no OpenBLAS threads callback (>= 0.3.27): nothing to compare")
        return
    from plugins.mlp.parallel import allowed_threads

    team = Team(allowed_threads() - 1)  # OpenBLAS makes at most that many jobs per region
    callback = team_callback(team)
    print("per product:", *round_trips(setter, callback), sep="\n")
    for name in args.only:
        print(compare(name, setter, team, callback, args.repeats), flush=True)
    team.close()


if __name__ == "__main__":
    main()
