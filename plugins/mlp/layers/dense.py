"""dense: an affine layer, y = x @ W + b.

    forward   y = x @ W + b                    x (n, fan_in), W (fan_in, units), y (n, units)
    backward  dW = x.T @ dy                    (fan_in, units)
              db = ones @ dy                   (units,)   the sum over the batch, one BLAS call
              dx = dy @ W.T                    (n, fan_in)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, PositiveInt, field_validator

from pipeline.registry import default_registry, unknown_name_message

from plugins.mlp.layers.base import Arrays, Initializer, Layer, Pass, Shapes


class Dense(Layer):
    """A fully connected layer of ``units`` outputs; its weights are drawn by the stage's
    ``init`` (or this layer's own ``initializer``, a registered initializer's name)."""

    kind: Literal["dense"] = "dense"
    units: PositiveInt = Field(description="Output features.")
    initializer: str | None = Field(default=None, description="This layer's initializer (a "
                                    "registered name; default: the stage's init).")

    @field_validator("initializer")
    @classmethod
    def _registered(cls, name: str | None) -> str | None:
        names = default_registry().names("initializers")
        if name is not None and name not in names:
            raise ValueError(unknown_name_message("initializer", name, names))
        return name

    @classmethod
    def example(cls) -> "Dense":
        return cls(units=3)

    def shapes(self, fan_in: int) -> Shapes:
        return Shapes(self.units, {"W": (fan_in, self.units), "b": (self.units,)}, weights=("W",))

    def init(self, params: Arrays, state: Arrays, rng: np.random.Generator,
             initializer: Initializer) -> None:
        W, b = params["W"], params["b"]
        W_init, b_init = initializer(W.shape[0], W.shape[1], rng)
        if np.shape(W_init) != W.shape or np.shape(b_init) != b.shape:
            raise ValueError(f"the initializer returned shapes {np.shape(W_init)}, "
                             f"{np.shape(b_init)}; expected {W.shape}, {b.shape}")
        W[...] = W_init  # cast to the model's dtype
        b[...] = b_init

    def forward(self, x: np.ndarray, params: Arrays, state: Arrays, ctx: Pass) -> tuple[np.ndarray, Any]:
        W = params["W"]  # (fan_in, units)
        y = np.matmul(x, W, out=ctx.buffer("y", (x.shape[0], W.shape[1]), x.dtype))  # (n, units)
        y += params["b"]
        return y, x  # backward needs the input

    def backward(self, dy: np.ndarray, x: Any, params: Arrays, grads: Arrays,
                 ctx: Pass) -> np.ndarray | None:
        np.matmul(x.T, dy, out=grads["W"])  # (fan_in, units)
        np.matmul(ctx.ones(dy.shape[0], dy.dtype), dy, out=grads["b"])  # (units,)
        if not ctx.need_input_grad:
            return None
        W = params["W"]
        return np.matmul(dy, W.T, out=ctx.buffer("dx", (dy.shape[0], W.shape[0]), dy.dtype))

    def label(self) -> str:
        return f"dense {self.units}"
