"""benchmarks/prune_replay.py: its median rule and its two-worker replay, on hand-solved curves."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("prune_replay", ROOT / "benchmarks" / "prune_replay.py")
replay_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(replay_module)


def test_the_median_rule_prunes_below_the_complete_trials_median_after_its_warm_up():
    finished = [(0.0, [0.8] * 5), (0.0, [0.9] * 5)]  # the median is 0.85 at every epoch
    assert replay_module.pruned_at([0.5] * 5, 0.0, 1.0, (2, 0.0, 50), finished) == 1
    assert replay_module.pruned_at([0.95] * 5, 0.0, 1.0, (2, 0.0, 50), finished) is None
    # warm-up: half of the 4 judged epochs, so the first judgement is at epoch 2
    assert replay_module.pruned_at([0.5] * 5, 0.0, 1.0, (2, 0.5, 50), finished) == 2
    # one complete trial is not enough for "after 2"; one finishing later is not seen yet
    assert replay_module.pruned_at([0.5] * 5, 0.0, 1.0, (2, 0.0, 50), finished[:1]) is None
    assert replay_module.pruned_at([0.5] * 5, 0.0, 1.0, (2, 0.0, 50),
                                   [(0.0, [0.8] * 5), (9.0, [0.9] * 5)]) is None


def test_the_replay_runs_two_workers_until_the_budget_and_keeps_the_best_complete():
    runs = [([0.8] * 4, False), ([0.9] * 4, False), ([0.5] * 4, False), ([0.95] * 4, True),
            ([0.5] * 4, False)]
    order = [0, 1, 2, 4, 3]
    # no pruning, 4 epochs per worker: trials 0 and 1 only
    assert replay_module.replay(runs, order, 4, None, 2.0) == 0.9
    # 5.5 epochs: trials 2 and 4 start at 4 and hold both workers until 8, past the budget
    assert replay_module.replay(runs, order, 5.5, None, 2.0) == 0.9
    # the median rule stops 2 and 4 at their first epoch, so trial 3 starts at 5 and completes
    assert replay_module.replay(runs, order, 5.5, (2, 0.0, 50), 2.0) == 0.95
