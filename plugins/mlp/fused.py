"""Fused elementwise kernels: an optimiser's update in one pass instead of ten, when numba is
installed (the ``fast`` extra: ``pip install 'nnpipe[fast]'``).

NumPy runs Adam's update as ten ufunc passes over the P parameters (``optim._adam_chain``), each
reading and writing whole vectors: at 1.86M parameters that is memory traffic, not arithmetic, and
takes 2.9-4.2 ms a step on one core of the benchmark machine; one compiled pass over the same
vectors takes 1.0-1.2 ms (benchmarks/README.md, "Session 14"). The kernels here do, for each
entry, exactly the float operations of the NumPy chain in the same order (no fused multiply-add,
no fast-math reassociation, the scalars rounded to the arrays' dtype as NumPy 2 rounds Python
floats), so the result is the same bit for bit either way: a run, a checkpoint and its resume do
not depend on whether numba is installed. ``tests/plugins/mlp/test_fused.py`` holds them to that.

They are compiled on first use in a process (0.35-0.45 s for each kernel and dtype; nothing is
written to disk), and release the GIL, so ``parallel.Lanes`` still runs one block per thread.

``NNPIPE_KERNELS`` chooses: unset, the fused kernels when numba can be imported (installed, and
built for this NumPy) and the NumPy chains otherwise; ``numpy``, always the NumPy chains;
``numba``, the fused kernels, or an error when numba cannot be imported. Any other value is an
error naming it.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, Callable, NamedTuple

import numpy as np

from pipeline.errors import RunError, UserError

#: The environment setting that chooses the kernels, and its values.
SETTING = "NNPIPE_KERNELS"
CHOICES = ("numpy", "numba")


class KernelsSettingError(UserError):
    """``NNPIPE_KERNELS`` names no kernels, or asks for numba where it cannot be imported."""


def chosen() -> str:
    """Which kernels this process uses: ``"numba"`` or ``"numpy"`` (see the module's docstring);
    raises ``KernelsSettingError`` on a bad ``NNPIPE_KERNELS``."""
    return _resolve(os.environ.get(SETTING, "").strip().lower())


@functools.lru_cache(maxsize=None)
def _resolve(value: str) -> str:
    if value and value not in CHOICES:
        raise KernelsSettingError(
            f"{SETTING}={value!r}: must be one of {', '.join(CHOICES)} (or unset)")
    if value == "numpy":
        return "numpy"
    try:  # 0.2 s, paid only by a process that trains
        import numba  # noqa: F401
    except Exception as error:  # not installed, or built for another NumPy than this one
        if value == "numba":
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise KernelsSettingError(f"{SETTING}=numba: numba cannot be imported ({reason}); "
                                      f"pip install 'nnpipe[fast]'") from None
        return "numpy"
    return "numba"


def chain(name: str, numpy_chain: Callable[..., None]) -> Callable[..., None]:
    """The function ``Lanes.run`` calls for optimiser ``name``'s update (``adam``, ``nadam``,
    ``rmsprop``, ``adagrad``, ``momentum``), with ``numpy_chain``'s signature: the fused kernel's
    wrapper, or ``numpy_chain`` itself when the NumPy kernels are chosen."""
    if chosen() != "numba":
        return numpy_chain
    return functools.partial(_fused, name, numpy_chain)


def _fused(name: str, numpy_chain: Callable[..., None], *args: Any) -> None:
    """One block of the update: the compiled kernel ``name`` on the chain's arrays (its leading
    arguments) and scalars, or ``numpy_chain`` for a layout the kernels do not take."""
    kernel = _KERNELS[name]
    arrays = args[:kernel.arrays]
    if not _kernel_ready(arrays):
        numpy_chain(*args)
        return
    scalars = kernel.prepare(arrays[0].dtype.type, *args[kernel.arrays:])
    try:
        _compiled()[name](*arrays[:kernel.used], *scalars)
    except Exception as error:  # only building can fail: a built loop raises nothing
        reason = (str(error).strip().splitlines() or [""])[0]
        raise RunError(f"numba could not build the {name} update ({type(error).__name__}: "
                       f"{reason}); set {SETTING}=numpy to update with NumPy") from error


def _kernel_ready(arrays: tuple[np.ndarray, ...]) -> bool:
    """Whether the compiled kernels take these arrays: contiguous, float32 or float64, alike."""
    dtype, shape = arrays[0].dtype, arrays[0].shape
    if dtype != np.float32 and dtype != np.float64:
        return False
    for array in arrays:  # a loop, not all(generator): this runs at every step
        if array.dtype != dtype or array.shape != shape or not array.flags.c_contiguous:
            return False
    return True


@functools.lru_cache(maxsize=None)
def _compiled() -> dict[str, Any]:
    """The kernels, built on first use (importing numba costs 0.2 s: only training pays it)."""
    from numba import njit

    # error_model="numpy": a division follows IEEE rules instead of checking for zero (the
    # divisors are square roots plus eps > 0); nogil: Lanes' pool threads run blocks at once.
    compile_ = njit(nogil=True, cache=False, error_model="numpy", fastmath=False)
    compiled = {k.function: compile_(k.function) for k in _KERNELS.values()}  # each once
    return {name: compiled[k.function] for name, k in _KERNELS.items()}


# Each kernel does, entry by entry, the operations of the NumPy chain it replaces
# (plugins/mlp/optim.py), in its order; each ``prepare`` turns the chain's scalars into the
# kernel's, every float rounded to the arrays' dtype as NumPy 2 rounds a Python float operand
# (NEP 50), a flag kept as a flag, and ``1 - alpha`` computed before the rounding as the chain
# does. No literal number appears in a kernel: numba would widen a float32 expression to float64.

def _adam(params, grads, M, V, beta1, beta2, eps, a, b, nesterov):
    """Adam's moments ``M = M b1 + g;  V = V b2 + g g``, then with ``d = sqrt(V) + eps``
    Adam's ``params -= (M / d) a`` or NAdam's ``params -= (g b) / d;  params -= (M a) / d``."""
    for i in range(params.shape[0]):
        g = grads[i]
        m = M[i] * beta1 + g
        v = V[i] * beta2 + g * g
        M[i] = m
        V[i] = v
        if nesterov:
            d = math.sqrt(v) + eps
            params[i] = (params[i] - (g * b) / d) - (m * a) / d
        else:
            params[i] -= (m / (math.sqrt(v) + eps)) * a


def _rmsprop(params, grads, v, work, g_avg, buffer, alpha, rest, eps, momentum, has_momentum,
             centered, lr, zero):
    """``v = v alpha + (g g) rest``; centered ``g_avg = g_avg alpha + g rest`` and the root of
    ``max(v - g_avg g_avg, 0)``; ``w = g / (root + eps)``; momentum ``buffer = buffer momentum +
    w`` and ``params -= buffer lr``, else ``params -= w lr``."""
    for i in range(params.shape[0]):
        g = grads[i]
        s = v[i] * alpha + (g * g) * rest
        v[i] = s
        if centered:
            c = g_avg[i] * alpha + g * rest
            g_avg[i] = c
            s = s - c * c
            if s < zero:  # NumPy's maximum(s, 0): a NaN stays NaN; ``zero`` keeps s's dtype
                s = zero
        w = g / (math.sqrt(s) + eps)
        if has_momentum:
            w = buffer[i] * momentum + w
            buffer[i] = w
        params[i] -= w * lr


def _adagrad(params, grads, total, eps, clr):
    """``sum += g g;  params -= (g / (sqrt(sum) + eps)) clr``."""
    for i in range(params.shape[0]):
        g = grads[i]
        s = total[i] + g * g
        total[i] = s
        params[i] -= (g / (math.sqrt(s) + eps)) * clr


def _momentum(params, grads, velocity, momentum, nesterov, lr):
    """``v = v momentum + g``; ``params -= (g + momentum v) lr`` (Nesterov) or ``v lr``."""
    for i in range(params.shape[0]):
        g = grads[i]
        u = velocity[i] * momentum + g
        velocity[i] = u
        params[i] -= ((g + momentum * u) if nesterov else u) * lr


def _floats(cast: Callable[[float], Any], *scalars: float) -> tuple:
    return tuple(cast(x) for x in scalars)


class Kernel(NamedTuple):
    """A compiled loop standing in for an optimiser's NumPy chain."""

    function: Callable[..., None]  # the loop numba compiles
    arrays: int  # how many of the chain's leading arguments are arrays (the rest are scalars)
    used: int  # how many of those the loop takes
    prepare: Callable[..., tuple]  # (cast, *the chain's scalars) -> the loop's scalars


_KERNELS: dict[str, Kernel] = {
    "adam": Kernel(_adam, 5, 4, lambda cast, beta1, beta2, eps, step: (
        cast(beta1), cast(beta2), cast(eps), cast(step), cast(0.0), False)),
    "nadam": Kernel(_adam, 6, 4, lambda cast, beta1, beta2, eps, a, b: (
        cast(beta1), cast(beta2), cast(eps), cast(a), cast(b), True)),
    "rmsprop": Kernel(_rmsprop, 6, 6, lambda cast, alpha, eps, momentum, centered, lr: (
        cast(alpha), cast(1 - alpha), cast(eps), cast(momentum), bool(momentum), bool(centered),
        cast(lr), cast(0.0))),
    "adagrad": Kernel(_adagrad, 4, 3, _floats),
    "momentum": Kernel(_momentum, 3, 3, lambda cast, momentum, nesterov, lr: (
        cast(momentum), bool(nesterov), cast(lr))),
}
