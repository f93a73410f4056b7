"""The swish activation (Ramachandran et al. 2017), also called SiLU:

    a = swish(z) = z * s,   s = sigmoid(z)
    da/dz = s + z * s * (1 - s) = a + s * (1 - a)

Registered as ``swish`` in the ``nnpipe.activations`` entry-point group.
"""

from __future__ import annotations

import numpy as np

from plugins.mlp.activations import Activation


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))  # (n, h), never overflows; keeps z's dtype


def swish_value(z: np.ndarray) -> np.ndarray:
    return z * _sigmoid(z)  # (n, h)


def swish_derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    s = _sigmoid(z)  # (n, h)
    return a + s * (1 - a)  # (n, h)


swish = Activation("swish", swish_value, swish_derivative)
