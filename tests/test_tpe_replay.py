"""benchmarks/tpe_replay.py: the nearest grid point, one simulated epoch, a whole simulated study."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import optuna
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("tpe_replay", ROOT / "benchmarks" / "tpe_replay.py")
replay = importlib.util.module_from_spec(spec)
spec.loader.exec_module(replay)


def run(lr, hidden, dropout, curve=(0.5, 0.6, 0.7)):
    return {"lr": lr, "hidden": hidden, "dropout": dropout, "seconds": 1.0, "curve": list(curve)}


RUNS = [run(1e-3, "[128]", 0.0), run(1e-2, "[128]", 0.3), run(1e-3, "[256]", 0.3)]


def point(lr, hidden, dropout):
    return {replay.LR: lr, replay.HIDDEN: hidden, replay.DROPOUT: dropout}


def test_the_nearest_grid_run_has_the_same_width_and_the_closest_log_lr_and_dropout():
    # 2e-3: 0.30 decades from 1e-3, 0.70 from 1e-2; dropout 0.1: a third of the range from 0
    assert replay.nearest(RUNS, point(2e-3, "[128]", 0.1)) is RUNS[0]
    # 5e-3 with dropout 0.3: (0.70^2 + 1) against (0.30^2 + 0)
    assert replay.nearest(RUNS, point(5e-3, "[128]", 0.3)) is RUNS[1]
    assert replay.nearest(RUNS, point(1e-2, [256], 0.0)) is RUNS[2]  # the only wide one


@pytest.mark.parametrize("budget, state, value", [(10.0, "COMPLETE", 0.7), (1.5, "PRUNED", 0.6)])
def test_an_epoch_is_reported_judged_and_the_last_one_is_the_result(budget, state, value):
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    workers = [{"trial": study.ask(), "curve": [0.5, 0.6, 0.7], "epoch": 0, "cost": 1.0}, None]
    clock = [0.0, 0.0]
    while workers[0] is not None:
        replay._advance(study, workers, clock, 0, budget)
    trial = study.trials[0]
    assert (trial.state.name, trial.value) == (state, value)
    assert trial.intermediate_values == {1: 0.5, 2: 0.6}  # the last epoch is never reported
    assert clock[0] == (3.0 if state == "COMPLETE" else 2.0)


def test_a_study_without_pruning_runs_two_workers_until_the_budget():
    # three epochs a trial, 6 epochs per worker: trials start at 0 and 3 on each worker
    best, trials, complete, end = replay.one_study(RUNS, (None, "none", 0.2), seed=0,
                                                   budget=6.0, wide_cost=1.0)
    assert (trials, complete, best, end) == (4, 4, 0.7, 6.0)
    # 4 epochs per worker: the trials started at 3 are stopped at the budget, after epoch 1
    assert replay.one_study(RUNS, (None, "none", 0.2), 0, 4.0, 1.0)[1:] == (4, 2, 4.0)
    # a grace of 1 epoch: they stop after epoch 2; of inf: they finish (as --timeout)
    assert replay.one_study(RUNS, (None, "none", 0.2), 0, 4.0, 1.0, 1.0)[1:] == (4, 2, 5.0)
    assert replay.one_study(RUNS, (None, "none", 0.2), 0, 4.0, 1.0, float("inf"))[1:] == \
        (4, 4, 6.0)


def test_with_fits_a_late_trial_is_not_started_and_the_running_ones_finish():
    # three epochs a trial, 4 per worker: the two trials started at 0 complete at 3; then 1
    # epoch is left, less than their length (3), so neither worker starts another
    assert replay.one_study(RUNS, (None, "none", 0.2), 0, 4.0, 1.0, fits=True)[1:] == (2, 2, 3.0)
    # 6 per worker: 3 are left after the first trials, which holds one more on each
    assert replay.one_study(RUNS, (None, "none", 0.2), 0, 6.0, 1.0, fits=True)[1:] == (4, 4, 6.0)


@pytest.mark.parametrize("now, lengths, starts", [
    (0.0, [], True), (3.9, [], True), (4.0, [], False),  # no complete trial yet: the budget
    (1.0, [3.0], True), (1.5, [3.0, 2.0, 9.0], False),  # median 3: 1.5 + 3 > 4
    (1.0, [2.0, 4.0], True)])  # the median of an even count: 3, and 1 + 3 <= 4
def test_a_trial_starts_while_the_budget_left_holds_the_median_length(now, lengths, starts):
    assert replay._may_start(now, 4.0, lengths) is starts
