"""Replay whole studies (nnpipe's TPE sampler and pruner) on a kept ``tune_vs_grid.py`` grid.

``prune_replay.py`` compares pruning rules on random orders; this adds the sampler. Each trial
TPE asks for is given the learning curve of the grid configuration nearest to it (the same
width; learning rate on a log scale and dropout, each measured in its range), and the study runs
on two simulated workers: every epoch is reported to the pruner at the time it would end (a wide
network's epoch costs the grid's own ratio of wide to narrow seconds), a trial asks the sampler
when a worker is free, and at the budget (epochs per worker, as ``tune --deadline``) the trials
still running stop (or ``--grace`` epochs later, as ``--timeout`` and a later
``--deadline``). ``--fits`` starts a trial only while the budget left can hold a trial's expected
length (the median of the complete trials' lengths so far): the "let late trials finish" rule.
Sampler seed k is tune's ``--sampler-seed k`` (the same ``sampler_seed(k, 0)``), so seeds 0-2
are the benchmark's three studies. It prints, per variant and over many sampler seeds, how often the best
complete trial is within 0.3 points of the grid's best, the mean gap, and the trials.

No timing noise and many seeds, but a surrogate: between the grid's points the accuracy is the
nearest point's, so it compares sampler and pruner settings; it does not predict a real study.

    .venv/bin/python benchmarks/tune_vs_grid.py --seeds 1 --keep /tmp/tvg
    .venv/bin/python benchmarks/tpe_replay.py /tmp/tvg/grid [--seeds 40] [--budget 150 120]
        [--grace EPOCHS|inf] [--fits] [--variants "as shipped" median ...]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import warnings
from pathlib import Path

import optuna

from pipeline.tune.space import parse_param
from pipeline.tune.study import make_pruner, make_sampler, sampler_seed

SPACE = ["mlp_train.optimizer.lr=float(1e-3,1e-2,log)", "mlp_train.hidden=choice([128],[256])",
         "mlp_train.dropout=float(0,0.3)"]
LR, HIDDEN, DROPOUT = (text.partition("=")[0] for text in SPACE)
#: variant name -> (TPESampler settings, or None for nnpipe's own; pruner; warm-up share)
VARIANTS = {
    "as shipped (TPE 2 start-up, median, warm-up 0.2)": (None, "median", 0.2),
    "median, warm-up 0.1": (None, "median", 0.1),
    "quartile, warm-up 0.1": (None, "quartile", 0.1),
    "TPE 5 start-up, median, warm-up 0.1": ({"n_startup_trials": 5}, "median", 0.1),
    "TPE consider_endpoints, median, warm-up 0.1": ({"consider_endpoints": True}, "median", 0.1),
    "TPE 64 EI candidates, median, warm-up 0.1": ({"n_ei_candidates": 64}, "median", 0.1),
    "TPE 8 start-up, median, warm-up 0.1": ({"n_startup_trials": 8}, "median", 0.1),
    "TPE without the constant liar, median, warm-up 0.1": ({"constant_liar": False}, "median",
                                                           0.1),
    "random sampler, median, warm-up 0.1": ("random", "median", 0.1),
}


def grid_runs(grid: Path) -> list[dict]:
    """Each grid run: its parameters, learning curve (validation accuracy per epoch), seconds."""
    runs = []
    for run in json.loads((grid / "sweep.json").read_text())["runs"]:
        values = dict(text.split("=", 1) for text in run["overrides"])
        history = json.loads((Path(run["run_dir"]) / "history.json").read_text())
        runs.append({"lr": float(values[LR]), "hidden": values[HIDDEN],
                     "dropout": float(values[DROPOUT]), "seconds": run["seconds"],
                     "curve": [epoch["val_accuracy"] for epoch in history]})
    return runs


def nearest(runs: list[dict], params: dict) -> dict:
    """The grid run nearest to a trial's parameters (the same width)."""
    hidden = params[HIDDEN] if isinstance(params[HIDDEN], str) else json.dumps(params[HIDDEN])
    same = [r for r in runs if r["hidden"].replace(" ", "") == hidden.replace(" ", "")]
    return min(same, key=lambda r: (math.log10(r["lr"] / params[LR])) ** 2 +
               ((r["dropout"] - params[DROPOUT]) / 0.3) ** 2)


def sampler_for(settings, seed: int):
    """nnpipe's TPE sampler, Optuna's random one, or TPE with ``settings`` changed."""
    if settings is None:
        return make_sampler("tpe", [], seed)
    if settings == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optuna.samplers.TPESampler(**{"seed": seed, "n_startup_trials": 2,
                                             "multivariate": True, "constant_liar": True,
                                             **settings})


def one_study(runs, variant, seed: int, budget: float, wide_cost: float,
              grace: float = 0.0, fits: bool = False) -> tuple:
    """One simulated study; (best complete value or None, trials, complete trials, the epoch
    its last trial ended). No trial starts after ``budget`` (``tune --timeout``), the running
    ones stop ``grace`` epochs later (``--deadline``; 0: at the budget, inf: never). ``fits``:
    nor one the budget left cannot hold, by the median length of the complete trials so far."""
    settings, pruner, warmup = variant
    study = optuna.create_study(direction="maximize", sampler=sampler_for(settings, seed),
                                pruner=make_pruner(pruner, warmup))
    space = {p.path: p.distribution() for p in map(parse_param, SPACE)}
    workers: list[dict | None] = [None, None]  # the trial each runs: trial, curve, cost, start
    clock = [0.0, 0.0]
    lengths: list[float] = []  # epochs (in narrow ones) each complete trial took
    while True:
        for w in (0, 1):
            if workers[w] is None and _may_start(clock[w], budget, lengths if fits else []):
                trial = study.ask(space)
                run = nearest(runs, trial.params)
                workers[w] = {"trial": trial, "curve": run["curve"], "epoch": 0,
                              "start": clock[w],
                              "cost": wide_cost if run["hidden"] == "[256]" else 1.0}
        busy = [w for w in (0, 1) if workers[w] is not None]
        if not busy:
            break
        w = min(busy, key=lambda k: clock[k] + workers[k]["cost"])  # the next epoch to end
        _advance(study, workers, clock, w, budget + grace, lengths)
    complete = [t.value for t in study.trials if t.state.name == "COMPLETE"]
    return (max(complete) if complete else None), len(study.trials), len(complete), max(clock)


def _may_start(now: float, budget: float, lengths: list[float]) -> bool:
    """Whether a free worker starts a trial at ``now``: before the budget, and (``lengths``
    given: the complete trials' lengths) while the budget left holds their median."""
    return now < budget and (not lengths or now + statistics.median(lengths) <= budget)


def _advance(study, workers, clock, w: int, budget: float, lengths: list | None = None) -> None:
    """Worker ``w`` runs one epoch: reported and judged, completed (its length appended to
    ``lengths``), or stopped at the budget."""
    job = workers[w]
    clock[w] += job["cost"]
    job["epoch"] += 1
    trial, curve, epoch = job["trial"], job["curve"], job["epoch"]
    if epoch == len(curve):  # the last epoch is the result, never judged
        study.tell(trial, curve[-1])
        if lengths is not None:
            lengths.append(clock[w] - job.get("start", 0.0))
        workers[w] = None
        return
    trial.report(curve[epoch - 1], epoch)
    if clock[w] >= budget or trial.should_prune():
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        workers[w] = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path, help="the grid folder tune_vs_grid.py --keep left")
    parser.add_argument("--seeds", type=int, default=40, help="sampler seeds per variant")
    parser.add_argument("--budget", type=float, nargs="+", default=[150, 120])
    parser.add_argument("--grace", type=float, default=0.0,
                        help="epochs after the budget the running trials stop (0: at it, as "
                             "tune --deadline; inf: they finish, as --timeout)")
    parser.add_argument("--fits", action="store_true",
                        help="start no trial the budget left cannot hold (the median length of "
                             "the complete trials so far)")
    parser.add_argument("--variants", nargs="+", default=None,
                        help="the first words of the variants to run (default: all)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs = grid_runs(args.grid)
    wide = [r["seconds"] for r in runs if r["hidden"] == "[256]"]
    narrow = [r["seconds"] for r in runs if r["hidden"] != "[256]"]
    wide_cost = (sum(wide) / len(wide)) / (sum(narrow) / len(narrow))
    target = max(r["curve"][-1] for r in runs)
    print(f"grid best {target:.4f}; a wide epoch costs {wide_cost:.2f} narrow ones")
    for budget in args.budget:
        print(f"budget {budget:g} epochs per worker (running trials stop {args.grace:g} later"
              f"{'; no trial starts that cannot fit' if args.fits else ''}), {args.seeds} "
              f"sampler seeds:")
        for name, variant in VARIANTS.items():
            if args.variants and not any(name.startswith(v) for v in args.variants):
                continue
            results = [one_study(runs, variant, sampler_seed(seed, 0), budget, wide_cost,
                                 args.grace, args.fits) for seed in range(args.seeds)]
            gaps = [100 * (target - best) if best is not None else 100.0
                    for best, *_ in results]
            hit = sum(g <= 0.3 + 1e-9 for g in gaps) / len(gaps)
            trials = sum(r[1] for r in results) / len(results)
            complete = sum(r[2] for r in results) / len(results)
            ends = [r[3] for r in results]
            print(f"  {name:46} within 0.3: {100 * hit:3.0f} %, mean gap "
                  f"{sum(gaps) / len(gaps):.2f}, trials {trials:4.1f} ({complete:.1f} complete), "
                  f"ends at {sum(ends) / len(ends):.0f} (at most {max(ends):.0f}); seeds 0-2 "
                  f"{', '.join(f'{g:.2f}' for g in gaps[:3])}")


if __name__ == "__main__":
    main()
