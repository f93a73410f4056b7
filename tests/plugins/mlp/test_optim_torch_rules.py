"""RMSprop, Adagrad and NAdam against PyTorch's documented update rules (torch.optim's algorithm
boxes), written out here as scalar Python, never by calling the implementation under test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.registry import default_registry
from plugins.mlp.checks import check_optimizer
from plugins.mlp.optim import SGD, Adagrad, Adam, AdamW, NAdam, Optimizer, RMSprop, check

# f(w) = sum_i c_i w_i^2 / 2, so the gradient is c * w: three independent coordinates with
# different curvatures and starting points (every rule below is elementwise).
CURVATURE = [1.0, 0.3, 4.0]
START = [1.0, -2.0, 0.5]


def descend(optimizer: Optimizer, steps: int, dtype=np.float64) -> np.ndarray:
    """The parameters after each of ``steps`` steps on f: (steps, 3)."""
    params = np.array(START, dtype=dtype)
    curvature = np.array(CURVATURE, dtype=dtype)
    state = optimizer.start(params)
    trace = []
    for _ in range(steps):
        optimizer.step(params, curvature * params, state, optimizer.lr)
        trace.append(params.astype(np.float64).copy())
    return np.array(trace)


def reference(rule, steps: int, **hyper) -> np.ndarray:
    """``rule`` (a scalar transcription of PyTorch's box) run on each coordinate: (steps, 3)."""
    columns = [rule(w, c, steps, **hyper) for w, c in zip(START, CURVATURE)]
    return np.array(columns).T


def rmsprop_rule(theta, c, steps, lr, alpha, eps, momentum, centered, weight_decay):
    v = b = g_ave = 0.0
    out = []
    for _ in range(steps):
        g = c * theta
        if weight_decay:
            g = g + weight_decay * theta
        v = alpha * v + (1 - alpha) * g * g
        v_tilde = v
        if centered:
            g_ave = g_ave * alpha + (1 - alpha) * g
            v_tilde = v_tilde - g_ave ** 2
        if momentum > 0:
            b = momentum * b + g / (math.sqrt(v_tilde) + eps)
            theta = theta - lr * b
        else:
            theta = theta - lr * g / (math.sqrt(v_tilde) + eps)
        out.append(theta)
    return out


def adagrad_rule(theta, c, steps, lr, lr_decay, eps, initial_accumulator_value, weight_decay):
    state_sum = initial_accumulator_value
    out = []
    for t in range(1, steps + 1):
        g = c * theta
        if weight_decay:
            g = g + weight_decay * theta
        clr = lr / (1 + (t - 1) * lr_decay)
        state_sum = state_sum + g * g
        theta = theta - clr * g / (math.sqrt(state_sum) + eps)
        out.append(theta)
    return out


def nadam_rule(theta, c, steps, lr, beta1, beta2, eps, momentum_decay, weight_decay):
    m = v = 0.0
    mu_product = 1.0
    out = []
    for t in range(1, steps + 1):
        g = c * theta
        if weight_decay:
            g = g + weight_decay * theta
        mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = (mu_next * m / (1 - mu_product * mu * mu_next)
                 + (1 - mu) * g / (1 - mu_product * mu))
        mu_product *= mu
        v_hat = v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(theta)
    return out


RMSPROP = dict(lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0)
ADAGRAD = dict(lr=0.01, lr_decay=0.0, eps=1e-10, initial_accumulator_value=0.0, weight_decay=0.0)
NADAM = dict(lr=0.002, beta1=0.9, beta2=0.999, eps=1e-8, momentum_decay=0.004, weight_decay=0.0)

CASES = {
    "rmsprop": (RMSprop, rmsprop_rule, RMSPROP, {}),
    "rmsprop-centered-momentum-decay": (RMSprop, rmsprop_rule, RMSPROP,
                                        dict(lr=0.05, alpha=0.9, momentum=0.8, centered=True,
                                             weight_decay=0.1)),
    "rmsprop-momentum": (RMSprop, rmsprop_rule, RMSPROP, dict(momentum=0.5, eps=1e-3)),
    "adagrad": (Adagrad, adagrad_rule, ADAGRAD, {}),
    "adagrad-decay-accumulator": (Adagrad, adagrad_rule, ADAGRAD,
                                  dict(lr=0.3, lr_decay=0.5, initial_accumulator_value=0.2,
                                       weight_decay=0.05, eps=1e-4)),
    "nadam": (NAdam, nadam_rule, NADAM, {}),
    "nadam-decay": (NAdam, nadam_rule, NADAM,
                    dict(lr=0.05, beta1=0.8, beta2=0.95, momentum_decay=0.1, weight_decay=0.2)),
}


def test_pytorch_names_and_defaults():
    assert RMSprop().model_dump() == {"kind": "rmsprop", "clip_norm": None, **RMSPROP}
    assert Adagrad().model_dump() == {"kind": "adagrad", "clip_norm": None, **ADAGRAD}
    assert NAdam().model_dump() == {"kind": "nadam", "clip_norm": None, **NADAM}
    for cls in (RMSprop, Adagrad, NAdam):
        assert check(cls) is None
        assert default_registry().load("optimizers", cls().kind, check=check) is cls
        check_optimizer(cls)  # what `nnpipe plugins --check` runs
    for bad in (dict(alpha=1.0), dict(momentum=-0.1), dict(eps=0), dict(weight_decay=-1),
                dict(centred=True)):
        with pytest.raises(ValidationError):
            RMSprop(**bad)
    for cls, bad in ((Adagrad, dict(lr_decay=-1)), (Adagrad, dict(initial_accumulator_value=-1)),
                     (NAdam, dict(beta2=1.0)), (NAdam, dict(momentum_decay=-1))):
        with pytest.raises(ValidationError):
            cls(**bad)


@pytest.mark.parametrize("name", sorted(CASES))
def test_steps_follow_pytorchs_documented_rule(name):
    cls, rule, defaults, changes = CASES[name]
    hyper = {**defaults, **changes}
    got = descend(cls(**hyper), 12)
    np.testing.assert_allclose(got, reference(rule, 12, **hyper), rtol=1e-9, atol=0)


# --- the first three steps, by hand ----------------------------------------------------------
# One coordinate, f(w) = w^2 / 2 from w0 = 1 (gradient w), eps so small it drops out.

def three_steps(optimizer: Optimizer) -> list[float]:
    params = np.array([1.0])
    state = optimizer.start(params)
    trace = []
    for _ in range(3):
        optimizer.step(params, params.copy(), state, optimizer.lr)
        trace.append(float(params[0]))
    return trace


def _rmsprop_by_hand() -> list[float]:
    # v1 = 0.01 * 1 = 0.01:                          w1 = 1 - 0.01 * 1 / 0.1 = 0.9
    # v2 = 0.99 * 0.01 + 0.01 * 0.81 = 0.018:        w2 = 0.9 - 0.01 * 0.9 / sqrt(0.018)
    # v3 = 0.99 * 0.018 + 0.01 * w2^2:               w3 = w2 - 0.01 * w2 / sqrt(v3)
    w2 = 0.9 - 0.009 / math.sqrt(0.018)
    v3 = 0.01782 + 0.01 * w2 ** 2
    return [0.9, w2, w2 - 0.01 * w2 / math.sqrt(v3)]


def _adagrad_by_hand() -> list[float]:
    # lr 0.1, lr_decay 0.5: clr = 0.1, 0.1 / 1.5, 0.1 / 2
    # sum1 = 1:              w1 = 1 - 0.1 * 1 / 1 = 0.9
    # sum2 = 1 + 0.81:       w2 = 0.9 - (0.1 / 1.5) * 0.9 / sqrt(1.81)
    # sum3 = 1.81 + w2^2:    w3 = w2 - 0.05 * w2 / sqrt(sum3)
    w2 = 0.9 - (0.1 / 1.5) * 0.9 / math.sqrt(1.81)
    return [0.9, w2, w2 - 0.05 * w2 / math.sqrt(1.81 + w2 ** 2)]


def _nadam_by_hand() -> list[float]:
    # lr 0.1, beta1 0.9, beta2 0.999, psi 0.004; mu_t = 0.9 (1 - 0.96^(0.004 t) / 2)
    mu1, mu2, mu3, mu4 = (0.9 * (1 - 0.5 * 0.96 ** (0.004 * t)) for t in (1, 2, 3, 4))
    # step 1: g = 1, m = 0.1, v = 0.001, v_hat = 1
    w1 = 1 - 0.1 * (mu2 * 0.1 / (1 - mu1 * mu2) + (1 - mu1) * 1 / (1 - mu1))
    # step 2: g = w1, m = 0.09 + 0.1 w1, v = 0.000999 + 0.001 w1^2, v_hat = v / (1 - 0.999^2)
    m2, v2 = 0.09 + 0.1 * w1, 0.000999 + 0.001 * w1 ** 2
    w2 = w1 - 0.1 * (mu3 * m2 / (1 - mu1 * mu2 * mu3) + (1 - mu2) * w1 / (1 - mu1 * mu2)) \
        / math.sqrt(v2 / (1 - 0.999 ** 2))
    # step 3: g = w2, m = 0.9 m2 + 0.1 w2, v = 0.999 v2 + 0.001 w2^2, v_hat = v / (1 - 0.999^3)
    m3, v3 = 0.9 * m2 + 0.1 * w2, 0.999 * v2 + 0.001 * w2 ** 2
    w3 = w2 - 0.1 * (mu4 * m3 / (1 - mu1 * mu2 * mu3 * mu4)
                     + (1 - mu3) * w2 / (1 - mu1 * mu2 * mu3)) / math.sqrt(v3 / (1 - 0.999 ** 3))
    return [w1, w2, w3]


@pytest.mark.parametrize("optimizer, by_hand", [
    (RMSprop(lr=0.01, eps=1e-15), _rmsprop_by_hand),
    (Adagrad(lr=0.1, lr_decay=0.5, eps=1e-15), _adagrad_by_hand),
    (NAdam(lr=0.1, eps=1e-15), _nadam_by_hand),
], ids=["rmsprop", "adagrad", "nadam"])
def test_first_three_steps_by_hand(optimizer, by_hand):
    np.testing.assert_allclose(three_steps(optimizer), by_hand(), rtol=1e-9, atol=0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_follows_the_float64_path(name):
    cls, _, defaults, changes = CASES[name]
    optimizer = cls(**{**defaults, **changes})
    np.testing.assert_allclose(descend(optimizer, 12, np.float32), descend(optimizer, 12),
                               rtol=2e-5, atol=1e-6)
    state = optimizer.start(np.zeros(3, dtype=np.float32))
    assert all(a.dtype == np.float32 for name, a in state.items()
               if name not in ("t", "mu_product"))


# --- weight decay outside the mask (decay_biases: false) --------------------------------------
# params (1, 2) with the mask (1, 0): only the first decays, as in a PyTorch parameter group of
# weight_decay=0 for the second.

def one_masked_step(optimizer: Optimizer, grads) -> list[float]:
    params = np.array([1.0, 2.0])
    state = optimizer.start(params, np.array([True, False]))
    optimizer.step(params, np.array(grads), state, optimizer.lr)
    return params.tolist()


def test_decay_mask_by_hand():
    # SGD lr 0.1, wd 0.1, g = 0.5: (1 - 0.1 (0.5 + 0.1 * 1), 2 - 0.1 * 0.5)
    np.testing.assert_allclose(one_masked_step(SGD(lr=0.1, weight_decay=0.1), [0.5, 0.5]),
                               [0.94, 1.95], rtol=1e-12)
    # AdamW lr 0.1, wd 0.5, g = 0: Adam's step is 0, so only the decay acts, on the first only
    np.testing.assert_allclose(one_masked_step(AdamW(lr=0.1, weight_decay=0.5), [0.0, 0.0]),
                               [0.95, 2.0], rtol=1e-12)
    # Adam, RMSprop, Adagrad, NAdam with g = 0: the L2 term alone moves the first; the second,
    # with a zero gradient and no decay, stays where it was
    for optimizer in (Adam(lr=0.1, weight_decay=0.5), RMSprop(lr=0.1, weight_decay=0.5),
                      Adagrad(lr=0.1, weight_decay=0.5), NAdam(lr=0.1, weight_decay=0.5)):
        first, second = one_masked_step(optimizer, [0.0, 0.0])
        assert first < 1.0 and second == 2.0, optimizer.kind
    # Adam's first step is lr * sign(g + wd * p): 1 - 0.1 * 1, 2 - 0.1 * 1 (g = 0.5 > 0 alone)
    np.testing.assert_allclose(one_masked_step(Adam(lr=0.1, weight_decay=0.5), [0.5, 0.5]),
                               [0.9, 1.9], rtol=1e-6)


def test_an_all_true_mask_changes_nothing():
    params = np.array([1.0, 2.0])
    assert "_decay_mask" not in SGD(weight_decay=0.1).start(params, np.array([True, True]))
    assert "_decay_mask" not in SGD(weight_decay=0.1).start(params)
