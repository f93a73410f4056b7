"""Activation functions: a value and its derivative, elementwise.

sigmoid, relu, tanh, leaky_relu, elu, gelu (tanh form), softplus, identity.

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
    #: Optional fast paths for the training loop (preallocated buffers, no temporaries):
    #: ``value_into(z, out)`` writes f(z) into ``out`` (never ``z`` itself, so it may use ``out``
    #: as scratch) and returns it; ``backprop(delta, z, a)`` multiplies
    #: ``delta`` by f'(z) in place. Without them the two functions above are used.
    value_into: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    backprop: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None
    #: Saturating (sigmoid, tanh): the per-layer diagnostics count saturated units, not dead ones.
    saturates: bool = False
    #: Optional, for ``nnpipe export --format onnx``: ``onnx(graph, x) -> y`` appends the ONNX
    #: nodes computing f to a ``plugins.mlp.onnx_forms.OnnxGraph`` (the built-ins' are there).
    onnx: Callable[[Any, str], str] | None = None


# The model calls these two, not methods: a plugin's activation may be any object with ``value``
# and ``derivative`` (the fast paths are optional attributes).

def apply_into(activation: Any, z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """f(z) written into ``out`` (same shape and dtype as ``z``); returns ``out``."""
    value_into = getattr(activation, "value_into", None)
    if value_into is not None:
        return value_into(z, out)
    out[...] = activation.value(z)
    return out


def scale_by_derivative(activation: Any, delta: np.ndarray, z: np.ndarray, a: np.ndarray) -> None:
    """delta *= f'(z), in place (backpropagation through the activation)."""
    backprop = getattr(activation, "backprop", None)
    if backprop is not None:
        backprop(delta, z, a)
    else:
        delta *= activation.derivative(z, a)


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


def relu_into(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    # max(z, out) with out zeroed first: NumPy's maximum against a scalar skips its SIMD loop
    # (17.5 us against 6.4 us + a memset for a 128 x 256 float32 batch)
    out.fill(0)
    return np.maximum(z, out, out=out)  # (n, h)


def relu_backprop(delta: np.ndarray, z: np.ndarray, a: np.ndarray) -> None:
    np.multiply(delta, z > 0, out=delta)  # (n, h): zero where the unit was off


# ----------------------------------------------------------------------------------------------
# tanh

def tanh_value(z: np.ndarray) -> np.ndarray:
    return np.tanh(z)  # (n, h)


def tanh_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return 1 - a * a  # (n, h)


# ----------------------------------------------------------------------------------------------
# leaky_relu: z for z > 0, 0.01 z otherwise (the slope PyTorch and Keras use by default).

LEAKY_SLOPE = 0.01


def leaky_relu_value(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z, z * z.dtype.type(LEAKY_SLOPE))  # (n, h)


def leaky_relu_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z.dtype.type(1), z.dtype.type(LEAKY_SLOPE))  # (n, h)


# ----------------------------------------------------------------------------------------------
# elu (alpha = 1): z for z > 0, exp(z) - 1 otherwise; derivative 1, or exp(z) = a + 1.
# expm1 of min(z, 0) never overflows.

def elu_value(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))  # (n, h)


def elu_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z.dtype.type(1), a + 1)  # (n, h)


# ----------------------------------------------------------------------------------------------
# gelu, the tanh form (Hendrycks & Gimpel 2016; PyTorch's approximate="tanh"):
#   gelu(z) = z/2 (1 + tanh(u)),  u = c (z + 0.044715 z^3),  c = sqrt(2/pi)
#   gelu'(z) = (1 + tanh(u))/2 + z/2 (1 - tanh(u)^2) c (1 + 3 * 0.044715 z^2)

_GELU_C = float(np.sqrt(2.0 / np.pi))
_GELU_K = 0.044715


def _gelu_tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z.dtype.type(_GELU_C) * (z + z.dtype.type(_GELU_K) * z * z * z))  # (n, h)


def gelu_value(z: np.ndarray) -> np.ndarray:
    t = _gelu_tanh(z)  # (n, h)
    t += 1
    t *= z
    t *= 0.5
    return t


def gelu_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    t = _gelu_tanh(z)  # (n, h)
    du = z.dtype.type(_GELU_C) * (1 + z.dtype.type(3 * _GELU_K) * z * z)  # (n, h) = du/dz
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * du  # (n, h)


# ----------------------------------------------------------------------------------------------
# softplus: log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), which never overflows;
# its derivative is sigmoid(z).

def softplus_value(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))  # (n, h)


def softplus_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return sigmoid_value(z)  # (n, h)


# ----------------------------------------------------------------------------------------------
# identity: a linear network (useful as a baseline and in tests).

def identity_value(z: np.ndarray) -> np.ndarray:
    return z.copy()  # (n, h)


def identity_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.ones_like(z)  # (n, h)


sigmoid = Activation("sigmoid", sigmoid_value, sigmoid_derivative, saturates=True)
relu = Activation("relu", relu_value, relu_derivative, relu_into, relu_backprop)
tanh = Activation("tanh", tanh_value, tanh_derivative, saturates=True)
leaky_relu = Activation("leaky_relu", leaky_relu_value, leaky_relu_derivative)
elu = Activation("elu", elu_value, elu_derivative)
gelu = Activation("gelu", gelu_value, gelu_derivative)
softplus = Activation("softplus", softplus_value, softplus_derivative)
identity = Activation("identity", identity_value, identity_derivative)


def check(obj: Any) -> str | None:
    """None when ``obj`` can serve as an activation, else what is wrong (for the registry)."""
    missing = [attr for attr in ("value", "derivative") if not callable(getattr(obj, attr, None))]
    if missing:
        return (f"expected an Activation with callable value(z) and derivative(z, a); "
                f"{type(obj).__name__} has no callable {' or '.join(missing)}")
    return None
