"""gaussian_noise: a layer that adds N(0, std^2) noise while training, and nothing in
evaluation mode (a regulariser, like dropout; Keras' GaussianNoise).

    forward   y = x + std * e,  e ~ N(0, 1) from ctx.rng      (n, h)   training
              y = x                                           (n, h)   evaluation
    backward  dx = dy                                         (n, h)   the noise does not depend on x
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from plugins.mlp.layers import Layer


class GaussianNoise(Layer):
    """``{kind: gaussian_noise, std: 0.1}``: no parameters, the input's width."""

    kind: Literal["gaussian_noise"] = "gaussian_noise"
    std: float = Field(default=0.1, ge=0, description="Standard deviation of the noise.")

    def forward(self, x, params, state, ctx):           # x (n, h) -> y (n, h), cache
        if not ctx.training or self.std == 0:
            return x, None
        noise = ctx.rng.standard_normal(x.shape, dtype=x.dtype)  # (n, h) in x's dtype
        noise *= x.dtype.type(self.std)
        noise += x
        return noise, None

    def backward(self, dy, cache, params, grads, ctx):  # dy (n, h) -> dx (n, h)
        return dy
