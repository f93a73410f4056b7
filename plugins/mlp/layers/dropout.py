"""dropout (inverted): in training, each unit is zeroed with probability p and the kept ones are
scaled by 1 / (1 - p), so evaluation mode is the identity.

    forward   mask = (u >= p) / (1 - p),  u ~ U[0, 1) from ctx.rng      (n, h)
              y = x * mask                                              (n, h)
    backward  dx = dy * mask                                            (n, h)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from plugins.mlp.layers.base import Arrays, Layer, Pass


class Dropout(Layer):
    """Drop each unit with probability ``p`` while training."""

    kind: Literal["dropout"] = "dropout"
    p: float = Field(default=0.5, ge=0, lt=1, description="Probability of dropping a unit.")

    def forward(self, x: np.ndarray, params: Arrays, state: Arrays, ctx: Pass) -> tuple[np.ndarray, Any]:
        if not ctx.training or self.p == 0:
            return x, None
        if ctx.rng is None:
            raise ValueError("dropout needs a random generator in training mode")
        # the draws in float32 into a work buffer, the mask in one pass from the comparison:
        # no float64 array and no temporary but the boolean one
        u = ctx.rng.random(x.shape, dtype=x.dtype, out=ctx.buffer("mask", x.shape, x.dtype))
        keep = u >= self.p  # (n, h)
        scale = x.dtype.type(1 / (1 - self.p))  # kept units scaled: the expectation is unchanged
        mask = np.multiply(keep, scale, out=u)  # (n, h) 0 or scale
        return np.multiply(x, mask, out=ctx.buffer("y", x.shape, x.dtype)), mask

    def backward(self, dy: np.ndarray, mask: Any, params: Arrays, grads: Arrays,
                 ctx: Pass) -> np.ndarray | None:
        if mask is not None:
            dy *= mask  # (n, h) through the mask, in place
        return dy

    def label(self) -> str:
        return f"dropout {self.p:g}"
