"""Replay pruning rules on the 24 learning curves of a kept ``tune_vs_grid.py`` grid.

Training is deterministic, so the grid's runs are the learning curves (validation accuracy per
epoch) every trial at those points would have. This script replays random orders of them on two
workers under a budget of epochs per worker, judging each trial at each epoch by a rule (the
median rule over complete trials with a warm-up, as ``pipeline.tune.study``, or Optuna's
percentile rule), and prints how often the best complete trial is within 0.3 points of the
grid's best. No sampler (the orders are random, not TPE) and no timing noise: it compares rules,
it does not predict a study. A trial of width 256 costs ``--wide-cost`` epochs per epoch.

    .venv/bin/python benchmarks/tune_vs_grid.py --seeds 1 --keep /tmp/tvg
    .venv/bin/python benchmarks/prune_replay.py /tmp/tvg/grid [--orders 2000] [--budget 75]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

#: (complete trials before judging, warm-up share of their epochs, percentile kept)
RULES = {"none": None, "median, after 2, warm-up 0.2 (the default)": (2, 0.2, 50),
         "median, after 2, warm-up 0.1": (2, 0.1, 50), "median, after 1, warm-up 0.1": (1, 0.1, 50),
         "median, after 4, warm-up 0.2": (4, 0.2, 50), "median, after 2, warm-up 1/3": (2, 1 / 3, 50),
         "percentile 25 kept, after 2, warm-up 0.1": (2, 0.1, 25),
         "percentile 25 kept, after 2, warm-up 0.2": (2, 0.2, 25)}


def curves(grid: Path) -> list[tuple[list[float], bool]]:
    """Each run's validation accuracy per epoch, and whether it is the wide (256) network."""
    runs = json.loads((grid / "sweep.json").read_text())["runs"]
    return [([e["val_accuracy"] for e in json.loads((Path(r["run_dir"]) / "history.json")
                                                    .read_text())], "[256]" in " ".join(r["overrides"]))
            for r in runs]


def pruned_at(curve: list[float], start: float, cost: float, rule, finished) -> int | None:
    """The epoch at which ``rule`` stops the trial (None: it completes). ``finished``: (end
    time, curve) of trials complete so far; the last epoch is never judged (as nnpipe)."""
    if rule is None:
        return None
    startup, share, kept = rule
    best = -1.0
    for step in range(1, len(curve)):
        best = max(best, curve[step - 1])
        done = [c for end, c in finished if end <= start + step * cost]
        if len(done) >= startup and step >= share * (len(curve) - 1) and \
                best < np.percentile([c[step - 1] for c in done], 100 - kept):
            return step
    return None


def replay(runs, order, budget: float, rule, wide_cost: float) -> float | None:
    """The best complete trial's final accuracy when trials start in ``order`` on 2 workers
    until each worker has spent ``budget`` epochs."""
    workers, finished = [0.0, 0.0], []
    for index in order:
        worker = min(range(2), key=lambda w: workers[w])
        start = workers[worker]
        if start >= budget:
            break
        curve, wide = runs[index]
        cost = wide_cost if wide else 1.0
        stop = pruned_at(curve, start, cost, rule, finished)
        workers[worker] = start + cost * (stop if stop is not None else len(curve))
        if stop is None:
            finished.append((workers[worker], curve))
    return max((c[-1] for _, c in finished), default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path, help="the grid folder tune_vs_grid.py --keep left")
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--budget", type=float, nargs="+", default=[65, 75, 85])
    parser.add_argument("--wide-cost", type=float, default=1.25)
    args = parser.parse_args()
    runs = curves(args.grid)
    target = max(c[-1] for c, _ in runs) - 0.003
    rng = random.Random(1)
    orders = [rng.sample(range(len(runs)), len(runs)) for _ in range(args.orders)]
    for budget in args.budget:
        print(f"budget {budget:g} epochs per worker ({args.orders} random orders):")
        for name, rule in RULES.items():
            bests = [replay(runs, o, budget, rule, args.wide_cost) for o in orders]
            hit = sum(1 for b in bests if b is not None and b >= target - 1e-9) / len(bests)
            print(f"  {name:44} within 0.3 points of the grid's best in {100 * hit:3.0f} %")


if __name__ == "__main__":
    main()
