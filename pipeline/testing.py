"""Checks a plugin author calls from their own tests, and ``nnpipe plugins --check`` runs.

The framework knows nothing about networks, so the objects are duck-typed:

- an **activation** is anything with ``value(z) -> a`` and ``derivative(z, a) -> da/dz``,
  both elementwise, and optionally the in-place fast paths ``value_into(z, out)`` and
  ``backprop(delta, z, a)``, checked against the first two;
- a **loss** is anything with ``value(output, target) -> float`` and
  ``gradient(output, target) -> dL/doutput``, on outputs (n, k) and per-row targets (n, k), and
  optionally ``fused(output, target) -> (value, gradient)``, checked against the first two, and
  ``weighted(output, target, weight, smoothing) -> (value, gradient)`` (class weights), its
  gradient checked against central differences of its value;
- an **optimizer** is a class (a pydantic model whose fields all have defaults) with
  ``init_state(params) -> state`` and ``step(params, grads, state, lr)`` updating ``params`` in place;
- an **initializer** is a function ``(fan_in, fan_out, rng) -> (W (fan_in, fan_out), b (fan_out,))``;
- a **stage** is a ``StageSpec`` subclass (or an instance of one);
- a member of a group declared outside the framework (the network's ``layers``) carries its own
  full check as a callable ``plugin_check`` attribute (``Layer.plugin_check`` runs
  ``plugins.mlp.layers.gradcheck.check_layer``), which ``check_plugin`` runs.

Every check raises ``PluginCheckError`` (an ``AssertionError``, so pytest reports it like an
``assert``) whose message says what failed and where: the relative error of a derivative, the
input element where analytic and numeric derivatives disagree most, the shape or dtype expected
and found. Derivatives are compared with central finite differences in float64.

``CHECKS`` maps a short group name (as in ``pipeline.registry.GROUPS``) to its check;
``TYPE_CHECKS`` maps it to a cheap test of the object's kind used when a plugin is loaded.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

import numpy as np

from pipeline.artifacts import Dataset, Split
from pipeline.errors import UserError
from pipeline.spec import StageContext, StageSpec

#: Largest relative error accepted between an analytic derivative and central differences.
TOLERANCE = 1e-6


class PluginCheckError(AssertionError):
    """A plugin does not honour its contract; the message says what, by how much and where."""


# ----------------------------------------------------------------------------------------------
# Finite differences


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences; ``f`` reads ``x``, which is perturbed in place one entry
    at a time and restored. ``x`` must be a contiguous float64 array."""
    grad = np.zeros_like(x)
    flat, grad_flat = x.reshape(-1), grad.reshape(-1)  # views of x and grad
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        grad_flat[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """|a - n| / (|a| + |n|) over the whole array (Euclidean norms); 0 when both are 0."""
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / scale) if scale > 0 else 0.0


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], low: float = 0.1,
                   high: float = 3.0) -> np.ndarray:
    """Random float64 values with |v| in [low, high]: clear of a kink at 0 (relu's) by far more
    than the finite-difference step."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


def assert_gradient(what: str, analytic: np.ndarray, numeric: np.ndarray,
                    tolerance: float = TOLERANCE, at: np.ndarray | None = None) -> None:
    """Raise ``PluginCheckError`` when ``analytic`` and ``numeric`` differ by more than
    ``tolerance`` (relative error), naming the element where they differ most (and the input
    value there, when ``at`` gives the inputs)."""
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise PluginCheckError(f"{what}: shape {analytic.shape}, expected {numeric.shape}")
    error = relative_error(analytic, numeric)
    if not error < tolerance:  # also catches NaN
        worst = np.unravel_index(int(np.argmax(np.abs(analytic - numeric))), numeric.shape)
        where = tuple(int(i) for i in worst)
        if at is not None:
            where = f"{where} (input {float(at[worst]):.6g})"
        raise PluginCheckError(
            f"{what}: relative error {error:.3g} > {tolerance:g} against central differences; "
            f"worst at element {where} of shape {numeric.shape}: analytic {analytic[worst]:.6g}, "
            f"numeric {numeric[worst]:.6g}")


# ----------------------------------------------------------------------------------------------
# Contract helpers


def _has(obj: Any, *names: str) -> list[str]:
    return [name for name in names if not callable(getattr(obj, name, None))]


def _same_shape_dtype(what: str, result: Any, like: np.ndarray) -> np.ndarray:
    """``result`` as an array, or a PluginCheckError if its shape or dtype differs from ``like``."""
    if not isinstance(result, np.ndarray):
        raise PluginCheckError(f"{what}: returned {type(result).__name__}, expected an ndarray")
    if result.shape != like.shape:
        raise PluginCheckError(f"{what}: shape {result.shape} for input of shape {like.shape}")
    if result.dtype != like.dtype:
        raise PluginCheckError(f"{what}: dtype {result.dtype} for {like.dtype} input "
                               f"(the dtype must be preserved)")
    return result


def _unchanged(what: str, before: np.ndarray, after: np.ndarray) -> None:
    if not np.array_equal(before, after, equal_nan=True):
        raise PluginCheckError(f"{what}: modified its input in place")


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
    missing = _has(activation, "value", "derivative")
    if missing:
        raise PluginCheckError(f"not an activation: no callable {' or '.join(missing)}")
    rng = np.random.default_rng(seed)
    z = away_from_zero(rng, (4, 5)) if z is None else np.array(z, dtype=np.float64)  # (n, h)
    for dtype in (np.float64, np.float32):
        zd = z.astype(dtype)
        z_copy = zd.copy()
        a = _same_shape_dtype(f"value(z) [{np.dtype(dtype)}]", activation.value(zd), zd)
        _unchanged(f"value(z) [{np.dtype(dtype)}]", z_copy, zd)
        a_copy = a.copy()
        d = activation.derivative(zd, a)
        _same_shape_dtype(f"derivative(z, a) [{np.dtype(dtype)}]", d, zd)
        _unchanged(f"derivative(z, a) [{np.dtype(dtype)}] (z)", z_copy, zd)
        _unchanged(f"derivative(z, a) [{np.dtype(dtype)}] (a)", a_copy, a)

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
            _agree(f"value_into(z, out) [{np.dtype(dtype)}]", out, a)
        if backprop is not None:
            delta = rng.normal(size=zd.shape).astype(dtype)  # (n, h)
            expected = delta * activation.derivative(zd.copy(), a.copy())
            backprop(delta, zd, a)
            _agree(f"backprop(delta, z, a) [{np.dtype(dtype)}]", delta, expected)


def _agree(what: str, fast: np.ndarray, reference: np.ndarray) -> None:
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
    too), neither argument modified; ``link(output)``, if present, keeps the output's shape.

    Args:
        output: raw network outputs (n, k); by default random normal values.
        target: targets (n, k); by default random one-hot rows.
    """
    missing = _has(loss, "value", "gradient")
    if missing:
        raise PluginCheckError(f"not a loss: no callable {' or '.join(missing)}")
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
        _same_shape_dtype(f"gradient(output, target) [{np.dtype(dtype)}]", loss.gradient(o, t), o)
        if callable(getattr(loss, "link", None)):
            link = np.asarray(loss.link(o))
            if link.shape != o.shape:
                raise PluginCheckError(f"link(output): shape {link.shape} for output {o.shape}")
        _unchanged(f"loss [{np.dtype(dtype)}] (output)", o_copy, o)
        _unchanged(f"loss [{np.dtype(dtype)}] (target)", t_copy, t)

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
    _agree("weighted(output, target, equal weights, 0) gradient", np.asarray(gradient),
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
                                   f"(value, gradient) pair, got {_describe(result)}")
        value, gradient = result
        expected = float(loss.value(o_copy.copy(), t_copy.copy()))
        if not np.isclose(float(value), expected, rtol=8 * np.finfo(dtype).eps, atol=0):
            raise PluginCheckError(f"fused(output, target) [{np.dtype(dtype)}]: value {value!r} "
                                   f"but value(output, target) gives {expected!r}")
        gradient = _same_shape_dtype(f"fused(output, target) [{np.dtype(dtype)}] gradient",
                                     gradient, o)
        _agree(f"fused(output, target) [{np.dtype(dtype)}] gradient", gradient,
               np.asarray(loss.gradient(o_copy.copy(), t_copy.copy())))
        _unchanged(f"fused(output, target) [{np.dtype(dtype)}] (output)", o_copy, o)
        _unchanged(f"fused(output, target) [{np.dtype(dtype)}] (target)", t_copy, t)


# ----------------------------------------------------------------------------------------------
# Initializers and optimizers


def check_initializer(initializer: Any, fan_in: int = 5, fan_out: int = 3, seed: int = 0) -> None:
    """Check an initializer: ``(fan_in, fan_out, rng) -> (W (fan_in, fan_out), b (fan_out,))``,
    finite float arrays, the same for the same seed."""
    if not callable(initializer):
        raise PluginCheckError(f"not an initializer: {type(initializer).__name__} is not callable")
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
    instance = optimizer() if isinstance(optimizer, type) else optimizer
    missing = _has(instance, "init_state", "step")
    if missing:
        raise PluginCheckError(f"not an optimizer: no callable {' or '.join(missing)}")
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
            _unchanged(f"step [{np.dtype(dtype)}] (grads)", grads_copy, grads)
        if params is not buffer or params.dtype != np.dtype(dtype):
            raise PluginCheckError(f"step [{np.dtype(dtype)}]: parameters must be updated in place "
                                   f"and keep their dtype")
        end = float(np.dot(params, params)) / 2
        if not end < start:
            raise PluginCheckError(f"step [{np.dtype(dtype)}]: |p|^2/2 went from {start:.4g} to "
                                   f"{end:.4g} in {steps} steps with lr {lr:g} (expected lower)")


# ----------------------------------------------------------------------------------------------
# Stages


def tiny_dataset(seed: int = 0, n: int = 24, sample_shape: tuple[int, ...] = (6, 6),
                 classes: int = 3, splits: tuple[str, ...] = ("train", "test")) -> Dataset:
    """A small ``Dataset`` of uint8 images (count, *sample_shape) and int64 labels in
    0..classes-1, as a reader stage produces it: ``n`` train samples, ``n // 3`` in each other
    split."""
    rng = np.random.default_rng(seed)

    def split(count: int) -> Split:
        x = rng.integers(0, 256, size=(count, *sample_shape), dtype=np.uint8)
        return Split(x=x, y=rng.integers(0, classes, size=count).astype(np.int64))

    return Dataset(splits={name: split(n if name == "train" else n // 3) for name in splits},
                   class_names=tuple(f"c{i}" for i in range(classes)),
                   sample_shape=tuple(sample_shape), name="tiny")


def _describe(value: Any) -> str:
    """A short description of an artifact, for messages."""
    if isinstance(value, Dataset):
        return "Dataset(" + ", ".join(f"{k}: x {s.x.shape} {s.x.dtype}, y {s.y.shape}"
                                      for k, s in value.splits.items()) + ")"
    return type(value).__name__


def _arrays(value: Any) -> list[np.ndarray]:
    """Every ndarray reachable in ``value`` (a Dataset, a Split, a mapping, a sequence...)."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, Dataset):
        return [a for s in value.splits.values() for a in (s.x, s.y)]
    if isinstance(value, Split):
        return [value.x, value.y]
    if isinstance(value, Mapping):
        return [a for v in value.values() for a in _arrays(v)]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _arrays(v)]
    return []


def _checked_spec(stage: Any, cls: type, must_build: bool) -> Any:
    """The spec instance of ``stage`` (built from the class when ``stage`` is one), after checking
    it is a StageSpec with a JSON Schema that round-trips through JSON; None when the class needs
    arguments and ``must_build`` is false."""
    if not (isinstance(cls, type) and issubclass(cls, StageSpec)):
        raise PluginCheckError(f"not a stage: expected a StageSpec subclass, got {stage!r}")
    try:
        cls.model_json_schema()
    except Exception as exc:  # pydantic raises several kinds here
        raise PluginCheckError(f"{cls.__name__}: no JSON Schema ({type(exc).__name__}: {exc})")
    if isinstance(stage, type):
        try:
            stage = cls()
        except Exception as exc:
            if must_build:
                raise PluginCheckError(f"{cls.__name__}() needs arguments ({exc}); pass an "
                                       f"instance") from None
            return None
    dumped = json.loads(json.dumps(stage.model_dump(mode="json")))
    again = cls.model_validate(dumped)
    if again != stage or again.model_dump(mode="json") != dumped:
        raise PluginCheckError(f"{cls.__name__}: spec does not round-trip through JSON: "
                               f"{dumped} -> {again.model_dump(mode='json')}")
    return stage


def check_stage(stage: Any, inputs: Mapping[str, Any] | None = None,
                context: StageContext | None = None, run: bool | None = None) -> dict[str, Any] | None:
    """Check a stage: a ``StageSpec`` subclass whose spec round-trips through
    ``model_dump(mode="json")`` -> JSON -> ``model_validate``, with a JSON Schema; then (when
    ``run``) that ``run(inputs)`` returns exactly the declared ``outputs`` and leaves its inputs'
    arrays unmodified. Returns the outputs when it ran.

    Args:
        stage: a spec instance, or a class whose fields all have defaults.
        inputs: the artifacts to run on; by default ``{"data": tiny_dataset()}`` when the stage
            reads only ``data`` (and nothing when it reads nothing).
        run: whether to run the stage; by default when ``inputs`` is given or can be generated
            (a class that cannot be built without arguments is then only checked as a class).
    """
    cls = stage if isinstance(stage, type) else type(stage)
    stage = _checked_spec(stage, cls, must_build=inputs is not None or bool(run))
    if stage is None:
        return None  # a class that needs arguments: nothing more to check without an example

    if inputs is None and set(cls.inputs) == {"data"}:
        inputs = {"data": tiny_dataset()}
    if run is None:
        run = inputs is not None or not cls.inputs
    if not run:
        return None
    inputs = dict(inputs or {})
    missing = [name for name in cls.inputs if name not in inputs]
    if missing:
        raise PluginCheckError(f"{cls.__name__}: sample inputs lack {', '.join(missing)}")
    before = [a.copy() for a in _arrays(inputs)]
    try:
        wanted = (*cls.inputs, *cls.optional_inputs)  # as the runner passes them
        outputs = stage.run({name: inputs[name] for name in wanted if name in inputs},
                            context or StageContext(seed=0))
    except UserError as exc:  # the stage refuses these inputs: say which ones
        shown = {name: _describe(value) for name, value in inputs.items()}
        raise PluginCheckError(f"{cls.__name__}.run failed on {shown}: {exc}") from exc
    if not isinstance(outputs, Mapping) or set(outputs) != set(cls.outputs):
        found = sorted(outputs) if isinstance(outputs, Mapping) else type(outputs).__name__
        raise PluginCheckError(f"{cls.__name__}.run returned {found}; declared outputs "
                               f"{sorted(cls.outputs)}")
    for index, (old, new) in enumerate(zip(before, _arrays(inputs))):
        if old.shape != new.shape or not np.array_equal(old, new, equal_nan=True):
            raise PluginCheckError(f"{cls.__name__}.run modified input array #{index} of shape "
                                   f"{old.shape} in place")
    return dict(outputs)


# ----------------------------------------------------------------------------------------------
# Which check for which group


def _stage_type(obj: Any) -> str | None:
    if isinstance(obj, type) and issubclass(obj, StageSpec):
        return None
    return f"expected a StageSpec subclass, got {obj!r}"


def _methods(kind: str, *names: str) -> Callable[[Any], str | None]:
    def check(obj: Any) -> str | None:
        missing = _has(obj, *names)
        if missing:
            return (f"expected {kind} with callable {', '.join(names)}; "
                    f"{type(obj).__name__} has no callable {', '.join(missing)}")
        return None

    return check


def _optimizer_type(obj: Any) -> str | None:
    if isinstance(obj, type) and not _has(obj, "init_state", "step"):
        return None
    return f"expected an optimizer class with init_state and step, got {obj!r}"


def _layer_type(obj: Any) -> str | None:
    if isinstance(obj, type) and not _has(obj, "shapes", "forward", "backward", "plugin_check"):
        return None
    return (f"expected a layer class with shapes, forward, backward and plugin_check (subclass "
            f"plugins.mlp.layers.Layer), got {obj!r}")


def _callable(obj: Any) -> str | None:
    return None if callable(obj) else f"expected a function, got {type(obj).__name__}"


#: Short group name -> a cheap test of a loaded object's kind: None if it fits, else what is wrong.
TYPE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "stages": _stage_type,
    "activations": _methods("an activation", "value", "derivative"),
    "losses": _methods("a loss", "value", "gradient"),
    "optimizers": _optimizer_type,
    "initializers": _callable,
    "layers": _layer_type,
}

#: Short group name -> the full check ``nnpipe plugins --check`` runs on a loaded object.
CHECKS: dict[str, Callable[[Any], Any]] = {
    "stages": check_stage,
    "activations": check_activation,
    "losses": check_loss,
    "optimizers": check_optimizer,
    "initializers": check_initializer,
}


def check_plugin(group: str, obj: Any) -> None:
    """Run the check of ``group`` on ``obj``, else the object's own ``plugin_check()``, else
    only the type check.

    Raises:
        PluginCheckError: the object fails its contract.
    """
    problem = TYPE_CHECKS.get(group, lambda _: None)(obj)
    if problem:
        raise PluginCheckError(problem)
    check = CHECKS.get(group)
    if check is not None:
        check(obj)
    elif callable(getattr(obj, "plugin_check", None)):
        obj.plugin_check()  # a group the framework does not declare: the object's own check
