"""nnpipe against PyTorch CPU and scikit-learn's MLPClassifier on Fashion-MNIST, same network,
same machine, same run: 784-256-128-10, ReLU, softmax cross-entropy, Adam lr 1e-3, batch 128,
float32, 3 epochs, no weight decay; nnpipe and PyTorch start from He-uniform weights and zero
biases (scikit-learn has no choice: its own Glorot-uniform). The three trainers run interleaved
(the order rotates every repeat) and the script prints the median seconds per epoch, the test
accuracy and the ratios.

    make bench                                   # creates .venv with the bench extra, runs this
    .venv/bin/python benchmarks/bench_fashion.py --repeats 5 --threads 2

Timing covers the training epochs only (shuffling, batching, forward, backward, update), not data
loading or evaluation. Every framework uses the same number of threads (``--threads``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

EPOCHS, BATCH, LR, HIDDEN = 3, 128, 1e-3, (256, 128)


def load(data_dir: Path):
    from plugins.idx import read_idx

    folder = data_dir / "fashion-mnist"
    x = read_idx(folder / "train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    y = read_idx(folder / "train-labels-idx1-ubyte.gz").astype(np.int64)
    xt = read_idx(folder / "t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    yt = read_idx(folder / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return x, y, xt, yt


def run_nnpipe(x, y, xt, yt, seed):
    from pipeline.artifacts import Dataset, Split
    from pipeline.spec import StageContext
    from plugins.mlp.trainer import MLPTrain

    spec = MLPTrain(hidden=list(HIDDEN), activation="relu", loss="cross_entropy", init="he_uniform",
                    optimizer={"kind": "adam", "lr": LR}, batch_size=BATCH, epochs=EPOCHS,
                    dtype="float32")
    data = Dataset({"train": Split(x, y)})
    started = time.perf_counter()
    out = spec.run({"data": data}, StageContext(seed=seed))
    seconds = (time.perf_counter() - started) / EPOCHS
    accuracy = float(np.mean(out["model"].predict(xt) == yt))
    return seconds, accuracy


def run_torch(x, y, xt, yt, seed):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]),
                          nn.ReLU(), nn.Linear(HIDDEN[1], 10))
    for layer in model:  # the initialisation nnpipe's run uses: He uniform weights, zero biases
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    started = time.perf_counter()
    for _ in range(EPOCHS):
        order = torch.randperm(X.shape[0])
        for start in range(0, X.shape[0], BATCH):
            rows = order[start:start + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[rows]), Y[rows])
            loss.backward()
            optimizer.step()
    seconds = (time.perf_counter() - started) / EPOCHS
    with torch.no_grad():
        accuracy = float((model(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean())
    return seconds, accuracy


def run_sklearn(x, y, xt, yt, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", solver="adam",
                          learning_rate_init=LR, batch_size=BATCH, max_iter=EPOCHS, alpha=0.0,
                          shuffle=True, tol=0.0, n_iter_no_change=EPOCHS + 1, random_state=seed)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    seconds = (time.perf_counter() - started) / EPOCHS
    return seconds, float(np.mean(model.predict(xt) == yt))


RUNNERS = {"nnpipe": run_nnpipe, "pytorch": run_torch, "sklearn": run_sklearn}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", 2)))
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("NNPIPE_DATA", "../shared/datasets")))
    parser.add_argument("--only", nargs="*", default=list(RUNNERS), choices=list(RUNNERS))
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits
    import torch

    torch.set_num_threads(args.threads)
    x, y, xt, yt = load(args.data_dir)
    print(f"Fashion-MNIST {x.shape[0]} train / {xt.shape[0]} test; 784-256-128-10 relu, Adam "
          f"lr {LR}, batch {BATCH}, float32, {EPOCHS} epochs; {args.threads} threads; "
          f"{args.repeats} interleaved repeats", flush=True)
    from bench_layers import cpu_name, kernel, kernels  # here: bench_layers imports this module

    results: dict[str, list[tuple[float, float]]] = {name: [] for name in args.only}
    with threadpool_limits(limits=args.threads):
        print(f"CPU {cpu_name()}; numpy BLAS {kernel()}; torch {torch.__version__}; nnpipe "
              f"kernels {kernels()}", flush=True)
        for repeat in range(args.repeats):
            names = args.only[repeat % len(args.only):] + args.only[:repeat % len(args.only)]
            for name in names:
                seconds, accuracy = RUNNERS[name](x, y, xt, yt, seed=repeat)
                results[name].append((seconds, accuracy))
                print(f"  repeat {repeat + 1}  {name:8s} {seconds:6.2f} s/epoch  "
                      f"test accuracy {accuracy:.4f}", flush=True)

    print(f"\n{'':10s}{'s/epoch (median)':>18s}{'test accuracy (median)':>25s}")
    medians = {}
    for name, rows in results.items():
        medians[name] = (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
        print(f"{name:10s}{medians[name][0]:18.3f}{medians[name][1]:25.4f}")
    if "nnpipe" in medians:
        for other, target in (("pytorch", 0.8), ("sklearn", 0.6)):
            if other in medians:
                ratio = medians["nnpipe"][0] / medians[other][0]
                gap = 100 * (medians["nnpipe"][1] - medians[other][1])
                print(f"nnpipe / {other}: {ratio:.2f}x time (target <= {target}x), accuracy "
                      f"{gap:+.2f} points ({'ok' if ratio <= target and gap >= -0.5 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
