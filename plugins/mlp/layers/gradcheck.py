"""``check_layer``: a layer against its contract (``base.py``); ``plugins.mlp.checks.check_layer``,
the layers group's full check, runs it after the group's type check.

Training mode, float64: the input gradient and every parameter gradient of ``backward`` against
central differences of ``f = sum(forward(x) * g)`` for a random ``g`` (so dL/dy = g), each
forward with a generator of the same seed (dropout's mask held fixed). Then the output's shape
and dtype (float32 in, float32 out), inputs unmodified, work buffers giving what fresh arrays
give. Evaluation mode: deterministic without a generator, state unchanged, and a row's output
independent of the other rows of its batch (so predictions can be batched any way).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.testing import (TOLERANCE, PluginCheckError, assert_gradient, away_from_zero,
                              numerical_gradient)
from plugins.mlp.layers.base import Pass


def _instance(layer: Any) -> Any:
    if not isinstance(layer, type):
        return layer
    try:
        return layer.example()
    except Exception as exc:  # pydantic's ValidationError, a TypeError...
        raise PluginCheckError(f"{layer.__name__}: cannot build an example instance to check "
                               f"({type(exc).__name__}: {exc}); give it an example() "
                               f"classmethod") from None


def _arrays(layer: Any, fan_in: int, dtype: Any, seed: int):
    """(width, params, state) for ``fan_in``: initialised by the layer, then params moved off
    their initial values (a scale of exactly 1 would hide a missing factor)."""
    rng = np.random.default_rng(seed)
    shapes = layer.shapes(fan_in)
    params = {name: np.zeros(shape, dtype) for name, shape in shapes.params.items()}
    state = {name: np.zeros(shape, dtype) for name, shape in shapes.state.items()}

    def initializer(n_in: int, n_out: int, r: np.random.Generator):
        return r.normal(scale=1 / np.sqrt(n_in), size=(n_in, n_out)), np.zeros(n_out)

    layer.init(params, state, rng, initializer)
    for value in params.values():
        value += rng.normal(scale=0.3, size=value.shape).astype(dtype)
    return int(shapes.width), params, state


def _run(layer: Any, x: np.ndarray, params: dict, state: dict, seed: int,
         work: dict | None = None) -> tuple[np.ndarray, Any, Pass]:
    """One training-mode forward with a fresh generator of ``seed``; state restored after."""
    saved = {name: value.copy() for name, value in state.items()}
    ctx = Pass(True, np.random.default_rng(seed), work, True)
    y, cache = layer.forward(x, params, state, ctx)
    for name, value in state.items():
        value[...] = saved[name]
    return y, cache, ctx


def _gradients(layer: Any, x: np.ndarray, params: dict, state: dict, g: np.ndarray, seed: int,
               work: dict | None = None) -> tuple[np.ndarray, dict]:
    """(dx, {name: dparam}) from backward for dL/dy = g."""
    y, cache, ctx = _run(layer, x, params, state, seed, work)
    grads = {name: np.full_like(value, np.nan) for name, value in params.items()}
    dx = layer.backward(g.copy(), cache, params, grads, ctx)
    if not isinstance(dx, np.ndarray) or dx.shape != x.shape:
        raise PluginCheckError(f"backward: returned {getattr(dx, 'shape', type(dx).__name__)} "
                               f"as dL/dx; expected an array of shape {x.shape}")
    return dx.copy(), {name: value.copy() for name, value in grads.items()}


def check_layer(layer: Any, fan_in: int = 5, n: int = 4, seed: int = 0,
                tolerance: float = TOLERANCE, x: np.ndarray | None = None) -> None:
    """Check a layer (a class, built with its ``example()``, or an instance); raises
    ``PluginCheckError`` saying what failed and where.

    Args:
        x: inputs (n, fan_in) to check at; by default random values with |x| in [0.1, 3]
            (clear of a kink at 0). Give your own to keep clear of other kinks.
    """
    layer = _instance(layer)
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng, (n, fan_in)) if x is None else np.array(x, dtype=np.float64)
    n, fan_in = x.shape
    width, params, state = _arrays(layer, fan_in, np.float64, seed)
    y, _, _ = _run(layer, x.copy(), params, state, seed)
    if not isinstance(y, np.ndarray) or y.shape != (n, width):
        raise PluginCheckError(f"forward: output {getattr(y, 'shape', type(y).__name__)} for "
                               f"input {x.shape}; shapes() promised ({n}, {width})")
    g = rng.normal(size=(n, width))  # dL/dy

    def f() -> float:
        return float(np.sum(_run(layer, x, params, state, seed)[0] * g))

    dx, grads = _gradients(layer, x.copy(), params, state, g, seed)
    assert_gradient("backward: dL/dx", dx, numerical_gradient(f, x), tolerance, at=x)
    for name, value in params.items():
        assert_gradient(f"backward: dL/d{name}", grads[name], numerical_gradient(f, value),
                        tolerance)
    _check_buffers(layer, x, params, state, g, seed, dx, grads)
    _check_float32(layer, x, seed)
    _check_evaluation(layer, x, params, state)


def _close(what: str, found: np.ndarray, expected: np.ndarray, rtol: float = 1e-10) -> None:
    if found.shape != expected.shape or not np.allclose(found, expected, rtol=rtol, atol=1e-12):
        raise PluginCheckError(f"{what}: {found.shape} array differs from {expected.shape} "
                               f"expected (max |diff| {np.max(np.abs(found - expected)):.3g})"
                               if found.shape == expected.shape else
                               f"{what}: shape {found.shape}, expected {expected.shape}")


def _check_buffers(layer: Any, x: np.ndarray, params: dict, state: dict, g: np.ndarray,
                   seed: int, dx: np.ndarray, grads: dict) -> None:
    """With work buffers kept between two steps, as in training, the same results; x unchanged."""
    work: dict = {}
    x_copy = x.copy()
    for step in (1, 2):
        dx_work, grads_work = _gradients(layer, x, params, state, g, seed, work)
        _close(f"backward with ctx.work buffers (step {step}): dL/dx", dx_work, dx)
        for name in grads:
            _close(f"backward with ctx.work buffers (step {step}): dL/d{name}", grads_work[name],
                   grads[name])
    if not np.array_equal(x, x_copy):
        raise PluginCheckError("forward or backward modified its input x in place")


def _check_float32(layer: Any, x: np.ndarray, seed: int) -> None:
    """float32 in, float32 out: forward's output and backward's dL/dx keep the dtype."""
    _, params, state = _arrays(layer, x.shape[1], np.float32, seed)
    x32 = x.astype(np.float32)
    y, cache, ctx = _run(layer, x32, params, state, seed)
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    dx = layer.backward(np.ones_like(y), cache, params, grads, ctx)
    for what, array in (("forward output", y), ("backward dL/dx", dx)):
        if getattr(array, "dtype", None) != np.float32:
            raise PluginCheckError(f"{what}: dtype {getattr(array, 'dtype', None)} for float32 "
                                   f"input (the dtype must be preserved)")


def _check_evaluation(layer: Any, x: np.ndarray, params: dict, state: dict) -> None:
    """Evaluation mode: no generator needed, the same output twice, state unchanged, and every
    row's output the one it has alone."""
    saved = {name: value.copy() for name, value in state.items()}
    ctx = Pass(training=False, rng=None, work=None, need_input_grad=False)
    first, _ = layer.forward(x.copy(), params, state, ctx)
    first = np.array(first)
    again, _ = layer.forward(x.copy(), params, state, ctx)
    _close("forward in evaluation mode, called twice", np.asarray(again), first, rtol=0)
    for name, value in state.items():
        if not np.array_equal(value, saved[name]):
            raise PluginCheckError(f"forward in evaluation mode changed state {name!r}")
    for i in range(x.shape[0]):
        alone, _ = layer.forward(x[i:i + 1].copy(), params, state, ctx)
        _close(f"forward in evaluation mode: row {i} alone", np.asarray(alone)[0], first[i])
