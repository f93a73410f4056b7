"""plugins.mlp.checks: each check of the network's plugin groups passes on a correct plugin and
fails, saying where, on a wrong one; each starts with its group's type check (one definition)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.testing import PluginCheckError
from plugins.mlp.checks import check_activation, check_initializer, check_loss, check_optimizer


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

    return SimpleNamespace(value=value, gradient=lambda o, y: (o - y) / o.shape[0],
                           link=lambda o: o)


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


def test_a_loss_without_link_fails_the_check_and_the_registry_alike():
    from pipeline.errors import PluginError
    from plugins.mlp import losses

    no_link = SimpleNamespace(value=lambda o, y: 0.0, gradient=lambda o, y: 0 * o)
    with pytest.raises(PluginCheckError, match="not a loss: .*no callable link"):
        check_loss(no_link)
    assert "link" in losses.check(no_link)  # what the registry runs on every load
    registry = _registry_with("losses", "plain", no_link)
    with pytest.raises(PluginError, match="loss 'plain' .* is not usable: .*link"):
        registry.load("losses", "plain")


def test_an_optimizer_that_is_not_an_optimizer_subclass_fails_the_check():
    class Duck:  # the methods, but not the base class the trainer relies on
        lr = 0.1

        def init_state(self, params):
            return {}

        def step(self, params, grads, state, lr):
            params -= lr * grads

    with pytest.raises(PluginCheckError, match="not an optimizer: .*Optimizer"):
        check_optimizer(Duck)
    with pytest.raises(PluginCheckError, match="not an optimizer"):
        check_optimizer(Duck())


def _registry_with(group: str, name: str, value):
    """A registry holding nnpipe's group declarations and one plugin ``value`` (in a module
    made for the test)."""
    import sys
    import types
    from importlib import metadata

    from pipeline.registry import Registry, plugin_entry_points

    module = types.ModuleType("made_for_the_test")
    setattr(module, name, value)
    sys.modules[module.__name__] = module
    declarations = [ep for ep in plugin_entry_points() if ep.group == "nnpipe.groups"]
    return Registry(declarations + [metadata.EntryPoint(
        name=name, value=f"{module.__name__}:{name}", group=f"nnpipe.{group}")])


def test_every_builtin_schedule_passes_and_a_wrong_one_fails():
    from typing import Literal

    from plugins.mlp.checks import check_schedule
    from plugins.mlp.schedules import Constant, Cosine, OneCycle, Plateau, Schedule, Step

    for cls in (Constant, Cosine, OneCycle, Plateau, Step):
        check_schedule(cls)
    check_schedule(Cosine(warmup_steps=3))

    class Negative(Schedule):
        kind: Literal["negative"] = "negative"

        def lr(self, epoch, base_lr, epochs, history):
            return base_lr * (3 - epoch)  # below 0 from epoch 4

    with pytest.raises(PluginCheckError, match="epoch 4 of 6 .*finite rates >= 0"):
        check_schedule(Negative)

    calls = []

    class Stateful(Schedule):
        kind: Literal["stateful"] = "stateful"

        def lr(self, epoch, base_lr, epochs, history):
            calls.append(epoch)
            return base_lr / len(calls)

    with pytest.raises(PluginCheckError, match="when asked again"):
        check_schedule(Stateful)
    with pytest.raises(PluginCheckError, match="not a schedule"):
        check_schedule(SimpleNamespace(lr=lambda *a: 0.1))


def test_check_layer_starts_with_the_layer_type_check():
    from plugins.mlp.checks import check_layer
    from plugins.mlp.layers import Dense

    check_layer(Dense)
    with pytest.raises(PluginCheckError, match="not a layer"):
        check_layer(SimpleNamespace(forward=None))
