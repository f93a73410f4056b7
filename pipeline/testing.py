"""Generic checks a plugin author calls from their own tests, and ``nnpipe plugins --check`` runs.

The framework knows no model, so what is here is what any plugin group can use:

- ``numerical_gradient``, ``relative_error``, ``assert_gradient``, ``away_from_zero``: central
  finite differences in float64 and the comparison of an analytic derivative against them;
- ``missing_methods``, ``same_shape_dtype``, ``unchanged``: the small contract tests every
  group's check is built of;
- ``check_stage`` (a ``StageSpec``) and ``check_dataset`` (a dataset source): the full checks of
  the framework's own groups (``pipeline.groups``), and ``tiny_dataset`` to run stages on;
- ``check_plugin`` and ``plugin_status``: run a group's declared checks on one member (what
  ``nnpipe plugins`` prints).

The checks of a group declared by a plugin live beside that plugin, with its declaration (the
network's are in its own package). Every check raises ``PluginCheckError`` (an
``AssertionError``, so pytest reports it like an ``assert``) whose message says what failed and
where: the relative error of a derivative, the input element where analytic and numeric
derivatives disagree most, the shape or dtype expected and found.
"""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path
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


def missing_methods(obj: Any, *names: str) -> list[str]:
    """Those of ``names`` that are not callable attributes of ``obj``."""
    return [name for name in names if not callable(getattr(obj, name, None))]


def same_shape_dtype(what: str, result: Any, like: np.ndarray) -> np.ndarray:
    """``result`` as an array, or a PluginCheckError if its shape or dtype differs from ``like``."""
    if not isinstance(result, np.ndarray):
        raise PluginCheckError(f"{what}: returned {type(result).__name__}, expected an ndarray")
    if result.shape != like.shape:
        raise PluginCheckError(f"{what}: shape {result.shape} for input of shape {like.shape}")
    if result.dtype != like.dtype:
        raise PluginCheckError(f"{what}: dtype {result.dtype} for {like.dtype} input "
                               f"(the dtype must be preserved)")
    return result


def unchanged(what: str, before: np.ndarray, after: np.ndarray) -> None:
    """A ``PluginCheckError`` when ``after`` differs from its copy ``before`` (modified in place)."""
    if not np.array_equal(before, after, equal_nan=True):
        raise PluginCheckError(f"{what}: modified its input in place")


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
# Datasets


def check_dataset(source: Any) -> None:
    """Check a dataset source without reading or downloading anything: a non-empty name, files
    per split as (images, labels) pairs of plain file names, folders to look in, and sha256
    digests (if any) of 64 hex digits for files of the dataset."""
    problem = _dataset_problem(source)
    if problem:
        raise PluginCheckError(problem)


def _dataset_problem(source: Any) -> str | None:
    from pipeline.groups import FRAMEWORK_GROUPS

    problem = FRAMEWORK_GROUPS["datasets"].type_check(source)
    if problem:
        return problem
    if not isinstance(getattr(source, "name", None), str) or not source.name:
        return f"name: expected a non-empty string, got {getattr(source, 'name', None)!r}"
    if not source.files:
        return "files: no split (expected split -> (images file, labels file))"
    names = []
    for split, pair in source.files.items():
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(
                isinstance(f, str) and f and "/" not in f and "\\" not in f and f not in (".", "..")
                for f in pair)):
            return f"files[{split!r}]: expected (images file name, labels file name), got {pair!r}"
        names += pair
    folders = list(source.candidates(None))
    if not all(isinstance(folder, (str, Path)) for folder in folders):
        return f"candidates(None): expected paths, got {folders!r}"
    for name, digest in dict(getattr(source, "sha256", None) or {}).items():
        if name not in names or not (isinstance(digest, str) and len(digest) == 64
                                     and all(c in "0123456789abcdef" for c in digest.lower())):
            return f"sha256[{name!r}]: expected a 64-digit hex digest of one of its files"
    return None


# ----------------------------------------------------------------------------------------------
# Which check for which group


def check_plugin(group: str, obj: Any, registry: Any = None) -> bool:
    """Run the checks ``group``'s declaration gives on ``obj``: its type check, then its full
    check. Returns False when the group has no full check (only the type check ran).

    Raises:
        PluginCheckError: the object fails its contract.
        pipeline.errors.PluginError: no installed distribution declares ``group``.
    """
    from pipeline.registry import default_registry

    declaration = (registry or default_registry()).group(group)
    problem = declaration.type_check(obj) if declaration.type_check is not None else None
    if problem:
        raise PluginCheckError(problem)
    if declaration.check is None:
        return False
    declaration.check(obj)
    return True


def plugin_status(registry: Any, group: str, name: str, check: bool) -> tuple[str, str]:
    """(status, problem) of one plugin, as ``nnpipe plugins`` prints it: ``OK`` or ``BROKEN``
    when listing; ``PASS``, ``FAIL``, ``BROKEN``, or ``LOADED`` (its group has no full check)
    with ``check``."""
    from pipeline.errors import PluginError

    try:
        value = registry.load(group, name)  # runs the group's type check
    except PluginError as exc:
        return "BROKEN", str(exc)
    if not check:
        return "OK", ""
    try:
        checked = check_plugin(group, value, registry)
    except PluginCheckError as exc:
        return "FAIL", str(exc)
    except Exception as exc:  # a plugin may fail its check in any way
        return "FAIL", f"{type(exc).__name__}: {exc}"
    return ("PASS" if checked else "LOADED"), ""


def __getattr__(name: str) -> Any:
    """For one release, a group's full check by the name it had here (the checks of groups a
    plugin declares moved beside it), found through the group declarations; with a
    ``DeprecationWarning`` naming the module to import it from."""
    found = _declared_check(name) if name.startswith("check_") else None
    if found is None:
        raise AttributeError(f"module 'pipeline.testing' has no attribute {name!r}")
    warnings.warn(f"pipeline.testing.{name} moved: import it from {found.__module__}",
                  DeprecationWarning, stacklevel=2)
    return found


def _declared_check(name: str) -> Callable[..., Any] | None:
    """The full check called ``name`` of an installed group declaration, if one is."""
    from pipeline.errors import PluginError
    from pipeline.registry import default_registry

    registry = default_registry()
    for group in registry.names("groups"):
        try:
            check = registry.group(group).check
        except PluginError:
            continue  # a broken declaration: its group's checks are not available
        if check is not None and getattr(check, "__name__", None) == name:
            return getattr(importlib.import_module(check.__module__), name, check)
    return None
