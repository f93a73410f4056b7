"""Optimisers: their configuration, and each update rule on hand-computed or reference values."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.artifacts import Dataset, Split
from pipeline.registry import default_registry
from pipeline.spec import StageContext
from plugins.mlp.optim import FLUSH_EVERY, SGD, Adam, AdamW, NAdam, Optimizer, RMSprop, check
from plugins.mlp.trainer import MLPTrain


def run(optimizer: Optimizer, params, grads_per_step, lr=None) -> np.ndarray:
    """``params`` after one ``step`` per gradient in ``grads_per_step``."""
    params = np.array(params, dtype=np.float64)
    state = optimizer.init_state(params)
    for grads in grads_per_step:
        optimizer.step(params, np.array(grads, dtype=np.float64), state,
                       optimizer.lr if lr is None else lr)
    return params


# --- configuration -----------------------------------------------------------------------------

def test_optimizers_are_frozen_strict_pydantic_models():
    assert SGD().kind == "sgd" and SGD().lr == 0.01 and Adam().lr == 0.001
    assert check(SGD) is None and check(AdamW) is None and check(dict) is not None
    assert default_registry().load("optimizers", "sgd", check=check) is SGD
    for bad in (dict(lr=0), dict(lr=0.1, momentun=0.9), dict(momentum=1.0), dict(nesterov=True),
                dict(clip_norm=0), dict(weight_decay=-1)):
        with pytest.raises(ValidationError):
            SGD(**bad)
    with pytest.raises(ValidationError):
        SGD().lr = 1.0
    with pytest.raises(ValidationError):
        Adam(beta2=1.0)
    assert SGD().init_state(np.zeros(3)) == {}
    with pytest.raises(NotImplementedError):
        Optimizer(kind="x").step(np.zeros(1), np.zeros(1), {}, 0.1)


def test_state_follows_the_parameters_dtype():
    params = np.zeros(4, dtype=np.float32)
    for optimizer in (SGD(momentum=0.9), Adam(), AdamW()):
        state = optimizer.init_state(params)
        optimizer.step(params, np.ones(4, dtype=np.float32), state, 0.1)
        assert params.dtype == np.float32
        assert all(a.dtype == np.float32 for name, a in state.items() if name != "t")


# --- SGD ---------------------------------------------------------------------------------------

def test_sgd_plain_step():
    np.testing.assert_allclose(run(SGD(lr=0.5), [1.0, -2.0], [[0.2, 0.4]]), [0.9, -2.2])


def test_sgd_momentum_by_hand():
    """Constant gradient g, momentum 0.5, lr 0.1: v1 = g, v2 = 0.5 g + g = 1.5 g;
    p2 = p0 - 0.1 * (1 + 1.5) g."""
    p = run(SGD(lr=0.1, momentum=0.5), [1.0], [[2.0], [2.0]])
    assert p[0] == pytest.approx(1.0 - 0.1 * 2.5 * 2.0)


def test_sgd_nesterov_by_hand():
    """Nesterov uses g + mu * v: step 1: v = g, update (1 + mu) g = 1.5 g;
    step 2: v = 1.5 g, update g + 0.5 * 1.5 g = 1.75 g."""
    p = run(SGD(lr=0.1, momentum=0.5, nesterov=True), [1.0], [[2.0], [2.0]])
    assert p[0] == pytest.approx(1.0 - 0.1 * (1.5 + 1.75) * 2.0)


def test_sgd_weight_decay_is_an_l2_gradient_term():
    """g = 0, weight decay 0.1, lr 0.5: p -= 0.5 * 0.1 * p."""
    np.testing.assert_allclose(run(SGD(lr=0.5, weight_decay=0.1), [2.0, -4.0], [[0.0, 0.0]]),
                               [1.9, -3.8])


def test_gradient_clipping_rescales_a_copy():
    """|(3, 4)| = 5 > 1: the update uses (0.6, 0.8) and the caller's gradient is untouched."""
    grads = np.array([3.0, 4.0])
    params = np.zeros(2)
    SGD(lr=1.0, clip_norm=1.0).step(params, grads, {}, 1.0)
    np.testing.assert_allclose(params, [-0.6, -0.8])
    np.testing.assert_array_equal(grads, [3.0, 4.0])
    np.testing.assert_allclose(run(SGD(lr=1.0, clip_norm=10.0), [0.0, 0.0], [[3.0, 4.0]]), [-3, -4])


# --- Adam and AdamW ----------------------------------------------------------------------------

def test_adam_first_step_is_lr_times_the_sign():
    """After bias correction m_hat = g and v_hat = g^2, so the first step is lr * g / (|g| + eps)."""
    p = run(Adam(lr=0.01), [1.0, 1.0, 1.0], [[0.3, -2.0, 1e-3]])
    np.testing.assert_allclose(p, [0.99, 1.01, 0.99], rtol=1e-6)


def test_adam_matches_the_textbook_loop():
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(5, 4))
    b1, b2, eps, lr, wd = 0.8, 0.95, 1e-8, 0.05, 0.1
    p, m, v = np.ones(4), np.zeros(4), np.zeros(4)
    for t, g in enumerate(grads, start=1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    got = run(Adam(lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd), np.ones(4), grads)
    np.testing.assert_allclose(got, p, rtol=1e-12)


def test_adamw_decay_is_decoupled():
    """With g = 0 Adam's own step is 0, so only the decay acts: p *= 1 - lr * weight_decay."""
    np.testing.assert_allclose(run(AdamW(lr=0.1, weight_decay=0.5), [2.0, -1.0], [[0.0, 0.0]]),
                               [1.9, -0.95])
    np.testing.assert_array_equal(run(Adam(lr=0.1, weight_decay=0.5), [2.0], [[0.0]])[0] != 2.0, True)


# --- in the trainer ----------------------------------------------------------------------------

def blobs(n: int = 600, seed: int = 0) -> Dataset:
    """Three well-separated Gaussian blobs in 4-d: 80% train, 20% validation."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)  # (n,)
    x = 4.0 * np.eye(3, 4)[y] + rng.normal(size=(n, 4))  # (n, 4)
    cut = int(0.8 * n)
    return Dataset({"train": Split(x[:cut], y[:cut]), "validation": Split(x[cut:], y[cut:])})


def train(spec: MLPTrain, data: Dataset):
    out = spec.run({"data": data}, StageContext(seed=0))
    return out["model"], out["history"]


@pytest.mark.parametrize("optimizer", [SGD(lr=0.05, momentum=0.9, nesterov=True), Adam(lr=0.01),
                                       AdamW(lr=0.01, clip_norm=5.0)], ids=lambda o: o.kind)
def test_each_optimizer_trains_reproducibly(optimizer):
    spec = MLPTrain(hidden=[16], epochs=10, batch_size=16, optimizer=optimizer, seed=0)
    model, history = train(spec, blobs())
    assert history[-1].val_accuracy >= 0.95
    again, _ = train(spec, blobs())
    assert np.array_equal(model.params, again.params)
    assert spec.model_dump(mode="json")["optimizer"] == optimizer.model_dump(mode="json")


# --- first steps on a tiny problem, worked out by hand -----------------------------------------
# f(w) = w^2 / 2 from w0 = 1, so the gradient is w itself. Each expected value below is the
# arithmetic done by hand (written out, not computed by a second implementation). Adam runs with
# eps = 1e-15 so that the hand values need no eps term.

def descend(optimizer: Optimizer, steps: int) -> list[float]:
    params = np.array([1.0])
    state = optimizer.init_state(params)
    trace = []
    for _ in range(steps):
        optimizer.step(params, params.copy(), state, optimizer.lr)  # gradient of w^2/2 is w
        trace.append(float(params[0]))
    return trace


FIRST_STEPS = {
    # w1 = 1 - 0.1*1 = 0.9;  w2 = 0.9 - 0.09 = 0.81;  w3 = 0.81 - 0.081 = 0.729
    "sgd": (SGD(lr=0.1), [0.9, 0.81, 0.729]),
    # v1 = 1, w1 = 0.9;  v2 = 0.9*1 + 0.9 = 1.8, w2 = 0.9 - 0.18 = 0.72;
    # v3 = 0.9*1.8 + 0.72 = 2.34, w3 = 0.72 - 0.234 = 0.486
    "momentum": (SGD(lr=0.1, momentum=0.9), [0.9, 0.72, 0.486]),
    # v1 = 1, step g + 0.9 v = 1.9, w1 = 0.81;  v2 = 0.9 + 0.81 = 1.71,
    # step 0.81 + 0.9*1.71 = 2.349, w2 = 0.81 - 0.2349 = 0.5751
    "nesterov": (SGD(lr=0.1, momentum=0.9, nesterov=True), [0.81, 0.5751]),
    # g = 1 + 0.5*1 = 1.5: w1 = 1 - 0.15 = 0.85;  g = 0.85*1.5 = 1.275: w2 = 0.85 - 0.1275 = 0.7225
    "sgd_l2": (SGD(lr=0.1, weight_decay=0.5), [0.85, 0.7225]),
    # step 1: m_hat = g, v_hat = g^2: w1 = 1 - 0.1 = 0.9
    # step 2: g = 0.9, m = 0.9*0.1 + 0.1*0.9 = 0.18, v = 0.999*0.001 + 0.001*0.81 = 0.001809,
    #         w2 = 0.9 - 0.1 * (0.18 / 0.19) / sqrt(0.001809 / 0.001999)
    "adam": (Adam(lr=0.1, eps=1e-15), [0.9, 0.9 - 0.1 * (0.18 / 0.19) / np.sqrt(0.001809 / 0.001999)]),
    # step 1: w = 1 * (1 - 0.1*0.1) = 0.99, then the Adam step on g = 1: w1 = 0.89
    # step 2: g = 0.89, m = 0.09 + 0.089 = 0.179, v = 0.000999 + 0.001*0.7921 = 0.0017911,
    #         w2 = 0.89*0.99 - 0.1 * (0.179 / 0.19) / sqrt(0.0017911 / 0.001999)
    "adamw": (AdamW(lr=0.1, weight_decay=0.1, eps=1e-15),
              [0.89, 0.89 * 0.99 - 0.1 * (0.179 / 0.19) / np.sqrt(0.0017911 / 0.001999)]),
    # |g| = 1 > 0.5: clipped to 0.5, w1 = 1 - 0.1*0.5 = 0.95; |g| = 0.95 > 0.5: w2 = 0.90
    "clip_norm": (SGD(lr=0.1, clip_norm=0.5), [0.95, 0.90]),
}


@pytest.mark.parametrize("name", sorted(FIRST_STEPS))
def test_first_steps_by_hand(name):
    optimizer, expected = FIRST_STEPS[name]
    np.testing.assert_allclose(descend(optimizer, len(expected)), expected, rtol=1e-9, atol=1e-12)


# --- subnormal moments -----------------------------------------------------------------------

@pytest.mark.parametrize("optimizer, names", [
    (Adam(), ("m", "v")), (NAdam(), ("m", "v")), (AdamW(), ("m", "v")),
    (SGD(momentum=0.9), ("velocity",)),
    (RMSprop(momentum=0.9, centered=True), ("square_avg", "grad_avg", "momentum_buffer"))])
def test_flush_tiny_zeroes_only_what_would_turn_subnormal(optimizer, names):
    """An entry that decays by its factor for FLUSH_EVERY steps without a gradient must not
    pass through the subnormal range (each multiply there costs a microcode assist): it is 0
    after ``flush_tiny``, or it stays normal all the way; larger entries are untouched."""
    tiny = np.finfo(np.float32).tiny
    values = np.array([0.0, 1e-3, 1e-20, -1e-30, 1e-34, -1e-36, 5e-38, 2e-39, -1e-44],
                      dtype=np.float32)  # (9,) normal and subnormal, both signs
    state = optimizer.start(np.zeros(values.size, dtype=np.float32))
    for name in names:
        state[name][...] = values
    optimizer.flush_tiny(state)
    for name, factor in optimizer.decaying().items():
        if name not in names:
            continue
        flushed = state[name]
        kept = flushed != 0
        np.testing.assert_array_equal(flushed[kept], values[kept])  # untouched where kept
        assert np.all(kept[np.abs(values) >= 1e-30])  # the large ones are all kept
        decayed = flushed.copy()
        for _ in range(FLUSH_EVERY):  # float32 arithmetic, as the optimiser's passes
            decayed *= np.float32(factor)
            assert not np.any((decayed != 0) & (np.abs(decayed) < tiny)), (name, decayed)


def test_the_trainer_flushes_every_flush_every_steps_and_at_each_epochs_end(monkeypatch):
    """200 rows in batches of 1: flushes after steps 64, 128, 192 and 200 of each epoch."""
    from support import blobs

    calls = []
    monkeypatch.setattr(Adam, "flush_tiny", lambda self, state: calls.append(int(state["t"])))
    data = blobs(250)  # 200 training rows
    spec = MLPTrain(hidden=[4], epochs=2, batch_size=1, optimizer={"kind": "adam"}, seed=0)
    spec.run({"data": data}, StageContext(seed=0))
    n = data.split("train").x.shape[0]
    per_epoch = [s for s in range(1, n + 1) if s % FLUSH_EVERY == 0 or s == n]
    assert calls == per_epoch + [n + s for s in per_epoch]
