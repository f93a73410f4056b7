"""Per-step schedules: one_cycle against PyTorch's OneCycleLR closed form, cosine with
warmup_steps, the rate the trainer uses at every step, history's lr / lr_end, and resuming."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from pipeline.spec import StageContext
from plugins.mlp.optim import SGD
from plugins.mlp.schedules import Cosine, OneCycle, Schedule, epoch_rates
from plugins.mlp.trainer import MLPTrain
from support import blobs

SEEN: list[float] = []  # the learning rate of every step the recording optimiser took


class RecordingSGD(SGD):
    """SGD that notes the rate of each step it is given."""

    kind: Literal["recording_sgd"] = "recording_sgd"

    def update(self, params, grads, state, lr):
        SEEN.append(lr)
        super().update(params, grads, state, lr)


def rates_seen(schedule, epochs: int = 3, batch_size: int = 16, lr: float = 0.1):
    """Every step's rate and the history, for 80 rows in batches of 16: 5 steps per epoch."""
    SEEN.clear()
    spec = MLPTrain(hidden=[8], epochs=epochs, batch_size=batch_size, schedule=schedule,
                    optimizer=RecordingSGD(lr=lr), seed=0)
    history = spec.run({"data": blobs(100)}, StageContext(seed=0))["history"]
    return list(SEEN), history


def one_cycle_formula(t: int, total: int, max_lr: float, pct_start: float, div: float,
                      final_div: float) -> float:
    """PyTorch's OneCycleLR (cos, two phases): phase 1 ends at step pct_start * total - 1,
    phase 2 at total - 1; anneal(start, end, pct) = end + (start - end) / 2 (cos(pi pct) + 1)."""
    initial, low = max_lr / div, max_lr / div / final_div
    up_end = pct_start * total - 1
    if t <= up_end:
        return max_lr + (initial - max_lr) / 2 * (math.cos(math.pi * t / up_end) + 1)
    return low + (max_lr - low) / 2 * (math.cos(math.pi * (t - up_end) / (total - 1 - up_end)) + 1)


def test_one_cycle_rates_are_pytorchs_formula_at_every_step():
    seen, history = rates_seen({"kind": "one_cycle", "max_lr": 0.4}, epochs=4)
    expected = [one_cycle_formula(t, 20, 0.4, 0.3, 25, 1e4) for t in range(20)]
    np.testing.assert_allclose(seen, expected, rtol=1e-12, atol=0)
    # landmarks: it starts at max_lr / 25, peaks at step 0.3 * 20 - 1 = 5, ends near max_lr / 25e4
    assert seen[0] == pytest.approx(0.016) and seen[5] == pytest.approx(0.4)
    assert seen[-1] == pytest.approx(0.4 / 25e4, rel=1e-9)
    assert [e.lr for e in history] == [seen[0], seen[5], seen[10], seen[15]]
    assert [e.lr_end for e in history] == [seen[4], seen[9], seen[14], seen[19]]


def test_one_cycle_takes_the_optimizers_lr_by_default_and_its_own_settings():
    seen, _ = rates_seen({"kind": "one_cycle", "pct_start": 0.5, "div_factor": 10,
                          "final_div_factor": 100}, epochs=2, lr=0.2)
    expected = [one_cycle_formula(t, 10, 0.2, 0.5, 10, 100) for t in range(10)]
    np.testing.assert_allclose(seen, expected, rtol=1e-12, atol=0)
    for bad in ({"pct_start": 1.5}, {"div_factor": 0}, {"max_lr": -1}, {"final_div_factor": 0}):
        with pytest.raises(ValidationError):
            OneCycle(**bad)


def test_a_phase_of_no_length_starts_at_its_start_rate():
    # pct_start * total - 1 = 0: PyTorch divides 0 by 0 at step 0; here it is the initial rate
    assert OneCycle(max_lr=1.0, pct_start=0.25).step_lr(0, 4, 0.1, []) == pytest.approx(0.04)


def test_cosine_warmup_steps():
    """Per step t of T = 15, W = 4: base * t / W while t < W, then
    base * (1 + cos(pi (t - W) / (T - W))) / 2."""
    seen, history = rates_seen({"kind": "cosine", "warmup_steps": 4})
    expected = [0.1 * t / 4 for t in range(4)] + [
        0.05 * (1 + math.cos(math.pi * (t - 4) / 11)) for t in range(4, 15)]
    np.testing.assert_allclose(seen, expected, rtol=1e-12, atol=1e-18)
    assert history[0].lr == 0.0 and history[-1].lr_end == pytest.approx(expected[-1])
    with pytest.raises(ValidationError, match="not both"):
        Cosine(warmup_steps=2, warmup_epochs=1)


def test_per_epoch_schedules_hold_the_rate_for_the_epoch():
    seen, history = rates_seen({"kind": "exponential", "gamma": 0.5})
    assert seen == [0.1] * 5 + [0.05] * 5 + [0.025] * 5
    assert [(e.lr, e.lr_end) for e in history] == [(0.1, 0.1), (0.05, 0.05), (0.025, 0.025)]
    seen, _ = rates_seen({"kind": "cosine"})  # without warmup_steps, cosine stays per epoch
    assert seen[:5] == [0.1] * 5 and len(set(seen[5:10])) == 1


class Halving(Schedule):
    """A third party's per-epoch schedule written before the per-step form existed."""

    kind: Literal["halving"] = "halving"

    def lr(self, epoch, base_lr, epochs, history):
        return base_lr / 2 ** (epoch - 1)


def test_a_schedule_with_only_the_per_epoch_form_keeps_working():
    assert epoch_rates(Halving(), 2, 1.0, 3, 4, []) == [0.5] * 4
    seen, _ = rates_seen(Halving())
    assert seen == [0.1] * 5 + [0.05] * 5 + [0.025] * 5
    with pytest.raises(NotImplementedError):
        Halving().step_lr(0, 10, 0.1, [])


def test_epoch_rates_are_python_floats():
    for schedule in (OneCycle(), Cosine(warmup_steps=3), Halving()):
        assert all(type(r) is float for r in epoch_rates(schedule, 1, 0.1, 2, 4, []))


@settings(max_examples=60, deadline=None)
@given(total=st.integers(2, 400), pct_start=st.floats(0.05, 0.95),
       div=st.floats(1.5, 100), final_div=st.floats(1.5, 1e5))
def test_one_cycle_stays_between_its_bounds_and_ends_at_the_lowest(total, pct_start, div,
                                                                 final_div):
    schedule = OneCycle(max_lr=1.0, pct_start=pct_start, div_factor=div, final_div_factor=final_div)
    rates = [schedule.step_lr(t, total, 0.1, []) for t in range(total)]
    low = 1.0 / div / final_div
    assert all(low * (1 - 1e-12) <= r <= 1.0 + 1e-12 for r in rates)
    assert rates[-1] == pytest.approx(low, rel=1e-9)
    peak = int(np.argmax(rates))
    assert all(a <= b + 1e-15 for a, b in zip(rates[:peak], rates[1:peak + 1]))  # rising
    assert all(a >= b - 1e-15 for a, b in zip(rates[peak:], rates[peak + 1:]))  # then falling
