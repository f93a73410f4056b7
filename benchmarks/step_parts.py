"""Where one training step's time goes, part by part, in nnpipe and in PyTorch (same shapes):

    gather    the batch's rows (np.take into the batch buffer / X[rows])
    gemm      each dense layer's three products: forward x @ W (+ bias), dW = x.T @ dy,
              dx = dy @ W.T (the first layer computes no dx, on both sides)
    bias      the bias add (forward) and its gradient (ones @ dy / dy.sum(0))
    relu      forward and backward
    loss      softmax cross-entropy, value and gradient
    update    Adam's step over every parameter
    hooks     the diagnostics' per-step hooks (nnpipe; PyTorch has none)
    step      one whole training step (the sum of the above, plus Python between them)

Each part is the fastest of ``--repeats`` timings of ``--calls`` calls (the minimum: other jobs
on a shared machine only ever slow a call down), on ``--threads`` threads, wall clock (or, on a
loaded machine, ``--threads 1 --clock cpu``: the process's CPU time). The parts are timed alone,
each on data already in cache, so their sum is below the whole step (where Adam's pass over the
parameters evicts the weights the next products read).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/step_parts.py \\
        --net 1024-1024 --batch 32
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_layers  # noqa: E402
from bench_layers import CLOCK, kernel, kernels  # noqa: E402

LR = 1e-3


def best(f: Callable[[], Any], calls: int, repeats: int) -> float:
    """``f``'s fastest time per call in ms (bench_layers' ``per_call``), after one warm-up call
    (buffers allocated, pool threads started)."""
    f()
    return 1e3 * bench_layers.per_call(f, calls, repeats)


def nnpipe_parts(x, labels, widths, batch, time_it) -> dict[str, float]:
    """The parts of one nnpipe step (plugins.mlp: the model, Adam on its lanes, the hooks)."""
    from plugins.mlp import losses
    from plugins.mlp.diagnostics import LayerDiagnostics
    from plugins.mlp.model import MLP
    from plugins.mlp.optim import Adam

    model = MLP([x.shape[1], *widths, 10], init="he_uniform", rng=0)
    y = np.eye(10, dtype=np.float32)[labels]  # (n, k)
    rng, adam = np.random.default_rng(0), Adam(lr=LR)
    state = adam.start(model.params)
    hooks = LayerDiagnostics(model, x.shape[0] // batch)
    rows = rng.permutation(x.shape[0])[:batch]
    xb, yb = np.empty((batch, x.shape[1]), np.float32), np.empty((batch, 10), np.float32)
    parts: dict[str, float] = {}
    parts["gather"] = time_it(lambda: (np.take(x, rows, axis=0, out=xb, mode="clip"),
                                       np.take(y, rows, axis=0, out=yb, mode="clip")))
    out = model.forward(xb, rng)
    grad = losses.value_and_gradient(model.loss_fn, out, yb)[1]
    model.backward(grad)
    a, gemm, bias, relu = xb, 0.0, 0.0, 0.0
    ones = np.ones(batch, np.float32)
    for i, (W, b, dW, db) in enumerate(zip(model.W, model.b, model.dW, model.db)):
        z = np.empty((batch, W.shape[1]), np.float32)
        dz = np.ones_like(z) * 0.01
        dx = np.empty((batch, W.shape[0]), np.float32)
        fwd = time_it(lambda: np.matmul(a, W, out=z))
        dw = time_it(lambda: np.matmul(a.T, dz, out=dW))
        bwd = time_it(lambda: np.matmul(dz, W.T, out=dx)) if i else 0.0
        parts[f"gemm {W.shape[0]}x{W.shape[1]} fwd/dW/dx"] = (fwd, dw, bwd)
        gemm += fwd + dw + bwd
        bias += time_it(lambda: np.add(z, b, out=z)) + time_it(lambda: np.matmul(ones, dz, out=db))
        if i < len(widths):
            from plugins.mlp.activations import relu_backprop, relu_into
            act = np.empty_like(z)
            relu += time_it(lambda: relu_into(z, act)) + time_it(lambda: relu_backprop(dz, z, act))
            a = act
    parts["gemm total"], parts["bias add + grad"], parts["relu fwd + bwd"] = gemm, bias, relu
    parts["loss"] = time_it(lambda: losses.value_and_gradient(model.loss_fn, out, yb))
    parts["update (Adam)"] = time_it(lambda: adam.step(model.params, model.grads, state, LR))
    parts["hooks"] = time_it(lambda: (hooks.after_backward(2), hooks.after_update()))

    def step() -> None:
        np.take(x, rows, axis=0, out=xb, mode="clip")
        np.take(y, rows, axis=0, out=yb, mode="clip")
        output = model.forward(xb, rng)
        model.backward(losses.value_and_gradient(model.loss_fn, output, yb)[1])
        hooks.after_backward(2)
        adam.step(model.params, model.grads, state, LR)
        hooks.after_update()

    parts["whole step"] = time_it(step)
    return parts


def torch_parts(x, labels, widths, batch, time_it) -> dict[str, float]:
    """The same parts in PyTorch: nn.Linear's addmm and mm, relu, cross_entropy, Adam."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    sizes = [x.shape[1], *widths, 10]
    linears = [nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:])]
    layers: list = []
    for linear in linears[:-1]:
        layers += [linear, nn.ReLU()]
    model = nn.Sequential(*layers, linears[-1])
    adam = torch.optim.Adam(model.parameters(), lr=LR)
    X, Y = torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))
    rows = torch.randperm(X.shape[0])[:batch]
    parts: dict[str, float] = {}
    parts["gather"] = time_it(lambda: (X[rows], Y[rows]))
    xb, yb = X[rows], Y[rows]
    a, gemm, bias, relu = xb, 0.0, 0.0, 0.0
    with torch.no_grad():
        for i, linear in enumerate(linears):
            Wt = linear.weight  # (out, in): forward is addmm(b, a, W.t())
            dz = torch.full((batch, Wt.shape[0]), 0.01)
            fwd = time_it(lambda: torch.addmm(linear.bias, a, Wt.t()))
            dw = time_it(lambda: torch.mm(dz.t(), a))  # autograd's grad_weight
            bwd = time_it(lambda: torch.mm(dz, Wt)) if i else 0.0
            parts[f"gemm {Wt.shape[1]}x{Wt.shape[0]} fwd/dW/dx"] = (fwd, dw, bwd)
            gemm += fwd + dw + bwd
            bias += time_it(lambda: dz.sum(0))
            z = torch.addmm(linear.bias, a, Wt.t())
            if i < len(widths):
                relu += time_it(lambda: torch.relu(z)) + time_it(
                    lambda: torch.ops.aten.threshold_backward(dz, z, 0))
                a = torch.relu(z)
    parts["gemm total"], parts["bias add + grad"], parts["relu fwd + bwd"] = gemm, bias, relu
    logits = model(xb).detach().requires_grad_()

    def loss() -> None:
        value = nn.functional.cross_entropy(logits, yb)
        value.backward()
        logits.grad = None
    parts["loss"] = time_it(loss)
    nn.functional.cross_entropy(model(xb), yb).backward()
    parts["update (Adam)"] = time_it(adam.step)
    parts["hooks"] = 0.0

    def step() -> None:
        rows_b = X[rows], Y[rows]
        adam.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(rows_b[0]), rows_b[1]).backward()
        adam.step()

    parts["whole step"] = time_it(step)
    return parts


def torch_blas(torch: Any) -> str:
    """The BLAS PyTorch was built with (``BLAS_INFO`` of its build configuration)."""
    found = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return found.group(1) if found else "?"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="256-128", help="hidden widths, e.g. 1024-1024")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--clock", choices=list(CLOCK), default="wall")
    args = parser.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    from bench_fashion import load

    torch.set_num_threads(args.threads)
    x, labels, _, _ = load(Path("../shared/datasets"))
    x, labels = np.ascontiguousarray(x[:args.rows], np.float32), np.asarray(labels[:args.rows])
    widths = tuple(int(w) for w in args.net.split("-"))
    bench_layers.clock = CLOCK[args.clock]

    def time_it(f):
        return best(f, args.calls, args.repeats)

    with threadpool_limits(limits=args.threads):
        mine = nnpipe_parts(x, labels, widths, args.batch, time_it)
        theirs = torch_parts(x, labels, widths, args.batch, time_it)
        print(f"784-{args.net}-10 batch {args.batch}, {args.threads} threads, {args.clock} clock, ms per "
              f"step (fastest of {args.repeats} x {args.calls} calls); numpy BLAS {kernel()}; torch "
              f"{torch.__version__} BLAS {torch_blas(torch)}; nnpipe kernels {kernels()}")
    print(f"| part | nnpipe ms | PyTorch ms | ratio |\n| --- | --- | --- | --- |")
    for name, value in mine.items():
        other = theirs.get(name, 0.0)
        if isinstance(value, tuple):
            print(f"| {name} | {' / '.join(f'{v:.3f}' for v in value)} | "
                  f"{' / '.join(f'{v:.3f}' for v in other)} | "
                  f"{sum(value) / max(sum(other), 1e-9):.2f}x |")
        else:
            print(f"| {name} | {value:.3f} | {other:.3f} | "
                  f"{value / other if other else float('nan'):.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
