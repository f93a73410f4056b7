"""An extra cross-check against PyTorch itself, where it is installed (the ``bench`` extra): the
required oracles are the hand-written rules in test_optim_torch_rules.py, test_regularize.py
and test_schedules_per_step.py; this confirms they are PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest

from plugins.mlp.losses import cross_entropy_weighted
from plugins.mlp.optim import Adagrad, NAdam, Optimizer, RMSprop
from plugins.mlp.schedules import OneCycle

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
START, GRADS = RNG.normal(size=7), RNG.normal(size=(15, 7))  # (7,), 15 steps of (7,)


def ours(optimizer: Optimizer) -> np.ndarray:
    params = START.copy()
    state = optimizer.start(params)
    for g in GRADS:
        optimizer.step(params, g + 0.3 * params, state, optimizer.lr)
    return params


def theirs(cls, **hyper) -> np.ndarray:
    w = torch.tensor(START.copy(), dtype=torch.float64, requires_grad=True)
    optimizer = cls([w], **hyper)
    for g in GRADS:
        w.grad = torch.tensor(g) + 0.3 * w.detach()
        optimizer.step()
    return w.detach().numpy()


@pytest.mark.parametrize("mine, cls, hyper", [
    (RMSprop(lr=0.02, alpha=0.9, momentum=0.7, centered=True, weight_decay=0.1), "RMSprop",
     dict(lr=0.02, alpha=0.9, momentum=0.7, centered=True, weight_decay=0.1)),
    (Adagrad(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.5, weight_decay=0.05), "Adagrad",
     dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.5, weight_decay=0.05)),
    (NAdam(lr=0.05, beta1=0.8, beta2=0.95, momentum_decay=0.1, weight_decay=0.2), "NAdam",
     dict(lr=0.05, betas=(0.8, 0.95), momentum_decay=0.1, weight_decay=0.2)),
], ids=["rmsprop", "adagrad", "nadam"])
def test_optimizers_match_torch(mine, cls, hyper):
    # torch keeps its step counters and NAdam's mu_product in the default dtype: float64 here,
    # as ours are (in float32 NAdam would differ by ~5e-8 through mu_product alone)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        expected = theirs(getattr(torch.optim, cls), **hyper)
    finally:
        torch.set_default_dtype(default)
    np.testing.assert_allclose(ours(mine), expected, rtol=1e-12)


def test_one_cycle_matches_torch():
    w = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.4, total_steps=37,
                                                    cycle_momentum=False)
    expected = []
    for _ in range(37):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    got = [OneCycle(max_lr=0.4).step_lr(t, 37, 0.1, []) for t in range(37)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_class_weighted_cross_entropy_matches_torch(smoothing):
    z, labels, weight = RNG.normal(size=(9, 4)), RNG.integers(0, 4, 9), RNG.uniform(0.2, 3, 4)
    zt = torch.tensor(z, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(zt, torch.tensor(labels), weight=torch.tensor(weight),
                                             label_smoothing=smoothing)
    loss.backward()
    value, grad = cross_entropy_weighted(z, labels, weight, smoothing)
    assert value == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10, atol=1e-15)
