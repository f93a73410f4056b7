"""``mlp_train``'s ``ema``: an exponential moving average of the weights (Polyak averaging).

After every optimiser step the average moves towards the live weights:

    average <- decay * average + (1 - decay) * live            (P,) weights, (S,) statistics

It starts as a copy of the weights after the first step, as PyTorch's
``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn(decay)`` does, and like its
``use_buffers=True`` it averages batch norm's running statistics the same way. The training
itself always steps the live weights; validation, early stopping and the saved model see the
averaged ones (``swapped_in``). A checkpoint carries the average and its step count, so a resumed
run ends bit-identical.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

from plugins.mlp.model import MLP


class WeightAverage:
    """The running average of ``model``'s flat weights (P,) and running statistics (S,)."""

    def __init__(self, decay: float, model: MLP):
        self.decay = decay
        self.params = np.zeros_like(model.params)  # (P,) averaged weights
        self.stats = np.zeros_like(model.stats)  # (S,) averaged running statistics
        self.steps = 0  # optimiser steps averaged so far
        self._work = np.empty_like(model.params)  # (P,) buffers: no allocation per step
        self._work_stats = np.empty_like(model.stats)  # (S,)

    def update(self, model: MLP) -> None:
        """Fold the live weights in after an optimiser step: a copy on the first step, then
        ``average += (1 - decay) * (live - average)`` (the same formula, rearranged in place)."""
        if self.steps == 0:
            self.params[...] = model.params
            self.stats[...] = model.stats
        else:
            self._move(self.params, model.params, self._work)
            self._move(self.stats, model.stats, self._work_stats)
        self.steps += 1

    def _move(self, average: np.ndarray, live: np.ndarray, work: np.ndarray) -> None:
        np.subtract(live, average, out=work)
        work *= average.dtype.type(1.0 - self.decay)
        average += work

    @contextmanager
    def swapped_in(self, model: MLP) -> Iterator[None]:
        """Within the block ``model`` holds the averaged weights; the live ones come back
        after it (training goes on from them)."""
        live_params, live_stats = model.params.copy(), model.stats.copy()
        model.params[...], model.stats[...] = self.params, self.stats
        try:
            yield
        finally:
            model.params[...], model.stats[...] = live_params, live_stats

    def install(self, model: MLP) -> None:
        """Leave the averaged weights in ``model`` for good (the end of training)."""
        model.params[...], model.stats[...] = self.params, self.stats
