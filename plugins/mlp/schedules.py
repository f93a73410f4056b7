"""Learning-rate schedules: pydantic models, because a pipeline file configures them
(``schedule: {kind: cosine, min_lr: 1e-5}``), registered under ``nnpipe.schedules``.

A schedule is a pure function of where training is and the history so far, in one of two forms:

    per epoch   lr = schedule.lr(epoch, base_lr, epochs, history)
                epoch counts from 1; the rate is held for the whole epoch
    per step    lr = schedule.step_lr(step, total_steps, base_lr, history)
                step counts from 0 over the whole run (epochs x steps per epoch); a schedule
                whose ``per_step()`` is true gets this call before every batch

``history`` holds the completed epochs' records. Keeping no state of its own, a schedule gives a
run resumed from a checkpoint the same rates as an uninterrupted one (``plateau`` replays the
history to find where it reduced the rate). ``epoch_rates`` turns either form into the list of
one epoch's per-step rates, which is all the trainer asks; it records the first as the epoch's
``lr`` and the last as ``lr_end``.

    constant      base_lr
    step          base_lr * gamma ** ((epoch - 1) // step_size)
    exponential   base_lr * gamma ** (epoch - 1)
    cosine        min_lr + (base_lr - min_lr) * (1 + cos(pi * (epoch - 1) / epochs)) / 2;
                  with warmup_steps W, per step t of T: base_lr * t / W while t < W, then
                  min_lr + (base_lr - min_lr) * (1 + cos(pi * (t - W) / (T - W))) / 2
    plateau       base_lr, multiplied by ``factor`` whenever the monitored value (val_loss, else
                  train_loss) has not improved by ``min_delta`` for ``patience`` epochs
    one_cycle     per step, PyTorch's OneCycleLR (two phases, cosine annealing): from
                  max_lr / div_factor up to max_lr over the first pct_start of the steps, then
                  down to max_lr / (div_factor * final_div_factor)
"""

from __future__ import annotations

import math
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Schedule(BaseModel):
    """Base of every schedule: its configuration."""

    # defer_build: each schedule class builds its validator when first used, not at import (a
    # pipeline uses one or two of the installed ones; see benchmarks/cli_latency.py)
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True, allow_inf_nan=False)

    kind: str

    def lr(self, epoch: int, base_lr: float, epochs: int, history: Sequence[Any]) -> float:
        """The per-epoch form: the learning rate of ``epoch`` (1-based) of ``epochs``, given the
        earlier epochs' records (objects with ``train_loss`` and ``val_loss``)."""
        raise NotImplementedError(f"schedule {self.kind!r} does not implement lr()")

    def per_step(self) -> bool:
        """True when the trainer should call ``step_lr`` before every batch instead of ``lr``
        once per epoch. False by default, so every per-epoch schedule keeps working as is."""
        return False

    def step_lr(self, step: int, total_steps: int, base_lr: float, history: Sequence[Any]) -> float:
        """The per-step form: the learning rate of ``step`` (0-based over the whole run) of
        ``total_steps``, given the completed epochs' records."""
        raise NotImplementedError(f"schedule {self.kind!r} does not implement step_lr()")


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


def _cosine(start: float, end: float, progress: float) -> float:
    """Half a cosine from ``start`` (progress 0) to ``end`` (progress 1)."""
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * progress))


class Cosine(Schedule):
    """Cosine annealing (Loshchilov & Hutter 2017, no restarts) from ``base_lr`` in the first
    epoch towards ``min_lr`` after the last, with an optional linear warm-up: per epoch
    (``warmup_epochs``) or per step (``warmup_steps``, which makes the whole schedule per step,
    as Hugging Face's ``get_cosine_schedule_with_warmup``: the first step's rate is 0)."""

    kind: Literal["cosine"] = "cosine"
    min_lr: float = Field(default=0.0, ge=0)
    warmup_epochs: int = Field(default=0, ge=0, description="Linear ramp from base_lr / (w + 1).")
    warmup_steps: int = Field(default=0, ge=0,
                              description="Linear ramp from 0 over this many steps, then cosine "
                                          "annealing per step (instead of per epoch).")

    @model_validator(mode="after")
    def _one_warmup(self) -> "Cosine":
        if self.warmup_epochs and self.warmup_steps:
            raise ValueError("give warmup_epochs or warmup_steps, not both")
        return self

    def lr(self, epoch, base_lr, epochs, history):
        if epoch <= self.warmup_epochs:
            return base_lr * epoch / (self.warmup_epochs + 1)
        span = max(epochs - self.warmup_epochs, 1)
        progress = (epoch - 1 - self.warmup_epochs) / span  # 0 in the first epoch, < 1 in the last
        return _cosine(base_lr, self.min_lr, progress)

    def per_step(self) -> bool:
        return self.warmup_steps > 0

    def step_lr(self, step, total_steps, base_lr, history):
        if step < self.warmup_steps:
            return base_lr * step / self.warmup_steps
        progress = (step - self.warmup_steps) / max(total_steps - self.warmup_steps, 1)
        return _cosine(base_lr, self.min_lr, progress)


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


class OneCycle(Schedule):
    """The 1cycle policy (Smith & Topin 2018) exactly as PyTorch's ``OneCycleLR`` with
    ``anneal_strategy='cos'``, ``three_phase=False``: step t of T (0-based) is in the warm-up
    while t <= pct_start * T - 1, annealing max_lr / div_factor -> max_lr, then anneals max_lr
    -> max_lr / (div_factor * final_div_factor) until t = T - 1, each phase as half a cosine
    over (t - phase start) / (phase end - phase start). The learning rate only: PyTorch's
    default ``cycle_momentum`` is not reproduced (the optimiser's momentum stays as set)."""

    kind: Literal["one_cycle"] = "one_cycle"
    max_lr: float | None = Field(default=None, gt=0,
                                 description="The peak rate; the optimizer's lr when not given.")
    pct_start: float = Field(default=0.3, ge=0, le=1,
                             description="Fraction of the steps spent raising the rate.")
    div_factor: float = Field(default=25.0, gt=0, description="Starting rate: max_lr / this.")
    final_div_factor: float = Field(default=1e4, gt=0,
                                    description="Final rate: the starting rate / this.")

    def per_step(self) -> bool:
        return True

    def step_lr(self, step, total_steps, base_lr, history):
        peak = self.max_lr if self.max_lr is not None else base_lr
        initial = peak / self.div_factor
        warmup_end = float(self.pct_start * total_steps) - 1  # PyTorch's end_step of phase 1
        if step <= warmup_end:
            start, end, first, last = initial, peak, 0.0, warmup_end
        else:
            start, end, first, last = peak, initial / self.final_div_factor, warmup_end, total_steps - 1
        # a phase of no length (where PyTorch divides by zero) starts at its start rate
        progress = (step - first) / (last - first) if last != first else 0.0
        return _cosine(start, end, progress)


def epoch_rates(schedule: Schedule, epoch: int, base_lr: float, epochs: int,
                steps_per_epoch: int, history: Sequence[Any]) -> list[float]:
    """The learning rate of each of ``epoch``'s ``steps_per_epoch`` steps, as Python floats (a
    NumPy float64 would turn the float32 updates into float64 arithmetic, NEP 50): the per-step
    form for a schedule whose ``per_step()`` is true, else the epoch's rate repeated."""
    if not schedule.per_step():
        return [float(schedule.lr(epoch, base_lr, epochs, history))] * steps_per_epoch
    first, total = (epoch - 1) * steps_per_epoch, epochs * steps_per_epoch
    return [float(schedule.step_lr(first + i, total, base_lr, history))
            for i in range(steps_per_epoch)]


def check(obj: Any) -> str | None:
    """None when ``obj`` is a ``Schedule`` subclass, else what is wrong (for the registry)."""
    if not (isinstance(obj, type) and issubclass(obj, Schedule)):
        return f"expected a subclass of plugins.mlp.schedules.Schedule; got {obj!r}"
    return None
