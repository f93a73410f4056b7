"""Activations: values at known points, numerical stability, the registry and its check.
(Derivatives are checked against finite differences in test_gradcheck.py.)"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from pipeline.registry import default_registry
from plugins.mlp import activations
from plugins.mlp.activations import Activation, check, relu, sigmoid, tanh


def test_known_values():
    z = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_allclose(sigmoid.value(z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_array_equal(relu.value(z), [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(tanh.value(z), np.tanh(z))
    np.testing.assert_array_equal(relu.derivative(z, relu.value(z)), [[0.0, 0.0, 1.0]])
    assert sigmoid.derivative(np.zeros(1), sigmoid.value(np.zeros(1)))[0] == 0.25
    assert tanh.derivative(np.zeros(1), tanh.value(np.zeros(1)))[0] == 1.0


def test_known_values_of_the_newer_activations():
    z = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_allclose(activations.leaky_relu.value(z), [[-0.02, 0.0, 3.0]])
    np.testing.assert_allclose(activations.elu.value(z), [[np.exp(-2.0) - 1, 0.0, 3.0]])
    np.testing.assert_allclose(activations.softplus.value(z), np.log(1 + np.exp(z)), rtol=1e-14)
    np.testing.assert_array_equal(activations.identity.value(z), z)
    # gelu's tanh form against its textbook formula, and the exact gelu z * Phi(z) within 1e-3
    c = np.sqrt(2 / np.pi)
    np.testing.assert_allclose(activations.gelu.value(z),
                               0.5 * z * (1 + np.tanh(c * (z + 0.044715 * z**3))), rtol=1e-14)
    from math import erf
    exact = [[v * 0.5 * (1 + erf(v / np.sqrt(2))) for v in z[0]]]
    np.testing.assert_allclose(activations.gelu.value(z), exact, atol=1e-3)


@pytest.mark.parametrize("act", [activations.elu, activations.gelu, activations.softplus,
                                 activations.leaky_relu], ids=lambda a: a.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_newer_activations_are_stable_at_extremes(act, dtype):
    z = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = act.value(z)
        da = act.derivative(z, a)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(da))
    assert a.dtype == dtype and da.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_at_extremes(dtype):
    z = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning fails the test
        a = sigmoid.value(z)
        da = sigmoid.derivative(z, a)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(da))
    assert a[0] == 0.0 and a[-1] == 1.0 and a[2] == 0.5
    assert a.dtype == dtype and da.dtype == dtype


@pytest.mark.parametrize("act", [sigmoid, relu, tanh], ids=lambda a: a.name)
def test_dtype_and_shape_preserved(act):
    z = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    a = act.value(z)
    assert a.shape == z.shape and a.dtype == np.float32
    assert act.derivative(z, a).dtype == np.float32
    assert not np.shares_memory(a, z)  # the input is left alone


@pytest.mark.parametrize("name", ["sigmoid", "relu", "tanh"])
def test_registered_under_their_names(name):
    found = default_registry().load("activations", name, check=check)
    assert found is getattr(activations, name) and found.name == name


def test_check():
    assert check(relu) is None
    assert check(Activation("x", np.abs, lambda z, a: np.sign(z))) is None
    assert "derivative" in check(Activation("x", np.abs, None))
    assert "value" in check(object())


def test_activations_pickle_by_reference():
    assert pickle.loads(pickle.dumps(relu)) == relu


def test_relu_trains_through_its_fast_paths():
    # the training loop's in-place paths are wired, and give exactly what the plain functions give
    assert relu.value_into is activations.relu_into and relu.backprop is activations.relu_backprop
    z = np.linspace(-2, 2, 24, dtype=np.float32).reshape(4, 6)
    out = np.empty_like(z)
    assert activations.apply_into(relu, z, out) is out
    np.testing.assert_array_equal(out, relu.value(z))
    delta = np.arange(24, dtype=np.float32).reshape(4, 6)
    expected = delta * relu.derivative(z, out)
    activations.scale_by_derivative(relu, delta, z, out)
    np.testing.assert_array_equal(delta, expected)


def test_a_plain_object_trains_like_the_dataclass():
    # docs/plugins.md promises that any object with value and derivative works as an activation
    from types import SimpleNamespace
    from plugins.mlp.model import MLP
    plain = SimpleNamespace(name="plain_tanh", value=tanh.value, derivative=tanh.derivative)
    x = np.random.default_rng(0).normal(size=(5, 4))
    grads = []
    for activation in (plain, tanh):
        model = MLP([4, 3, 2], activation, "cross_entropy", "float64", rng=0)
        model.backward(model.loss_fn.gradient(model.forward(x), np.array([0, 1, 0, 1, 0])))
        grads.append(model.grads.copy())
    np.testing.assert_array_equal(grads[0], grads[1])
