"""One optimiser step of nnpipe against PyTorch CPU, same run: the parameters of the benchmark
network (784-256-128-10, 235,146 float32 values), a fixed random gradient, every optimiser with
PyTorch's defaults (and RMSprop with momentum and centering). nnpipe updates its one flat vector;
PyTorch its six tensors with the default implementation (foreach). The two run interleaved, the
order alternating; the script prints the fastest of ``--repeats`` timings of ``--steps`` steps
each, in milliseconds per step, the ratio nnpipe / PyTorch, and the BLAS kernel.

    make bench                                   # the bench extra (torch), once
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_optimizers.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SHAPES = [(784, 256), (256,), (256, 128), (128,), (128, 10), (10,)]
CASES = [("sgd", dict(momentum=0.9), dict(momentum=0.9)), ("adam", {}, {}),
         ("rmsprop", {}, {}), ("rmsprop", dict(momentum=0.9, centered=True),
                              dict(momentum=0.9, centered=True)),
         ("adagrad", {}, {}), ("nadam", {}, {})]
TORCH_NAMES = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop", "adagrad": "Adagrad",
               "nadam": "NAdam"}


def timed(step, steps: int) -> float:
    """Milliseconds per call of ``step`` over ``steps`` calls."""
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps * 1e3


def nnpipe_step(kind: str, hyper: dict, grads: np.ndarray):
    from pipeline.registry import default_registry
    from plugins.mlp import optim

    optimizer = default_registry().load("optimizers", kind, check=optim.check)(lr=1e-3, **hyper)
    params = np.random.default_rng(1).normal(size=grads.size).astype(np.float32)  # (P,)
    state = optimizer.start(params)
    return lambda: optimizer.step(params, grads, state, 1e-3)


def torch_step(kind: str, hyper: dict, grads: np.ndarray):
    import torch

    tensors, offset = [], 0
    for shape in SHAPES:
        size = int(np.prod(shape))
        t = torch.zeros(shape, requires_grad=True)
        t.grad = torch.from_numpy(grads[offset:offset + size].reshape(shape).copy())
        tensors.append(t)
        offset += size
    optimizer = getattr(torch.optim, TORCH_NAMES[kind])(tensors, lr=1e-3, **hyper)
    return optimizer.step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    torch.set_num_threads(args.threads)
    size = sum(int(np.prod(s)) for s in SHAPES)
    grads = np.random.default_rng(0).normal(scale=1e-2, size=size).astype(np.float32)  # (P,)
    with threadpool_limits(args.threads):
        blas = [(i["internal_api"], i.get("architecture"), i["num_threads"])
                for i in threadpool_info()]
        print(f"{size:,} float32 parameters; torch {torch.__version__}, {args.threads} thread(s); "
              f"BLAS {blas}")
        for kind, ours, theirs in CASES:
            steps = {"nnpipe": nnpipe_step(kind, ours, grads), "torch": torch_step(kind, theirs, grads)}
            best = {name: float("inf") for name in steps}
            for repeat in range(args.repeats):
                for name in (sorted(steps) if repeat % 2 else sorted(steps, reverse=True)):
                    best[name] = min(best[name], timed(steps[name], args.steps))
            label = kind + (f" {ours}" if ours else "")
            print(f"{label:45s} nnpipe {best['nnpipe']:.3f} ms  torch {best['torch']:.3f} ms  "
                  f"ratio {best['nnpipe'] / best['torch']:.2f}")


if __name__ == "__main__":
    main()
