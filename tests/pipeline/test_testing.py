"""pipeline.testing: each check passes on a correct plugin and fails, saying where, on a wrong one."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.registry import GROUPS, Registry
from pipeline.testing import (PluginCheckError, check_activation, check_initializer, check_loss,
                              check_optimizer, check_plugin, check_stage, tiny_dataset)
from toy_stages import Double, Liar, Produce


def softplus():
    return SimpleNamespace(value=lambda z: np.logaddexp(0, z),
                           derivative=lambda z, a: 1 / (1 + np.exp(-z)))


def test_a_right_activation_passes():
    check_activation(softplus())


def test_a_wrong_derivative_is_caught_with_relative_error_and_where():
    wrong = softplus()
    wrong.derivative = lambda z, a: 1 / (1 + np.exp(-z)) + (z > 2.5) * np.asarray(0.1, z.dtype)
    z = np.array([[0.5, -1.0, 3.0], [-2.0, 1.5, 0.2]])
    with pytest.raises(PluginCheckError) as caught:
        check_activation(wrong, z=z)
    message = str(caught.value)
    assert "derivative(z, a): relative error" in message
    assert "worst at element (0, 2) (input 3) of shape (2, 3)" in message


def test_a_derivative_off_by_a_tiny_factor_is_still_caught():
    wrong = softplus()
    wrong.derivative = lambda z, a: 1.0001 / (1 + np.exp(-z))
    with pytest.raises(PluginCheckError, match="relative error"):
        check_activation(wrong)


def test_an_activation_that_upcasts_float32_fails():
    upcasting = SimpleNamespace(value=lambda z: np.tanh(z.astype(np.float64)),
                                derivative=lambda z, a: 1 - a * a)
    with pytest.raises(PluginCheckError, match="dtype float64 for float32 input"):
        check_activation(upcasting)


def test_an_activation_that_mutates_its_input_fails():
    def value(z):
        np.tanh(z, out=z)
        return z

    with pytest.raises(PluginCheckError, match="modified its input"):
        check_activation(SimpleNamespace(value=value, derivative=lambda z, a: 1 - a * a))


def test_a_non_activation_is_refused():
    with pytest.raises(PluginCheckError, match="no callable derivative"):
        check_activation(SimpleNamespace(value=np.tanh))


def squared():
    def value(o, y):
        return 0.5 * float(((o - y) ** 2).sum()) / o.shape[0]

    return SimpleNamespace(value=value, gradient=lambda o, y: (o - y) / o.shape[0])


def test_a_right_loss_passes():
    check_loss(squared())


def test_a_wrong_loss_gradient_is_caught():
    wrong = squared()
    wrong.gradient = lambda o, y: (o - y)  # forgot the mean over the batch
    with pytest.raises(PluginCheckError, match=r"gradient\(output, target\): relative error .* "
                                               r"worst at element"):
        check_loss(wrong)


def test_a_loss_with_a_non_scalar_value_fails():
    bad = squared()
    bad.value = lambda o, y: (o - y) ** 2
    with pytest.raises(PluginCheckError, match="finite scalar"):
        check_loss(bad)


def test_initializer_shapes_and_determinism():
    check_initializer(lambda i, o, rng: (rng.normal(size=(i, o)), np.zeros(o)))
    with pytest.raises(PluginCheckError, match="shapes"):
        check_initializer(lambda i, o, rng: (rng.normal(size=(o, i)), np.zeros(o)))
    with pytest.raises(PluginCheckError, match="same seed differ"):
        check_initializer(lambda i, o, rng: (np.random.normal(size=(i, o)), np.zeros(o)))


def test_an_optimizer_that_climbs_fails():
    from plugins.mlp.optim import SGD

    check_optimizer(SGD)

    class Ascent(SGD):
        def update(self, params, grads, state, lr):
            params += lr * grads

    with pytest.raises(PluginCheckError, match="expected lower"):
        check_optimizer(Ascent)


def test_stage_spec_round_trip_and_outputs():
    assert check_stage(Produce) == {"numbers": [0, 1, 2]}
    assert check_stage(Double(factor=3), inputs={"numbers": [1, 2]}) == {"numbers": [3, 6]}
    with pytest.raises(PluginCheckError, match=r"returned \['something_else'\]; declared"):
        check_stage(Liar)
    with pytest.raises(PluginCheckError, match="sample inputs lack numbers"):
        check_stage(Double, inputs={})


def test_a_stage_mutating_its_input_fails():
    from typing import Literal

    from pipeline.spec import StageSpec

    class Zeroes(StageSpec):
        kind: Literal["zeroes"] = "zeroes"
        inputs = ("data",)
        outputs = ("data",)

        def run(self, inputs, context):
            inputs["data"].split("train").x[:] = 0
            return {"data": inputs["data"]}

    with pytest.raises(PluginCheckError, match="modified input array #0 of shape"):
        check_stage(Zeroes)


def test_tiny_dataset_is_small_and_described():
    data = tiny_dataset()
    assert data.sample_shape == (6, 6) and data.split("train").x.shape == (24, 6, 6)


def test_every_installed_plugin_passes_its_check():
    registry = Registry()
    for group in GROUPS:
        for name in registry.names(group):
            check_plugin(group, registry.load(group, name))


def test_a_stage_refusing_the_sample_says_what_it_was_given():
    from typing import Literal

    from pipeline.errors import DataError
    from pipeline.spec import StageSpec

    class NeedsFlat(StageSpec):
        kind: Literal["needs_flat"] = "needs_flat"
        inputs = ("data",)
        outputs = ("data",)

        def run(self, inputs, context):
            raise DataError("needs flat samples")

    with pytest.raises(PluginCheckError, match=r"NeedsFlat.run failed on .*train: x \(24, 6, 6\) "
                                               r"uint8.*: needs flat samples"):
        check_stage(NeedsFlat)


def relu_with_fast_paths(value_into=None, backprop=None):
    return SimpleNamespace(value=lambda z: np.maximum(z, 0),
                           derivative=lambda z, a: (z > 0).astype(z.dtype),
                           value_into=value_into, backprop=backprop)


def test_right_fast_paths_pass():
    check_activation(relu_with_fast_paths(
        value_into=lambda z, out: np.maximum(z, 0, out=out),
        backprop=lambda delta, z, a: np.multiply(delta, z > 0, out=delta)))


def test_a_wrong_value_into_is_caught_with_where():
    wrong = relu_with_fast_paths(value_into=lambda z, out: np.maximum(z, 0.5, out=out))
    with pytest.raises(PluginCheckError, match=r"value_into\(z, out\) \[float64\]: disagrees with "
                                               r"the plain function, 0.5 against 0.0 at index"):
        check_activation(wrong)


def test_a_value_into_that_returns_a_new_array_is_caught():
    wrong = relu_with_fast_paths(value_into=lambda z, out: np.maximum(z, 0))
    with pytest.raises(PluginCheckError, match="must return out"):
        check_activation(wrong)


def test_a_wrong_backprop_is_caught():
    def backprop(delta, z, a):  # forgot the derivative's zeros: delta left as it is
        pass

    with pytest.raises(PluginCheckError, match=r"backprop\(delta, z, a\) \[float64\]: disagrees"):
        check_activation(relu_with_fast_paths(backprop=backprop))


def fused_squared(value_scale=1.0, gradient_scale=1.0):
    loss = squared()
    loss.fused = lambda o, y: (value_scale * loss.value(o, y), gradient_scale * loss.gradient(o, y))
    return loss


def test_a_right_fused_loss_passes():
    check_loss(fused_squared())


def test_a_fused_loss_with_a_wrong_value_is_caught():
    with pytest.raises(PluginCheckError, match=r"fused\(output, target\) \[float64\]: value .* "
                                               r"but value\(output, target\) gives"):
        check_loss(fused_squared(value_scale=1.001))


def test_a_fused_loss_with_a_wrong_gradient_is_caught():
    with pytest.raises(PluginCheckError, match=r"fused\(output, target\) \[float64\] gradient: "
                                               r"disagrees"):
        check_loss(fused_squared(gradient_scale=2.0))


def test_a_fused_loss_returning_one_thing_is_caught():
    wrong = squared()
    wrong.fused = wrong.gradient
    with pytest.raises(PluginCheckError, match=r"expected a \(value, gradient\) pair, got ndarray"):
        check_loss(wrong)
