"""An activation as a layer: every registered activation's name is a layer kind.

    forward   a = f(z)                   z (n, h) -> a (n, h)   (into a work buffer in training)
    backward  dz = da * f'(z)            (n, h), in place through the activation's fast path
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
from pydantic import PrivateAttr

from plugins.mlp import activations
from plugins.mlp.activations import Activation
from plugins.mlp.layers.base import Arrays, Layer, Pass


class ActivationLayer(Layer):
    """``f`` elementwise; ``kind`` is the activation's registered name."""

    _activation: Any = PrivateAttr(default=None)

    @classmethod
    def of(cls, activation: str | Activation, registry: Any = None) -> "ActivationLayer":
        """The layer for an activation object or registered name (looked up in ``registry``, by
        default the default one)."""
        if isinstance(activation, str):
            from plugins.mlp.model import lookup  # the registry lookup the model uses

            activation = lookup("activations", activation, activations.check, registry)
        layer = cls(kind=activation.name)
        layer._activation = activation
        return layer

    @cached_property
    def activation(self) -> Activation:
        # cached in the instance's __dict__: a pydantic private attribute costs a __getattr__
        # call (about 2 us) at every forward and backward
        return self._activation

    def forward(self, z: np.ndarray, params: Arrays, state: Arrays, ctx: Pass) -> tuple[np.ndarray, Any]:
        if ctx.work is None:  # evaluation: nothing kept
            a = self.activation.value(z)  # (n, h)
        else:
            a = activations.apply_into(self.activation, z, ctx.buffer("y", z.shape, z.dtype))
        return a, (z, a)

    def backward(self, da: np.ndarray, cache: Any, params: Arrays, grads: Arrays,
                 ctx: Pass) -> np.ndarray | None:
        z, a = cache
        activations.scale_by_derivative(self.activation, da, z, a)  # da (n, h) -> dL/dz
        return da
