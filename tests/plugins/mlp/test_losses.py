"""Losses: hand-computed values, targets as labels or one-hot, stability, links, the registry.
(Gradients are checked against finite differences in test_gradcheck.py.)"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.registry import default_registry
from plugins.mlp import losses
from plugins.mlp.losses import as_one_hot, check, cross_entropy, mse


def test_cross_entropy_by_hand():
    z = np.array([[1.0, 2.0, 3.0],  # label 2: -log(e^3 / (e + e^2 + e^3)) = 0.40760596...
                  [0.0, 0.0, 0.0]])  # label 0: -log(1/3) = 1.09861228...
    y = np.array([2, 0])
    expected = (math.log(math.e + math.e ** 2 + math.e ** 3) - 3 + math.log(3)) / 2
    assert cross_entropy.value(z, y) == pytest.approx(expected, rel=1e-14)
    assert expected == pytest.approx((0.40760596444438 + 1.09861228866811) / 2, rel=1e-12)
    e = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    np.testing.assert_allclose(cross_entropy.gradient(z, y),
                               [[e[0] / 2, e[1] / 2, (e[2] - 1) / 2], [(1 / 3 - 1) / 2, 1 / 6, 1 / 6]],
                               rtol=1e-14)


def test_mse_by_hand():
    """0.5 * mean over the batch of the sum over outputs: (1 + 0 + 0 + 4) / (2 * 2) = 1.25."""
    o = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[0.0, 2.0], [3.0, 2.0]])
    assert mse.value(o, y) == 1.25
    np.testing.assert_array_equal(mse.gradient(o, y), [[0.5, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize("loss", [cross_entropy, mse], ids=lambda l: l.name)
def test_labels_and_one_hot_agree(loss):
    rng = np.random.default_rng(0)
    z, labels = rng.normal(size=(6, 4)), rng.integers(0, 4, size=6)
    one_hot = np.eye(4)[labels]
    assert loss.value(z, labels) == loss.value(z, one_hot)
    np.testing.assert_array_equal(loss.gradient(z, labels), loss.gradient(z, one_hot))


def test_cross_entropy_stable_for_huge_logits():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0], [1000.0, 1000.0, -1000.0]])
    y = np.array([1, 2, 0])  # the first row is as wrong as can be
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = cross_entropy.value(z, y)
        grad = cross_entropy.gradient(z, y)
        proba = cross_entropy.link(z)
    assert np.isfinite(value) and np.all(np.isfinite(grad)) and np.all(np.isfinite(proba))
    assert value == pytest.approx((2000 + 0 + math.log(2)) / 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_float32_stays_float32():
    z = np.array([[1.0, 2.0], [0.5, -1.0]], dtype=np.float32)
    y = np.array([[1, 0], [0, 1]], dtype=np.float32)
    for loss in (cross_entropy, mse):
        assert loss.gradient(z, y).dtype == np.float32
        assert loss.gradient(z, np.array([0, 1])).dtype == np.float32
        assert isinstance(loss.value(z, y), float)


def test_links():
    z = np.array([[0.0, math.log(3.0)]])
    np.testing.assert_allclose(cross_entropy.link(z), [[0.25, 0.75]])
    assert mse.link(z) is z


def test_as_one_hot():
    np.testing.assert_array_equal(as_one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        as_one_hot(np.array([3]), 3)


@pytest.mark.parametrize("name", ["cross_entropy", "mse"])
def test_registered_under_their_names(name):
    assert default_registry().load("losses", name, check=check) is getattr(losses, name)


def test_check():
    assert check(mse) is None
    assert "link" in check(losses.Loss("x", mse.value, mse.gradient, None))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_fused_is_bit_identical_to_value_and_gradient(dtype):
    rng = np.random.default_rng(3)
    z = rng.normal(scale=4.0, size=(64, 10)).astype(dtype)  # (n, k)
    y = as_one_hot(rng.integers(0, 10, size=64), 10, dtype)
    z_before = z.copy()
    value, gradient = cross_entropy.fused(z, y)
    assert value == cross_entropy.value(z, y)
    np.testing.assert_array_equal(gradient, cross_entropy.gradient(z, y))
    assert gradient.dtype == dtype
    np.testing.assert_array_equal(z, z_before)


def test_value_and_gradient_without_a_fused_path():
    duck = SimpleNamespace(value=mse.value, gradient=mse.gradient)  # a plugin's plain object
    o, y = np.array([[1.0, 2.0], [0.5, -1.0]]), np.array([[0.0, 2.0], [1.0, 0.0]])
    value, gradient = losses.value_and_gradient(duck, o, y)
    assert value == 0.5 * (1.0 + 0.25 + 1.0) / 2  # half the mean over rows of the squared error
    np.testing.assert_array_equal(gradient, (o - y) / 2)
    assert mse.fused is None and losses.value_and_gradient(mse, o, y)[0] == value


@pytest.mark.parametrize("gradient", ["fused", "gradient", "weighted"])
def test_cross_entropy_gradients_hold_no_subnormal_probability(gradient):
    """Shifted logits between -104 and -87 have subnormal float32 exponentials, which slow every
    multiply they reach; the training gradient gives them (and anything below log(sqrt(tiny)),
    -43.7) probability 0, and every other entry the exact softmax (float64 oracle)."""
    z = np.array([[0.0, -10.0, -43.0, -44.0, -90.0, -100.0, -200.0]], dtype=np.float32)
    y = np.array([[1, 0, 0, 0, 0, 0, 0]], dtype=np.float32)
    if gradient == "weighted":
        _, g = cross_entropy.weighted(z, y, weight=np.ones(7))
    elif gradient == "fused":
        _, g = cross_entropy.fused(z, y)
    else:
        g = cross_entropy.gradient(z, y)
    tiny = np.finfo(np.float32).tiny
    assert not np.any((g != 0) & (np.abs(g) < tiny))  # no subnormal entry
    assert np.all(g[0, 3:] == 0)  # below -43.7: probability 0
    exact = np.exp(z.astype(np.float64)) / np.exp(z.astype(np.float64)).sum()  # (1, 7) softmax
    np.testing.assert_allclose(g[0, :3] + y[0, :3], exact[0, :3], rtol=1e-6)
    assert np.all(exact[0, 3:] < 1e-19)  # what the zeros leave out
