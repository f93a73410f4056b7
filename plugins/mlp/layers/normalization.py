"""batch_norm and layer_norm: normalise, then a learned scale (gamma) and shift (beta).

batch_norm, as PyTorch's BatchNorm1d (momentum 0.1, eps 1e-5), each feature over the batch:

    training    mu = mean(x, rows), var = mean((x - mu)^2, rows)        (h,)   biased
                xhat = (x - mu) / sqrt(var + eps)                        (n, h)
                y = gamma * xhat + beta                                  (n, h)
                running_mean = (1 - m) running_mean + m mu
                running_var  = (1 - m) running_var  + m var n / (n - 1)  unbiased
    evaluation  y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
    backward    dbeta = sum(dy, rows), dgamma = sum(dy * xhat, rows)     (h,)
                dx = gamma / (n sqrt(var + eps)) * (n dy - dbeta - xhat * dgamma)    (n, h)

layer_norm (eps 1e-5), each row over its features, the same in training and evaluation:

    mu, var = mean and biased variance of x over the features             (n, 1)
    xhat = (x - mu) / sqrt(var + eps),  y = gamma * xhat + beta           (n, h)
    backward    g = dy * gamma                                            (n, h)
                dx = (g - mean(g, features) - xhat * mean(g * xhat, features)) / sqrt(var + eps)

Sums over the batch are ``ones @ x`` (one BLAS call), as the dense layer's bias gradient.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from plugins.mlp.layers.base import Arrays, Initializer, Layer, Pass, Shapes


class _Normalization(Layer):
    """What both share: gamma (ones) and beta (zeros) of the input's width."""

    eps: float = Field(default=1e-5, gt=0, description="Added to the variance.")

    def shapes(self, fan_in: int) -> Shapes:
        return Shapes(fan_in, {"gamma": (fan_in,), "beta": (fan_in,)}, self._state(fan_in))

    def _state(self, fan_in: int) -> dict[str, tuple[int, ...]]:
        return {}

    def init(self, params: Arrays, state: Arrays, rng: np.random.Generator,
             initializer: Initializer) -> None:
        params["gamma"][...] = 1

    def _scale_shift(self, xhat: np.ndarray, params: Arrays, ctx: Pass) -> np.ndarray:
        y = np.multiply(xhat, params["gamma"], out=ctx.buffer("y", xhat.shape, xhat.dtype))
        y += params["beta"]  # (n, h)
        return y

    def _scale_shift_grads(self, dy: np.ndarray, xhat: np.ndarray, grads: Arrays,
                           ctx: Pass) -> None:
        ones = ctx.ones(dy.shape[0], dy.dtype)  # (n,)
        np.matmul(ones, dy, out=grads["beta"])  # (h,)
        product = np.multiply(dy, xhat, out=ctx.buffer("dy_xhat", dy.shape, dy.dtype))
        np.matmul(ones, product, out=grads["gamma"])  # (h,)


class BatchNorm(_Normalization):
    """Normalise each feature over the batch (running statistics in evaluation mode)."""

    kind: Literal["batch_norm"] = "batch_norm"
    momentum: float = Field(default=0.1, gt=0, le=1, description="Running-statistics update rate.")
    min_rows: ClassVar[int] = 2

    def _state(self, fan_in: int) -> dict[str, tuple[int, ...]]:
        return {"running_mean": (fan_in,), "running_var": (fan_in,)}

    def init(self, params: Arrays, state: Arrays, rng: np.random.Generator,
             initializer: Initializer) -> None:
        super().init(params, state, rng, initializer)
        state["running_var"][...] = 1

    def forward(self, x: np.ndarray, params: Arrays, state: Arrays, ctx: Pass) -> tuple[np.ndarray, Any]:
        if not ctx.training:
            inv_std = 1 / np.sqrt(state["running_var"] + x.dtype.type(self.eps))  # (h,)
            return self._scale_shift((x - state["running_mean"]) * inv_std, params, ctx), None
        n = x.shape[0]
        if n < 2:
            raise ValueError("batch_norm needs at least 2 rows per training batch")
        ones = ctx.ones(n, x.dtype)  # (n,)
        mean = (ones @ x) / x.dtype.type(n)  # (h,)
        xhat = np.subtract(x, mean, out=ctx.buffer("xhat", x.shape, x.dtype))  # (n, h) centred
        square = np.multiply(xhat, xhat, out=ctx.buffer("square", x.shape, x.dtype))
        var = (ones @ square) / x.dtype.type(n)  # (h,) biased, for normalising
        inv_std = 1 / np.sqrt(var + x.dtype.type(self.eps))  # (h,)
        xhat *= inv_std  # (n, h)
        m = x.dtype.type(self.momentum)
        state["running_mean"] *= 1 - m
        state["running_mean"] += m * mean
        state["running_var"] *= 1 - m
        state["running_var"] += (m * n / (n - 1)) * var  # unbiased, as PyTorch
        return self._scale_shift(xhat, params, ctx), (xhat, inv_std)

    def backward(self, dy: np.ndarray, cache: Any, params: Arrays, grads: Arrays,
                 ctx: Pass) -> np.ndarray | None:
        xhat, inv_std = cache  # (n, h), (h,)
        self._scale_shift_grads(dy, xhat, grads, ctx)
        if not ctx.need_input_grad:
            return None
        n = dy.dtype.type(dy.shape[0])
        dx = np.multiply(dy, n, out=ctx.buffer("dx", dy.shape, dy.dtype))  # (n, h)
        dx -= grads["beta"]
        dx -= np.multiply(xhat, grads["gamma"], out=ctx.buffer("dy_xhat", dy.shape, dy.dtype))
        dx *= params["gamma"] * inv_std / n  # (h,)
        return dx


class LayerNorm(_Normalization):
    """Normalise each sample over its features."""

    kind: Literal["layer_norm"] = "layer_norm"

    def forward(self, x: np.ndarray, params: Arrays, state: Arrays, ctx: Pass) -> tuple[np.ndarray, Any]:
        h = x.dtype.type(x.shape[1])
        mean = x.sum(axis=1, keepdims=True) / h  # (n, 1)
        xhat = np.subtract(x, mean, out=ctx.buffer("xhat", x.shape, x.dtype))  # (n, h) centred
        var = np.einsum("ij,ij->i", xhat, xhat)[:, None] / h  # (n, 1) biased
        inv_std = 1 / np.sqrt(var + x.dtype.type(self.eps))  # (n, 1)
        xhat *= inv_std
        return self._scale_shift(xhat, params, ctx), (xhat, inv_std)

    def backward(self, dy: np.ndarray, cache: Any, params: Arrays, grads: Arrays,
                 ctx: Pass) -> np.ndarray | None:
        xhat, inv_std = cache  # (n, h), (n, 1)
        self._scale_shift_grads(dy, xhat, grads, ctx)
        if not ctx.need_input_grad:
            return None
        h = dy.dtype.type(dy.shape[1])
        g = np.multiply(dy, params["gamma"], out=ctx.buffer("dx", dy.shape, dy.dtype))  # (n, h)
        g_mean = g.sum(axis=1, keepdims=True) / h  # (n, 1)
        gx_mean = np.einsum("ij,ij->i", g, xhat)[:, None] / h  # (n, 1)
        g -= g_mean
        g -= xhat * gx_mean
        g *= inv_std
        return g
