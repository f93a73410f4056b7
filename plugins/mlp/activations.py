"""Activation functions: a value and its derivative, elementwise.

An activation maps the pre-activation ``z = a_prev @ W + b`` of a hidden layer to its output
``a = f(z)``. Backpropagation needs ``f'(z)``; we hand the derivative both ``z`` and ``a`` so that
sigmoid and tanh can reuse the output they already computed (``a * (1 - a)``, ``1 - a**2``).

A plugin registers an ``Activation`` object under the ``nnpipe.activations`` entry-point group.
Every function here is a plain module-level function (no lambdas), so models pickle by reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity.

    Attributes:
        name: the name it is registered under (saved in ``model.json``).
        value: ``z -> a``, same shape and dtype as ``z``.
        derivative: ``(z, a) -> da/dz``, same shape and dtype as ``z``.
    """

    name: str
    value: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------------------------
# sigmoid: 1 / (1 + exp(-z)) written as (1 + tanh(z/2)) / 2, which never overflows (z = -1000 is
# fine: tanh saturates at -1 instead of exp(1000) overflowing).

def sigmoid_value(z: np.ndarray) -> np.ndarray:
    a = np.tanh(z * 0.5)  # (n, h) in [-1, 1]
    a += 1
    a *= 0.5  # (n, h) in [0, 1]
    return a


def sigmoid_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return a * (1 - a)  # (n, h)


# ----------------------------------------------------------------------------------------------
# relu: max(z, 0); its derivative at 0 is taken as 0 (as the notebook and scikit-learn do).

def relu_value(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)  # (n, h)


def relu_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return (z > 0).astype(z.dtype)  # (n, h) of 0 and 1


# ----------------------------------------------------------------------------------------------
# tanh

def tanh_value(z: np.ndarray) -> np.ndarray:
    return np.tanh(z)  # (n, h)


def tanh_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return 1 - a * a  # (n, h)


sigmoid = Activation("sigmoid", sigmoid_value, sigmoid_derivative)
relu = Activation("relu", relu_value, relu_derivative)
tanh = Activation("tanh", tanh_value, tanh_derivative)


def check(obj: Any) -> str | None:
    """None when ``obj`` can serve as an activation, else what is wrong (for the registry)."""
    missing = [attr for attr in ("value", "derivative") if not callable(getattr(obj, attr, None))]
    if missing:
        return (f"expected an Activation with callable value(z) and derivative(z, a); "
                f"{type(obj).__name__} has no callable {' or '.join(missing)}")
    return None
