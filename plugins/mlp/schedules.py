"""Learning-rate schedules: pydantic models, because a pipeline file configures them
(``schedule: {kind: cosine, min_lr: 1e-5}``), registered under ``nnpipe.schedules``.

A schedule is a pure function of the epoch and the history so far::

    lr = schedule.lr(epoch, base_lr, epochs, history)   # epoch counts from 1; history: past epochs

so it keeps no state of its own: a run resumed from a checkpoint gets the same learning rates as
an uninterrupted one because it has the same history. (``plateau`` replays the history to find
where it reduced the rate.) The trainer holds the rate fixed within an epoch and records it in the
history.

    constant      base_lr
    step          base_lr * gamma ** ((epoch - 1) // step_size)
    exponential   base_lr * gamma ** (epoch - 1)
    cosine        min_lr + (base_lr - min_lr) * (1 + cos(pi * (epoch - 1) / epochs)) / 2
    plateau       base_lr, multiplied by ``factor`` whenever the monitored value (val_loss, else
                  train_loss) has not improved by ``min_delta`` for ``patience`` epochs
"""

from __future__ import annotations

import math
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field


class Schedule(BaseModel):
    """Base of every schedule: its configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str

    def lr(self, epoch: int, base_lr: float, epochs: int, history: Sequence[Any]) -> float:
        """The learning rate of ``epoch`` (1-based) of ``epochs``, given the earlier epochs'
        records (objects with ``train_loss`` and ``val_loss``)."""
        raise NotImplementedError(f"schedule {self.kind!r} does not implement lr()")


class Constant(Schedule):
    """The optimiser's own ``lr`` throughout."""

    kind: Literal["constant"] = "constant"

    def lr(self, epoch, base_lr, epochs, history):
        return base_lr


class Step(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs."""

    kind: Literal["step"] = "step"
    step_size: int = Field(default=10, gt=0, description="Epochs between reductions.")
    gamma: float = Field(default=0.1, gt=0, le=1)

    def lr(self, epoch, base_lr, epochs, history):
        return base_lr * self.gamma ** ((epoch - 1) // self.step_size)


class Exponential(Schedule):
    """Multiply the rate by ``gamma`` every epoch."""

    kind: Literal["exponential"] = "exponential"
    gamma: float = Field(default=0.95, gt=0, le=1)

    def lr(self, epoch, base_lr, epochs, history):
        return base_lr * self.gamma ** (epoch - 1)


class Cosine(Schedule):
    """Cosine annealing (Loshchilov & Hutter 2017, no restarts) from ``base_lr`` in the first
    epoch towards ``min_lr`` after the last, with an optional linear warm-up."""

    kind: Literal["cosine"] = "cosine"
    min_lr: float = Field(default=0.0, ge=0)
    warmup_epochs: int = Field(default=0, ge=0, description="Linear ramp from base_lr / (w + 1).")

    def lr(self, epoch, base_lr, epochs, history):
        if epoch <= self.warmup_epochs:
            return base_lr * epoch / (self.warmup_epochs + 1)
        span = max(epochs - self.warmup_epochs, 1)
        progress = (epoch - 1 - self.warmup_epochs) / span  # 0 in the first epoch, < 1 in the last
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


class Plateau(Schedule):
    """Reduce on plateau: multiply the rate by ``factor`` after ``patience`` epochs without an
    improvement of at least ``min_delta`` in ``val_loss`` (``train_loss`` without validation)."""

    kind: Literal["plateau"] = "plateau"
    factor: float = Field(default=0.1, gt=0, lt=1)
    patience: int = Field(default=2, ge=0)
    min_delta: float = Field(default=0.0, ge=0)
    min_lr: float = Field(default=0.0, ge=0)

    def lr(self, epoch, base_lr, epochs, history):
        lr, best, bad = base_lr, math.inf, 0
        for record in history:  # replay: the rate each earlier epoch ended with
            value = record.val_loss if record.val_loss is not None else record.train_loss
            if value < best - self.min_delta:
                best, bad = value, 0
            else:
                bad += 1
                if bad > self.patience:
                    lr, bad = max(lr * self.factor, self.min_lr), 0
        return lr


def check(obj: Any) -> str | None:
    """None when ``obj`` is a ``Schedule`` subclass, else what is wrong (for the registry)."""
    if not (isinstance(obj, type) and issubclass(obj, Schedule)):
        return f"expected a subclass of plugins.mlp.schedules.Schedule; got {obj!r}"
    return None
