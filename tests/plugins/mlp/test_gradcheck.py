"""Every analytic gradient against central finite differences, in float64: each activation's
derivative, each loss's gradient, and the whole network's backward pass for every activation x
loss combination, on random small shapes.

The finite-difference helpers come from ``pipeline.testing``, the module plugin authors use.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.testing import TOLERANCE, away_from_zero, numerical_gradient, relative_error
from plugins.mlp import activations, losses
from plugins.mlp.layers import ActivationLayer, Dropout
from plugins.mlp.model import MLP

ACTIVATIONS = [activations.sigmoid, activations.relu, activations.tanh, activations.leaky_relu,
               activations.elu, activations.gelu, activations.softplus, activations.identity]
LOSSES = [losses.cross_entropy, losses.mse]


# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("seed", range(3))
def test_activation_derivative(act, seed):
    rng = np.random.default_rng(seed)
    z = away_from_zero(rng, tuple(rng.integers(1, 6, size=2)))  # (n, h)
    r = rng.normal(size=z.shape)  # (n, h): f = sum(r * act(z)) so df/dz = r * act'(z)
    analytic = r * act.derivative(z, act.value(z))
    numeric = numerical_gradient(lambda: float(np.sum(r * act.value(z))), z)
    assert relative_error(analytic, numeric) < TOLERANCE


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: l.name)
@pytest.mark.parametrize("seed", range(3))
def test_loss_gradient(loss, seed):
    rng = np.random.default_rng(seed)
    n, k = rng.integers(1, 6), rng.integers(2, 6)
    output = rng.normal(scale=2.0, size=(n, k))  # (n, k)
    labels = rng.integers(0, k, size=n)  # (n,)
    analytic = loss.gradient(output, labels)
    numeric = numerical_gradient(lambda: loss.value(output, labels), output)
    assert relative_error(analytic, numeric) < TOLERANCE


@pytest.mark.parametrize("smoothing", [0.1, 0.3])
def test_cross_entropy_gradient_with_smoothed_targets(smoothing):
    """Label smoothing replaces one-hot rows by (1 - s) y + s / k: rows still sum to 1, so the
    fused gradient (softmax - y) / n stays exact."""
    rng = np.random.default_rng(3)
    output = rng.normal(scale=2.0, size=(5, 4))  # (n, k)
    target = losses.smooth_labels(losses.as_one_hot(rng.integers(0, 4, size=5), 4), smoothing)
    np.testing.assert_allclose(target.sum(axis=1), 1.0)
    assert target.min() == pytest.approx(smoothing / 4)
    numeric = numerical_gradient(lambda: losses.cross_entropy.value(output, target), output)
    assert relative_error(losses.cross_entropy.gradient(output, target), numeric) < TOLERANCE


def test_mse_gradient_with_real_valued_targets():
    rng = np.random.default_rng(7)
    output, target = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    numeric = numerical_gradient(lambda: losses.mse.value(output, target), output)
    assert relative_error(losses.mse.gradient(output, target), numeric) < TOLERANCE


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: l.name)
@pytest.mark.parametrize("seed", range(3))
def test_network_backward(act, loss, seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, size=rng.integers(2, 5))  # 1 to 3 layers, widths 1..5
    sizes[-1] = max(sizes[-1], 2)
    model = MLP(sizes, act, loss, dtype="float64", init="glorot_normal", rng=rng)
    n = int(rng.integers(1, 6))
    x = rng.normal(size=(n, sizes[0]))  # (n, d)
    y = rng.integers(0, sizes[-1], size=n)  # (n,)

    output = model.forward(x)  # (n, k)
    model.backward(loss.gradient(output, y))
    for z, _ in _activation_caches(model):  # keep relu's kink out of reach of the differences
        if act in (activations.relu, activations.leaky_relu) and np.min(np.abs(z)) < 1e-4:
            pytest.skip("a pre-activation lies on relu's kink")
    analytic = model.grads.copy()  # (P,)
    numeric = numerical_gradient(lambda: model.loss(x, y), model.params)  # (P,)

    error = relative_error(analytic, numeric)
    per_array = {name: relative_error(a, n) for name, a, n in _by_array(model, analytic, numeric)}
    assert error < TOLERANCE, f"sizes {list(sizes)}: {per_array}"


def _activation_caches(model: MLP):
    """(z, a) of every activation layer in the last forward."""
    return [cache for layer, cache in zip(model.layers, model._cache)
            if isinstance(layer, ActivationLayer)]


def _by_array(model: MLP, analytic: np.ndarray, numeric: np.ndarray):
    """(layer.name, analytic, numeric) for every parameter array, cut from the flat vectors."""
    for i, (a, n) in enumerate(zip(model._views(analytic, "params"), model._views(numeric, "params"))):
        for name in a:
            yield f"{i}.{name}", a[name], n[name]


def test_the_check_catches_a_wrong_backward():
    """The helper is worth trusting only if it fails on a wrong gradient."""
    rng = np.random.default_rng(0)
    model = MLP([3, 4, 2], "tanh", "mse", dtype="float64", init="glorot_normal", rng=rng)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    model.backward(2 * losses.mse.gradient(model.forward(x), y))  # twice the true gradient
    numeric = numerical_gradient(lambda: model.loss(x, y), model.params)
    assert relative_error(model.grads, numeric) > 0.1


@pytest.mark.parametrize("act", [activations.tanh, activations.sigmoid], ids=lambda a: a.name)
def test_network_backward_through_dropout(act):
    """With the mask held fixed (the same seed for every forward), backward through inverted
    dropout matches finite differences of the dropped-out network."""
    rng = np.random.default_rng(11)
    model = MLP([4, 6, 5, 3], act, "cross_entropy", dtype="float64", init="glorot_normal", rng=rng,
                dropout=0.4)
    x, y = rng.normal(size=(7, 4)), rng.integers(0, 3, size=7)

    def loss() -> float:
        return losses.cross_entropy.value(model.forward(x, rng=np.random.default_rng(5)), y)

    output = model.forward(x, rng=np.random.default_rng(5))
    masks = [mask for layer, mask in zip(model.layers, model._cache) if isinstance(layer, Dropout)]
    assert all(set(np.unique(m)) <= {0.0, 1 / 0.6} for m in masks) and any((m == 0).any() for m in masks)
    model.backward(losses.cross_entropy.gradient(output, y))
    analytic = model.grads.copy()
    numeric = numerical_gradient(loss, model.params)
    assert relative_error(analytic, numeric) < TOLERANCE
    # and dropout really changes the function: without it (evaluation mode) the loss differs
    assert abs(model.loss(x, y) - loss()) > 1e-3
