"""What each layer does, per epoch: the ``layers`` list of every epoch in ``history.json``.

For every layer with parameters (its slice ``params[lo:hi]`` of the flat vector, a view):

    grad_norm      mean over the epoch's steps of |grads[lo:hi]|   (one dot product per step)
    weight_norm    |params[lo:hi]| at the end of the epoch
    update_ratio   mean of |params_after - params_before| / |params_before| over the steps
                   1, 1 + s, 1 + 2s, ... with s = max(MIN_STRIDE, steps // SAMPLED_STEPS) (a copy
                   of the vector costs as much as a small matmul, so not every step)

For every activation layer, over the validation split in evaluation mode (no entry without one):

    dead           ReLU-like activations: the fraction of units whose input is <= 0 on every
                   validation sample (they never activate, so never learn)
    saturated      saturating activations (``saturates = True``: sigmoid, tanh): the fraction of
                   units whose derivative is below 1% of its value at 0 on every sample

All of this costs about 1% of a training step of the benchmark network (benchmarks/bench_layers.py
measures it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from plugins.mlp.layers import ActivationLayer, Layer
from plugins.mlp.model import MLP

SAMPLED_STEPS = 20
MIN_STRIDE = 32  # at most one step in 32 sampled: the copy costs about 5% of a step
SATURATION = 0.01  # a derivative below this fraction of f'(0) counts as saturated


class LayerDiagnostics:
    """Accumulates one epoch's measures; the trainer calls the hooks around each step."""

    def __init__(self, model: MLP, n_batches: int):
        self.model = model
        self.slices = model.param_slices()  # [(layer index, slice of params)]
        self.every = max(MIN_STRIDE, n_batches // SAMPLED_STEPS)
        self._before = np.empty_like(model.params)  # (P,) params before a sampled step
        # views made once (the flat vectors are never rebound): no slicing in the step loop
        self._grads = [model.grads[part] for _, part in self.slices]
        self._params = [(model.params[part], self._before[part]) for _, part in self.slices]
        self.begin_epoch()

    def begin_epoch(self) -> None:
        self._grad_norms = np.zeros(len(self.slices))  # sums over steps
        self._ratios = np.zeros(len(self.slices))
        self._steps = self._sampled = 0
        self._sampling = False
        self._units: dict[int, np.ndarray] = {}  # activation layer -> (h,) bool per unit

    def after_backward(self, step: int) -> None:
        """Add this step's gradient norms; remember the parameters when the step is sampled."""
        norms = self._grad_norms
        for j, g in enumerate(self._grads):  # one dot product per layer: |g|^2
            norms[j] += math.sqrt(np.dot(g, g))
        self._steps += 1
        self._sampling = step % self.every == 1 % self.every
        if self._sampling:
            np.copyto(self._before, self.model.params)

    def after_update(self) -> None:
        """On a sampled step, add |update| / |weights| per layer."""
        if not self._sampling:
            return
        for j, (after, before) in enumerate(self._params):  # views of params and the copy
            norm = math.sqrt(np.dot(before, before))
            delta = np.subtract(after, before, out=before)  # (size,)
            self._ratios[j] += math.sqrt(np.dot(delta, delta)) / norm if norm > 0 else 0.0
        self._sampled += 1

    def watch(self, i: int, layer: Layer, z: np.ndarray, a: np.ndarray) -> None:
        """``MLP.output``'s hook on the validation split: per-unit activity of activations."""
        if not isinstance(layer, ActivationLayer):
            return
        activation = layer.activation
        if getattr(activation, "saturates", False):
            zero = np.zeros((1, 1), z.dtype)
            peak = float(activation.derivative(zero, activation.value(zero))[0, 0])
            off = np.all(activation.derivative(z, a) < SATURATION * peak, axis=0)  # (h,)
        else:
            off = np.all(z <= 0, axis=0)  # (h,) never activated in this chunk
        self._units[i] = off & self._units[i] if i in self._units else off

    def record(self) -> list[dict[str, Any]]:
        """The epoch's entries, one per layer with parameters or activation, in stack order."""
        params, layers, entries = self.model.params, self.model.layers, []
        for j, (i, part) in enumerate(self.slices):
            entries.append({
                "layer": i, "kind": layers[i].kind,
                "grad_norm": float(self._grad_norms[j] / max(self._steps, 1)),
                "weight_norm": float(np.sqrt(np.dot(params[part], params[part]))),
                "update_ratio": float(self._ratios[j] / max(self._sampled, 1))})
        for i, off in self._units.items():
            what = "saturated" if getattr(layers[i].activation, "saturates", False) else "dead"
            entries.append({"layer": i, "kind": layers[i].kind, what: float(np.mean(off))})
        return sorted(entries, key=lambda e: e["layer"])


class NoDiagnostics:
    """``diagnostics: false``: the same hooks, doing nothing."""

    watch = None  # MLP.output watches nothing

    def begin_epoch(self) -> None:
        pass

    def after_backward(self, step: int) -> None:
        pass

    def after_update(self) -> None:
        pass

    def record(self) -> None:
        return None
