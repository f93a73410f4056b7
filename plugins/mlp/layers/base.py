"""The layer contract: what every entry of ``mlp_train``'s ``layers:`` list is.

A layer is a pydantic model (the pipeline file configures it: ``{kind: dropout, p: 0.2}``) with
three methods, read like the course assignments' ``layers.py`` (forward and backward side by side,
a cache of what backward needs):

    shapes(fan_in) -> Shapes(width, params, state, weights)
        the output width for an input of ``fan_in`` features, the trainable arrays it needs
        (name -> shape, in the order they lie in the flat parameter vector), its
        non-trainable state (name -> shape; running statistics, saved in model.npz) and which
        params are weights (L1 and weight decay without ``decay_biases`` act on those only)
    init(params, state, rng, initializer)
        fill its parameter and state views (default: leave them at zero)
    forward(x, params, state, ctx) -> (y, cache)
        x (n, fan_in) -> y (n, width); ``ctx.training`` says training or evaluation mode,
        ``ctx.rng`` is the only randomness allowed (dropout's masks), ``ctx.buffer(...)`` gives
        preallocated work arrays; ``cache`` is whatever backward needs
    backward(dy, cache, params, grads, ctx) -> dx
        dy = dL/dy (n, width) -> dx = dL/dx (n, fan_in); writes dL/dparams into the views in
        ``grads`` (same names and shapes as ``params``). ``dy`` is the model's buffer: it may be
        overwritten and returned. When ``ctx.need_input_grad`` is False (nothing below needs
        it) the layer may return None.

``params``, ``grads`` and ``state`` are dicts of views into the model's flat vectors: write into
them (``grads["W"][...] = ...`` or ``out=``), never rebind them. ``check_layer`` in
``plugins.mlp.checks`` (the layers group's full check) checks a layer against float64 central
differences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

Arrays = dict[str, np.ndarray]
#: ``(fan_in, fan_out, rng) -> (W (fan_in, fan_out), b (fan_out,))``, as in ``plugins.mlp.init``.
#: The generator is named by a string: ``np.random`` is imported on first use (5 ms), and a
#: command that only validates a spec never draws a number.
Initializer = Callable[[int, int, "np.random.Generator"], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Shapes:
    """What a layer needs for a given input width."""

    width: int  # output features
    params: dict[str, tuple[int, ...]] = field(default_factory=dict)  # trainable, in order
    state: dict[str, tuple[int, ...]] = field(default_factory=dict)  # saved, not trained
    #: the params that are weights (a dense layer's W): L1, and weight decay with
    #: ``decay_biases: false``, act on these only, not on biases, scales and shifts
    weights: tuple[str, ...] = ()


@dataclass
class Pass:
    """One layer's view of a forward/backward pass.

    Attributes:
        training: training mode (batch statistics, dropout masks) or evaluation mode.
        rng: the run's generator in training mode (None in evaluation mode).
        work: this layer's work arrays for this batch size, kept between steps (None: allocate).
        need_input_grad: whether backward must return dL/dx.
    """

    training: bool = True
    rng: np.random.Generator | None = None
    work: dict[str, np.ndarray] | None = None
    need_input_grad: bool = True

    def buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialised (shape) array, the same one at every step of a training run."""
        work = self.work
        if work is None:
            return np.empty(shape, dtype)
        array = work.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = work[name] = np.empty(shape, dtype)
        return array

    def ones(self, n: int, dtype: np.dtype) -> np.ndarray:
        """(n,) ones: a sum over the batch as ``ones @ x``, one BLAS call (3-5x faster than
        ``np.sum(x, axis=0)`` for a batch of 128, a row-by-row reduction)."""
        work = self.work
        array = None if work is None else work.get("ones")
        if array is None or array.shape != (n,) or array.dtype != dtype:
            array = np.ones(n, dtype)
            if work is not None:
                work["ones"] = array
        return array


class Layer(BaseModel):
    """Base of every layer: its configuration. Parameters and state live in the model."""

    # defer_build: each layer class builds its validator when first used, not at import (a
    # pipeline uses one or two of the installed ones; see benchmarks/cli_latency.py)
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True, allow_inf_nan=False)

    kind: str
    #: Training batches need at least this many rows (batch norm's unbiased variance needs 2).
    min_rows: ClassVar[int] = 1

    @classmethod
    def example(cls) -> "Layer":
        """An instance to check the class with (``nnpipe plugins --check``)."""
        return cls()

    def shapes(self, fan_in: int) -> Shapes:
        """The output width and the arrays needed for ``fan_in`` input features."""
        return Shapes(fan_in)

    def init(self, params: Arrays, state: Arrays, rng: np.random.Generator,
             initializer: Initializer) -> None:
        """Fill ``params`` and ``state`` (views, zero on entry); nothing by default."""

    def forward(self, x: np.ndarray, params: Arrays, state: Arrays, ctx: Pass) -> tuple[np.ndarray, Any]:
        raise NotImplementedError(f"layer {self.kind!r} does not implement forward()")

    def backward(self, dy: np.ndarray, cache: Any, params: Arrays, grads: Arrays,
                 ctx: Pass) -> np.ndarray | None:
        raise NotImplementedError(f"layer {self.kind!r} does not implement backward()")

    def label(self) -> str:
        """A short name for plots and messages, e.g. ``dense 256``."""
        return self.kind
