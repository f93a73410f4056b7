"""The checks of the network's plugin groups, for plugin authors' tests and ``nnpipe plugins
--check`` (each group's declaration in ``plugins.mlp.groups`` names its check here).

Each check starts with its group's type check, the one the registry runs on every load, so
there is one definition of what an activation (a loss, ...) is; then it tests the contract:

- an **activation** has ``value(z) -> a`` and ``derivative(z, a) -> da/dz``, both elementwise,
  and optionally the in-place fast paths ``value_into(z, out)`` and ``backprop(delta, z, a)``,
  checked against the first two;
- a **loss** has ``value(output, target) -> float``, ``gradient(output, target) -> dL/doutput``
  and ``link(output)`` (outputs (n, k), per-row targets (n, k)), and optionally
  ``fused(output, target) -> (value, gradient)``, checked against the first two, and
  ``weighted(output, target, weight, smoothing) -> (value, gradient)`` (class weights), its
  gradient checked against central differences of its value;
- an **optimizer** is an ``Optimizer`` subclass (a pydantic model whose fields all have
  defaults) whose ``init_state(params)`` and ``step(params, grads, state, lr)`` update
  ``params`` in place;
- an **initializer** is a function ``(fan_in, fan_out, rng) -> (W (fan_in, fan_out), b (fan_out,))``;
- a **schedule** is a ``Schedule`` subclass giving a finite rate >= 0 per epoch or per step;
- a **layer** is a ``Layer`` subclass: ``check_layer`` (``plugins.mlp.layers.gradcheck``).

Derivatives are compared with central finite differences in float64 (``pipeline.testing``).
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace
from typing import Any

import numpy as np

from pipeline.testing import (TOLERANCE, PluginCheckError, assert_gradient, away_from_zero,
                              numerical_gradient, same_shape_dtype, unchanged)
from plugins.mlp import activations, init, losses, optim, schedules
from plugins.mlp import layers as layer_plugins
from plugins.mlp.layers.gradcheck import check_layer as _check_layer_contract

__all__ = ["PluginCheckError", "check_activation", "check_initializer", "check_layer",
           "check_loss", "check_optimizer", "check_schedule"]


def _fits(what: str, problem: str | None) -> None:
    """The group's type check's verdict as a ``PluginCheckError``."""
    if problem:
        raise PluginCheckError(f"not {'an' if what[0] in 'aeiou' else 'a'} {what}: {problem}")


# ----------------------------------------------------------------------------------------------
# Activations


def check_activation(activation: Any, z: np.ndarray | None = None, seed: int = 0,
                     tolerance: float = TOLERANCE) -> None:
    """Check an activation: ``derivative(z, value(z))`` against central differences of ``value``
    in float64, shapes and dtypes preserved (float32 in, float32 out), ``z`` and ``a`` unmodified.

    Args:
        z: inputs to check at (any shape); by default random (n, h) values with |z| in [0.1, 3],
            away from a kink at 0. Give your own to keep clear of other kinks.
    """
    _fits("activation", activations.check(activation))
    rng = np.random.default_rng(seed)
    z = away_from_zero(rng, (4, 5)) if z is None else np.array(z, dtype=np.float64)  # (n, h)
    for dtype in (np.float64, np.float32):
        zd = z.astype(dtype)
        z_copy = zd.copy()
        a = same_shape_dtype(f"value(z) [{np.dtype(dtype)}]", activation.value(zd), zd)
        unchanged(f"value(z) [{np.dtype(dtype)}]", z_copy, zd)
        a_copy = a.copy()
        d = activation.derivative(zd, a)
        same_shape_dtype(f"derivative(z, a) [{np.dtype(dtype)}]", d, zd)
        unchanged(f"derivative(z, a) [{np.dtype(dtype)}] (z)", z_copy, zd)
        unchanged(f"derivative(z, a) [{np.dtype(dtype)}] (a)", a_copy, a)

    # f(z) = sum(value(z)) so, elementwise, df/dz_i = derivative(z, a)_i: one scalar covers all.
    z = np.ascontiguousarray(z, dtype=np.float64)  # (n, h)
    analytic = activation.derivative(z.copy(), activation.value(z.copy()))  # (n, h)
    numeric = numerical_gradient(lambda: float(np.sum(activation.value(z))), z)  # (n, h)
    assert_gradient("derivative(z, a)", analytic, numeric, tolerance, at=z)
    _check_activation_fast_paths(activation, z, rng)


def _check_activation_fast_paths(activation: Any, z: np.ndarray, rng: np.random.Generator) -> None:
    """The optional ``value_into(z, out)`` and ``backprop(delta, z, a)`` must give what
    ``value`` and ``delta * derivative`` give, in float32 and float64."""
    value_into = getattr(activation, "value_into", None)
    backprop = getattr(activation, "backprop", None)
    if value_into is None and backprop is None:
        return
    for dtype in (np.float64, np.float32):
        zd = z.astype(dtype)  # (n, h)
        a = activation.value(zd.copy())
        if value_into is not None:
            out = np.full_like(zd, np.nan)
            returned = value_into(zd, out)
            if returned is not out:
                raise PluginCheckError(f"value_into(z, out) [{np.dtype(dtype)}]: must return out")
            agree(f"value_into(z, out) [{np.dtype(dtype)}]", out, a)
        if backprop is not None:
            delta = rng.normal(size=zd.shape).astype(dtype)  # (n, h)
            expected = delta * activation.derivative(zd.copy(), a.copy())
            backprop(delta, zd, a)
            agree(f"backprop(delta, z, a) [{np.dtype(dtype)}]", delta, expected)


def agree(what: str, fast: np.ndarray, reference: np.ndarray) -> None:
    """A fast path's result against the plain function's, to a few units in the last place."""
    if fast.shape != reference.shape or fast.dtype != reference.dtype:
        raise PluginCheckError(f"{what}: shape {fast.shape} {fast.dtype}, expected "
                               f"{reference.shape} {reference.dtype}")
    if not np.allclose(fast, reference, rtol=8 * np.finfo(fast.dtype).eps, atol=0):
        worst = np.unravel_index(np.argmax(np.abs(fast - reference)), fast.shape)
        raise PluginCheckError(f"{what}: disagrees with the plain function, {fast[worst]} "
                               f"against {reference[worst]} at index {tuple(map(int, worst))}")


# ----------------------------------------------------------------------------------------------
# Losses


def _one_hot_targets(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    target = np.zeros((n, k))  # (n, k)
    target[np.arange(n), rng.integers(0, k, size=n)] = 1
    return target


def check_loss(loss: Any, output: np.ndarray | None = None, target: np.ndarray | None = None,
               seed: int = 0, tolerance: float = TOLERANCE) -> None:
    """Check a loss: ``gradient(output, target)`` against central differences of ``value`` in
    float64, a finite scalar value, the gradient's shape and dtype those of ``output`` (float32
    too), neither argument modified; ``link(output)`` keeps the output's shape.

    Args:
        output: raw network outputs (n, k); by default random normal values.
        target: targets (n, k); by default random one-hot rows.
    """
    _fits("loss", losses.check(loss))
    rng = np.random.default_rng(seed)
    if output is None:
        output = rng.normal(scale=2.0, size=(5, 4))  # (n, k)
    output = np.array(output, dtype=np.float64)
    if target is None:
        target = _one_hot_targets(rng, *output.shape)  # (n, k)
    target = np.asarray(target)
    for dtype in (np.float64, np.float32):
        o = output.astype(dtype)
        t = target.astype(dtype) if target.dtype.kind == "f" else target.copy()
        o_copy, t_copy = o.copy(), t.copy()
        value = loss.value(o, t)
        if np.ndim(value) != 0 or not np.isfinite(value):
            raise PluginCheckError(f"value(output, target) [{np.dtype(dtype)}]: expected a "
                                   f"finite scalar, got {value!r}")
        same_shape_dtype(f"gradient(output, target) [{np.dtype(dtype)}]", loss.gradient(o, t), o)
        link = np.asarray(loss.link(o))
        if link.shape != o.shape:
            raise PluginCheckError(f"link(output): shape {link.shape} for output {o.shape}")
        unchanged(f"loss [{np.dtype(dtype)}] (output)", o_copy, o)
        unchanged(f"loss [{np.dtype(dtype)}] (target)", t_copy, t)

    output = np.ascontiguousarray(output)  # (n, k) float64
    t64 = target.astype(np.float64) if target.dtype.kind == "f" else target
    analytic = loss.gradient(output.copy(), t64)
    numeric = numerical_gradient(lambda: float(loss.value(output, t64)), output)
    assert_gradient("gradient(output, target)", analytic, numeric, tolerance)
    _check_fused_loss(loss, output, target)
    _check_weighted_loss(loss, output, target, rng, tolerance)


def _check_weighted_loss(loss: Any, output: np.ndarray, target: np.ndarray,
                         rng: np.random.Generator, tolerance: float) -> None:
    """The optional ``weighted(output, target, weight, smoothing) -> (value, gradient)``: its
    gradient against central differences of its value (float64, random positive weights, with
    and without smoothing), and with equal weights and no smoothing the plain loss."""
    weighted = getattr(loss, "weighted", None)
    if weighted is None:
        return
    k = output.shape[1]
    for weight, smoothing in ((rng.uniform(0.2, 3.0, size=k), 0.0),
                              (rng.uniform(0.2, 3.0, size=k), 0.2)):
        _, analytic = weighted(output.copy(), target, weight, smoothing)
        numeric = numerical_gradient(
            lambda: float(weighted(output, target, weight, smoothing)[0]), output)
        assert_gradient(f"weighted(output, target, weight, smoothing={smoothing:g}) gradient",
                        analytic, numeric, tolerance)
    value, gradient = weighted(output.copy(), target, np.full(k, 2.5), 0.0)
    expected = float(loss.value(output.copy(), target))
    if not np.isclose(float(value), expected, rtol=1e-12, atol=0):
        raise PluginCheckError(f"weighted(output, target, equal weights, 0): value {value!r} but "
                               f"value(output, target) gives {expected!r}")
    agree("weighted(output, target, equal weights, 0) gradient", np.asarray(gradient),
           np.asarray(loss.gradient(output.copy(), target)))


def _check_fused_loss(loss: Any, output: np.ndarray, target: np.ndarray) -> None:
    """The optional ``fused(output, target) -> (value, gradient)`` must give what ``value`` and
    ``gradient`` give, in float32 and float64, without modifying its arguments."""
    fused = getattr(loss, "fused", None)
    if fused is None:
        return
    for dtype in (np.float64, np.float32):
        o = output.astype(dtype)  # (n, k)
        t = target.astype(dtype) if target.dtype.kind == "f" else target.copy()
        o_copy, t_copy = o.copy(), t.copy()
        result = fused(o, t)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise PluginCheckError(f"fused(output, target) [{np.dtype(dtype)}]: expected a "
                                   f"(value, gradient) pair, got {type(result).__name__}")
        value, gradient = result
        expected = float(loss.value(o_copy.copy(), t_copy.copy()))
        if not np.isclose(float(value), expected, rtol=8 * np.finfo(dtype).eps, atol=0):
            raise PluginCheckError(f"fused(output, target) [{np.dtype(dtype)}]: value {value!r} "
                                   f"but value(output, target) gives {expected!r}")
        gradient = same_shape_dtype(f"fused(output, target) [{np.dtype(dtype)}] gradient",
                                     gradient, o)
        agree(f"fused(output, target) [{np.dtype(dtype)}] gradient", gradient,
               np.asarray(loss.gradient(o_copy.copy(), t_copy.copy())))
        unchanged(f"fused(output, target) [{np.dtype(dtype)}] (output)", o_copy, o)
        unchanged(f"fused(output, target) [{np.dtype(dtype)}] (target)", t_copy, t)


# ----------------------------------------------------------------------------------------------
# Initializers and optimizers


def check_initializer(initializer: Any, fan_in: int = 5, fan_out: int = 3, seed: int = 0) -> None:
    """Check an initializer: ``(fan_in, fan_out, rng) -> (W (fan_in, fan_out), b (fan_out,))``,
    finite float arrays, the same for the same seed."""
    _fits("initializer", init.check(initializer))
    first = initializer(fan_in, fan_out, np.random.default_rng(seed))
    if not (isinstance(first, tuple) and len(first) == 2):
        raise PluginCheckError(f"expected a (W, b) tuple, got {type(first).__name__}")
    W, b = (np.asarray(part) for part in first)
    if W.shape != (fan_in, fan_out) or b.shape != (fan_out,):
        raise PluginCheckError(f"shapes W {W.shape}, b {b.shape}; expected W ({fan_in}, "
                               f"{fan_out}), b ({fan_out},)")
    if W.dtype.kind != "f" or b.dtype.kind != "f" or not (np.isfinite(W).all() and np.isfinite(b).all()):
        raise PluginCheckError(f"W and b must be finite floats (got {W.dtype}, {b.dtype})")
    again = initializer(fan_in, fan_out, np.random.default_rng(seed))
    if not (np.array_equal(W, again[0]) and np.array_equal(b, again[1])):
        raise PluginCheckError("two draws with the same seed differ (use only the rng given)")


def check_optimizer(optimizer: Any, steps: int = 50, lr: float | None = None) -> None:
    """Check an optimizer (a class constructible without arguments, or an instance): it updates
    float32 and float64 parameters in place without changing their dtype, leaves the gradient
    alone, and lowers f(p) = |p|^2 / 2 (gradient p) over ``steps`` steps."""
    _fits("optimizer", optim.check(optimizer if isinstance(optimizer, type) else type(optimizer)))
    instance = optimizer() if isinstance(optimizer, type) else optimizer
    lr = lr if lr is not None else float(getattr(instance, "lr", 0.01))
    for dtype in (np.float64, np.float32):
        params = np.linspace(-1.0, 1.0, 8).astype(dtype)  # (P,)
        start = float(np.dot(params, params)) / 2
        buffer = params  # the very array the model holds: it must be updated in place
        state = instance.init_state(params)
        for _ in range(steps):
            grads = params.copy()  # (P,) gradient of |p|^2 / 2
            grads_copy = grads.copy()
            instance.step(params, grads, state, lr)
            unchanged(f"step [{np.dtype(dtype)}] (grads)", grads_copy, grads)
        if params is not buffer or params.dtype != np.dtype(dtype):
            raise PluginCheckError(f"step [{np.dtype(dtype)}]: parameters must be updated in place "
                                   f"and keep their dtype")
        end = float(np.dot(params, params)) / 2
        if not end < start:
            raise PluginCheckError(f"step [{np.dtype(dtype)}]: |p|^2/2 went from {start:.4g} to "
                                   f"{end:.4g} in {steps} steps with lr {lr:g} (expected lower)")


# ----------------------------------------------------------------------------------------------
# Schedules and layers


def check_schedule(schedule: Any, epochs: int = 6, steps_per_epoch: int = 4,
                   base_lr: float = 0.1) -> None:
    """Check a schedule (a class constructible without arguments, or an instance): its spec
    round-trips through JSON; every step of every epoch of a short run gets a finite rate >= 0
    rate (Python floats, as the trainer asks through ``epoch_rates``); and asking again gives
    the same rates (a schedule keeps no state, so a resumed run gets the rates of an
    uninterrupted one)."""
    cls = schedule if isinstance(schedule, type) else type(schedule)
    _fits("schedule", schedules.check(cls))
    instance = cls() if isinstance(schedule, type) else schedule
    dumped = json.loads(json.dumps(instance.model_dump(mode="json")))
    if cls.model_validate(dumped) != instance:
        raise PluginCheckError(f"{cls.__name__}: spec does not round-trip through JSON: {dumped}")
    history: list[Any] = []  # earlier epochs' records, losses falling then flat
    for epoch in range(1, epochs + 1):
        rates = schedules.epoch_rates(instance, epoch, base_lr, epochs, steps_per_epoch, history)
        if len(rates) != steps_per_epoch or not all(
                isinstance(r, float) and math.isfinite(r) and r >= 0 for r in rates):
            raise PluginCheckError(f"epoch {epoch} of {epochs} (base_lr {base_lr:g}): expected "
                                   f"{steps_per_epoch} finite rates >= 0, got {rates!r}")
        again = schedules.epoch_rates(instance, epoch, base_lr, epochs, steps_per_epoch,
                                      list(history))
        if again != rates:
            raise PluginCheckError(f"epoch {epoch}: rates {rates!r}, then {again!r} when asked "
                                   f"again (a schedule must be a function of its arguments)")
        loss = 1.0 / min(epoch, 3)
        history.append(SimpleNamespace(epoch=epoch, train_loss=loss, val_loss=loss, lr=rates[0]))


def check_layer(layer: Any, fan_in: int = 5, n: int = 4, seed: int = 0,
                tolerance: float = TOLERANCE, x: np.ndarray | None = None) -> None:
    """Check a layer (a class, built with its ``example()``, or an instance): the group's type
    check, then ``plugins.mlp.layers.gradcheck.check_layer`` (gradients against float64 central
    differences in training mode, dtypes, evaluation mode)."""
    _fits("layer", layer_plugins.check(layer if isinstance(layer, type) else type(layer)))
    _check_layer_contract(layer, fan_in, n, seed, tolerance, x)
