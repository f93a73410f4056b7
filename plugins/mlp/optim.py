"""Optimisers: pydantic models, because a pipeline file configures them (``{kind: sgd, lr: 0.01}``).

An optimiser updates ONE flat parameter vector in place from ONE flat gradient vector of the same
layout (the model keeps every weight and bias as a view into them), so each step is a handful of
vectorised operations over all parameters at once, whatever the architecture.

The trainer only ever does::

    state = optimizer.start(model.params, decay_mask)      # init_state's buffers, once
    optimizer.step(model.params, model.grads, state, lr)   # every batch

``lr`` is passed at every step (the trainer passes ``optimizer.lr`` today; a learning-rate schedule
will pass its own value). Per-parameter memory (momentum's velocity, Adam's moments and step
count) lives in ``state``, arrays allocated once by ``init_state``; names starting with ``_`` are
work buffers, not state (a checkpoint skips them). ``step`` clips the gradient when
``clip_norm`` is set, then calls ``update``, which is what a new optimiser implements; one whose
state decays where the gradient is zero (a momentum, a moving average) names those arrays in
``decaying``, and the trainer's ``flush_tiny`` keeps them out of the subnormal range. A plugin
registers an ``Optimizer`` subclass under ``nnpipe.optimizers``, its ``kind`` a ``Literal`` of the
registered name.

Conventions follow PyTorch's ``torch.optim`` (parameter names, defaults and update rules), so
results compare: velocity v = momentum * v + g; Adam's bias correction; ``weight_decay`` adds
``weight_decay * params`` to the gradient (L2) for SGD, Adam, RMSprop, Adagrad and NAdam and
shrinks the parameters directly (decoupled) for AdamW. Decay applies to every parameter, biases
included (PyTorch's default without parameter groups), unless ``start`` is given a decay mask
(``mlp_train``'s ``decay_biases: false``): then only the entries where the mask is 1 decay, as
with a PyTorch parameter group of ``weight_decay=0`` for the others. An optimiser applies decay
through ``decayed(params, state)``, which honours the mask.

The hot paths are whole-vector passes written into preallocated buffers, with every scalar a
Python float: NumPy 2 computes ``float32_array * np.float64(c)`` in float64 and casts back, 6-7x
slower than the float32 loop (NEP 50).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from plugins.mlp import fused
from plugins.mlp.parallel import SERIAL, Lanes

State = dict[str, np.ndarray]

#: The trainer calls ``flush_tiny`` every this many steps (and at the end of each epoch).
FLUSH_EVERY = 64


class Optimizer(BaseModel):
    """Base of every optimiser: its configuration. Learned state lives in ``state``, not here."""

    # defer_build: each optimizer class builds its validator when first used, not at import (a
    # pipeline uses one or two of the installed ones; see benchmarks/cli_latency.py)
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True, allow_inf_nan=False)

    kind: str
    lr: float = Field(default=0.01, gt=0, description="Learning rate (step size).")
    clip_norm: float | None = Field(
        default=None, gt=0,
        description="Rescale the gradient to at most this Euclidean norm (over all parameters).")

    def init_state(self, params: np.ndarray) -> State:
        """The per-parameter buffers this optimiser needs for ``params`` (P,); none by default."""
        return {}

    def start(self, params: np.ndarray, decay_mask: np.ndarray | None = None) -> State:
        """``init_state(params)``, plus ``decay_mask`` (P,) (true where weight decay acts) kept
        as a work buffer ``_decay_mask`` of 1s and 0s in ``params``' dtype: derived from the
        model, so a checkpoint does not carry it (the trainer passes it again on resume)."""
        state = self.init_state(params)
        if decay_mask is not None and not np.all(decay_mask):
            state["_decay_mask"] = np.asarray(decay_mask).astype(params.dtype)  # (P,)
        state["_lanes"] = Lanes.for_size(params.size)  # threads for the elementwise passes
        return state

    @staticmethod
    def decayed(params: np.ndarray, state: State) -> np.ndarray:
        """What weight decay acts on: ``params`` (P,), with the entries outside the decay mask
        (biases, when ``decay_biases`` is false) zeroed in a copy."""
        mask = state.get("_decay_mask")
        return params if mask is None else params * mask  # (P,)

    def _with_l2(self, params: np.ndarray, grads: np.ndarray, state: State) -> np.ndarray:
        """``grads + weight_decay * params`` (the L2 term PyTorch adds), honouring the mask."""
        weight_decay = getattr(self, "weight_decay", 0.0)
        if not weight_decay:
            return grads
        return grads + weight_decay * self.decayed(params, state)  # (P,)

    def step(self, params: np.ndarray, grads: np.ndarray, state: State, lr: float) -> None:
        """Update ``params`` (P,) in place from ``grads`` (P,) with learning rate ``lr``.

        ``grads`` itself is never modified (clipping works on a copy)."""
        if self.clip_norm is not None:
            norm = float(np.sqrt(np.dot(grads, grads)))
            if norm > self.clip_norm:
                grads = grads * (self.clip_norm / norm)  # (P,)
        self.update(params, grads, state, lr)

    def update(self, params: np.ndarray, grads: np.ndarray, state: State, lr: float) -> None:
        """The optimiser's own rule, on the (clipped) gradient; what a subclass implements."""
        raise NotImplementedError(f"optimizer {self.kind!r} does not implement update()")

    def decaying(self) -> dict[str, float]:
        """The state arrays multiplied by a factor below 1 at every step (where the gradient is
        0 they decay geometrically), each with its factor; none by default."""
        return {}

    def flush_tiny(self, state: State) -> None:
        """Set to 0 the entries of the ``decaying`` arrays that could become subnormal before
        the next call (``FLUSH_EVERY`` steps on): below ``tiny / factor ** FLUSH_EVERY``, at
        most ``2**24 tiny`` (about 2e-31 in float32).

        Why: a weight whose gradient is 0 for many steps (a border pixel, a dead unit) has its
        momentum decay by ``factor`` each step, into the subnormal range (below 1.2e-38 in
        float32), where every multiply costs the CPU a microcode assist of about a hundred
        cycles: tune_vs_grid.py's 784-256-10 network at learning rate 0.01 went from 0.5 to
        1.4 s an epoch after epoch 4, with 50K of its 203K momentum entries subnormal, and
        back to 0.5 s with the CPU's flush-to-zero mode set. Entries this small move a weight
        by nothing float32 can show."""
        for name, factor in self.decaying().items():
            array = state.get(name)
            if array is None or not 0 < factor < 1:  # 0: replaced at every step, never decays
                continue
            tiny = float(np.finfo(array.dtype).tiny)
            below = tiny * min(2.0 ** 24, 2.0 / factor ** FLUSH_EVERY)
            np.putmask(array, np.abs(array) < below, 0)  # (P,) in place


class SGD(Optimizer):
    """Mini-batch stochastic gradient descent, with optional (Nesterov) momentum:
    ``v = momentum * v + g;  params -= lr * (g + momentum * v if nesterov else v)``."""

    kind: Literal["sgd"] = "sgd"
    momentum: float = Field(default=0.0, ge=0, lt=1, description="0 is plain SGD.")
    nesterov: bool = Field(default=False, description="Nesterov momentum (needs momentum > 0).")
    weight_decay: float = Field(default=0.0, ge=0, description="L2 penalty added to the gradient.")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> "SGD":
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0")
        return self

    def init_state(self, params: np.ndarray) -> State:
        return {"velocity": np.zeros_like(params)} if self.momentum else {}  # (P,)

    def decaying(self) -> dict[str, float]:
        return {"velocity": self.momentum}

    def update(self, params: np.ndarray, grads: np.ndarray, state: State, lr: float) -> None:
        grads = self._with_l2(params, grads, state)  # (P,)
        if not self.momentum:
            params -= float(lr) * grads  # (P,)
            return
        update = fused.chain("momentum", _momentum_chain)  # one compiled pass with numba
        state.get("_lanes", SERIAL).run(update, (params, grads, state["velocity"]),
                                        self.momentum, self.nesterov, float(lr))


def _momentum_chain(params: np.ndarray, grads: np.ndarray, velocity: np.ndarray, momentum: float,
                    nesterov: bool, lr: float) -> None:
    """SGD with momentum over one block (p,): ``v = momentum v + g``, then ``params -= lr v``
    (Nesterov: ``params -= lr (g + momentum v)``)."""
    velocity *= momentum
    velocity += grads
    step = grads + momentum * velocity if nesterov else velocity  # (p,)
    params -= lr * step


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): moving averages of the gradient and its square, bias-corrected.

    ``m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    params -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``

    (``state`` keeps m / (1 - b1) and v / (1 - b2): see ``_adam_step``.)"""

    kind: Literal["adam"] = "adam"
    lr: float = Field(default=0.001, gt=0, description="Learning rate (step size).")
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.999, ge=0, lt=1)
    eps: float = Field(default=1e-8, gt=0)
    weight_decay: float = Field(default=0.0, ge=0, description="L2 penalty added to the gradient.")

    def init_state(self, params: np.ndarray) -> State:
        return {"m": np.zeros_like(params), "v": np.zeros_like(params),  # (P,) each
                "t": np.zeros((), dtype=np.int64),  # steps taken
                "_scratch": np.empty_like(params)}  # (P,) work buffer, not state to save

    def decaying(self) -> dict[str, float]:
        return {"m": self.beta1, "v": self.beta2}

    def update(self, params: np.ndarray, grads: np.ndarray, state: State, lr: float) -> None:
        self._adam_step(params, self._with_l2(params, grads, state), state, lr)

    def _adam_step(self, params: np.ndarray, grads: np.ndarray, state: State, lr: float) -> None:
        # The hot path. Every line writes into an existing buffer (no temporaries per step), and
        # the moments are kept unscaled, M = m / (1 - b1) and V = v / (1 - b2):
        #     M = b1 M + g                V = b2 V + g^2
        #     m_hat = c1 M,  c1 = (1 - b1) / (1 - b1^t)     v_hat = c2^2 V,  c2^2 = (1 - b2) / (1 - b2^t)
        #     params -= lr m_hat / (sqrt(v_hat) + eps) = (lr c1 / c2) M / (sqrt(V) + eps / c2)
        # which is the textbook update in 10 elementwise passes instead of 13. The passes run on
        # one contiguous block per thread (``state["_lanes"]``, set by ``start``: the threads the
        # user allows), each block whole: walking it in cache-sized blocks measured slower
        # (2-core AMD EPYC: 0.50-0.77 ms per step of 235K parameters whole, 0.55-0.84 ms in 64K
        # blocks); what the blocks save in cache misses, ten ufunc calls per block cost back.
        M, V, t, work = state["m"], state["v"], state["t"], state["_scratch"]  # (P,) each
        t += 1
        c1 = (1 - self.beta1) / (1 - self.beta1 ** int(t))
        c2 = math.sqrt((1 - self.beta2) / (1 - self.beta2 ** int(t)))
        # Python floats, not NumPy float64 scalars: NumPy 2 computes ``work += eps`` with a
        # float64 scalar in float64 and casts back, 6-7x slower than the float32 loop (NEP 50).
        step, eps = float(lr) * c1 / c2, self.eps / c2
        # one compiled pass when numba is installed, bit for bit ``_adam_chain`` (fused.py)
        update = fused.chain("adam", _adam_chain)
        state.get("_lanes", SERIAL).run(update, (params, grads, M, V, work),
                                        self.beta1, self.beta2, eps, step)


def _moments(grads: np.ndarray, M: np.ndarray, V: np.ndarray, work: np.ndarray, beta1: float,
             beta2: float) -> None:
    """Adam's unscaled moments in place: ``M = b1 M + g``, ``V = b2 V + g^2`` (all (p,);
    ``work`` is overwritten)."""
    M *= beta1
    M += grads
    V *= beta2
    np.multiply(grads, grads, out=work)
    V += work


def _adam_chain(params: np.ndarray, grads: np.ndarray, M: np.ndarray, V: np.ndarray,
                work: np.ndarray, beta1: float, beta2: float, eps: float, step: float) -> None:
    """Adam's ten passes over one block (p,) of every vector: the moments, then
    ``params -= step M / (sqrt(V) + eps)`` (``Lanes.run`` calls it once per block)."""
    _moments(grads, M, V, work, beta1, beta2)
    np.sqrt(V, out=work)
    work += eps
    np.divide(M, work, out=work)
    work *= step
    params -= work


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019):
    ``params *= 1 - lr * weight_decay`` before the Adam step, instead of an L2 gradient term."""

    kind: Literal["adamw"] = "adamw"
    weight_decay: float = Field(default=0.01, ge=0, description="Decoupled decay per unit of lr.")

    def update(self, params: np.ndarray, grads: np.ndarray, state: State, lr: float) -> None:
        if self.weight_decay and "_decay_mask" in state:
            params -= (float(lr) * self.weight_decay) * self.decayed(params, state)  # (P,)
        elif self.weight_decay:
            params *= 1 - float(lr) * self.weight_decay  # (P,)
        self._adam_step(params, grads, state, lr)


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), as ``torch.optim.RMSprop``:

    ``v = alpha v + (1 - alpha) g^2``; centered: ``g_avg = alpha g_avg + (1 - alpha) g`` and
    ``v~ = v - g_avg^2``, else ``v~ = v``; with momentum ``b = momentum b + g / (sqrt(v~) + eps)``
    and ``params -= lr b``, else ``params -= lr g / (sqrt(v~) + eps)``."""

    kind: Literal["rmsprop"] = "rmsprop"
    alpha: float = Field(default=0.99, ge=0, lt=1, description="Smoothing of the squared gradient.")
    eps: float = Field(default=1e-8, gt=0)
    momentum: float = Field(default=0.0, ge=0, lt=1, description="0: no momentum buffer.")
    centered: bool = Field(default=False, description="Divide by an estimate of the variance.")
    weight_decay: float = Field(default=0.0, ge=0, description="L2 penalty added to the gradient.")

    def init_state(self, params: np.ndarray) -> State:
        state = {"square_avg": np.zeros_like(params), "_scratch": np.empty_like(params)}  # (P,)
        if self.centered:
            state["grad_avg"] = np.zeros_like(params)  # (P,)
        if self.momentum:
            state["momentum_buffer"] = np.zeros_like(params)  # (P,)
        return state

    def decaying(self) -> dict[str, float]:
        return {"square_avg": self.alpha, "grad_avg": self.alpha,
                "momentum_buffer": self.momentum}

    def update(self, params: np.ndarray, grads: np.ndarray, state: State, lr: float) -> None:
        grads = self._with_l2(params, grads, state)  # (P,)
        buffers = (params, grads, state["square_avg"], state["_scratch"],
                   state.get("grad_avg", grads), state.get("momentum_buffer", grads))  # (P,) each
        update = fused.chain("rmsprop", _rmsprop_chain)  # one compiled pass with numba
        state.get("_lanes", SERIAL).run(update, buffers, self.alpha, self.eps,
                                        self.momentum, self.centered, float(lr))


def _rmsprop_chain(params: np.ndarray, grads: np.ndarray, v: np.ndarray, work: np.ndarray,
                   g_avg: np.ndarray, buffer: np.ndarray, alpha: float, eps: float,
                   momentum: float, centered: bool, lr: float) -> None:
    """RMSprop over one block (p,) of every vector (``g_avg`` is only used when centered,
    ``buffer`` only with momentum)."""
    rest = 1 - alpha
    v *= alpha
    np.multiply(grads, grads, out=work)
    work *= rest
    v += work  # v = alpha v + (1 - alpha) g^2
    if centered:
        g_avg *= alpha
        np.multiply(grads, rest, out=work)
        g_avg += work  # g_avg = alpha g_avg + (1 - alpha) g
        np.multiply(g_avg, g_avg, out=work)
        np.subtract(v, work, out=work)  # v~ = v - g_avg^2, >= 0 but for rounding
        np.maximum(work, 0.0, out=work)
        np.sqrt(work, out=work)
    else:
        np.sqrt(v, out=work)
    work += eps
    np.divide(grads, work, out=work)  # g / (sqrt(v~) + eps)
    if momentum:
        buffer *= momentum
        buffer += work
        np.multiply(buffer, lr, out=work)
    else:
        work *= lr
    params -= work


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as ``torch.optim.Adagrad``: with ``t`` the step number,
    ``clr = lr / (1 + (t - 1) lr_decay);  sum += g^2;  params -= clr g / (sqrt(sum) + eps)``,
    the sum starting at ``initial_accumulator_value``."""

    kind: Literal["adagrad"] = "adagrad"
    lr_decay: float = Field(default=0.0, ge=0, description="Learning-rate decay per step.")
    eps: float = Field(default=1e-10, gt=0)
    initial_accumulator_value: float = Field(default=0.0, ge=0)
    weight_decay: float = Field(default=0.0, ge=0, description="L2 penalty added to the gradient.")

    def init_state(self, params: np.ndarray) -> State:
        return {"sum": np.full_like(params, self.initial_accumulator_value),  # (P,)
                "t": np.zeros((), dtype=np.int64),  # steps taken
                "_scratch": np.empty_like(params)}  # (P,)

    def update(self, params: np.ndarray, grads: np.ndarray, state: State, lr: float) -> None:
        grads = self._with_l2(params, grads, state)  # (P,)
        total, t, work = state["sum"], state["t"], state["_scratch"]  # (P,), (), (P,)
        t += 1
        clr = float(lr) / (1 + (int(t) - 1) * self.lr_decay)
        update = fused.chain("adagrad", _adagrad_chain)  # one compiled pass with numba
        state.get("_lanes", SERIAL).run(update, (params, grads, total, work), self.eps, clr)


def _adagrad_chain(params: np.ndarray, grads: np.ndarray, total: np.ndarray, work: np.ndarray,
                   eps: float, clr: float) -> None:
    """Adagrad over one block (p,): ``sum += g^2;  params -= clr g / (sqrt(sum) + eps)``."""
    np.multiply(grads, grads, out=work)
    total += work  # sum += g^2
    np.sqrt(total, out=work)
    work += eps
    np.divide(grads, work, out=work)
    work *= clr
    params -= work


class NAdam(Adam):
    """NAdam (Dozat 2016), Adam with Nesterov momentum, as ``torch.optim.NAdam``: with ``t`` the
    step number, ``mu_t = beta1 (1 - 0.96^(t momentum_decay) / 2)``,
    ``m = beta1 m + (1 - beta1) g``, ``v = beta2 v + (1 - beta2) g^2``,
    ``m_hat = mu_{t+1} m / (1 - prod_{i<=t+1} mu_i) + (1 - mu_t) g / (1 - prod_{i<=t} mu_i)``,
    ``params -= lr m_hat / (sqrt(v / (1 - beta2^t)) + eps)``.

    (``state`` keeps m / (1 - beta1) and v / (1 - beta2), as Adam's does: see ``update``.
    Adam's fields, with PyTorch's NAdam default lr.)"""

    kind: Literal["nadam"] = "nadam"
    lr: float = Field(default=0.002, gt=0, description="Learning rate (step size).")
    momentum_decay: float = Field(default=0.004, ge=0, description="psi in mu_t's schedule.")

    def init_state(self, params: np.ndarray) -> State:
        state = super().init_state(params)  # m, v (P,) each; t; _scratch (P,)
        state["mu_product"] = np.ones((), dtype=np.float64)  # prod_{i<=t} mu_i, in float64
        state["_denom"] = np.empty_like(params)  # (P,)
        return state

    def _mu(self, t: int) -> float:
        return self.beta1 * (1 - 0.5 * 0.96 ** (t * self.momentum_decay))

    def update(self, params: np.ndarray, grads: np.ndarray, state: State, lr: float) -> None:
        # With M = m / (1 - b1), V = v / (1 - b2) (so M = b1 M + g, V = b2 V + g^2) and
        # c2 = sqrt((1 - b2) / (1 - b2^t)):  sqrt(v_hat) + eps = c2 (sqrt(V) + eps / c2), so
        #     params -= (a M + b g) / (sqrt(V) + eps / c2),
        #     a = lr mu_{t+1} (1 - b1) / (c2 (1 - prod_{i<=t+1} mu_i)),
        #     b = lr (1 - mu_t) / (c2 (1 - prod_{i<=t} mu_i))
        # in 13 whole-vector passes instead of the 16 of the textbook form.
        grads = self._with_l2(params, grads, state)  # (P,)
        M, V, t = state["m"], state["v"], state["t"]  # (P,), (P,), ()
        denom, work = state["_denom"], state["_scratch"]  # (P,) each
        t += 1
        mu, mu_next = self._mu(int(t)), self._mu(int(t) + 1)
        state["mu_product"] *= mu
        product = float(state["mu_product"])  # prod_{i<=t} mu_i
        c2 = math.sqrt((1 - self.beta2) / (1 - self.beta2 ** int(t)))
        a = float(lr) * mu_next * (1 - self.beta1) / (c2 * (1 - product * mu_next))
        b = float(lr) * (1 - mu) / (c2 * (1 - product))
        update = fused.chain("nadam", _nadam_chain)  # one compiled pass with numba
        state.get("_lanes", SERIAL).run(update, (params, grads, M, V, work, denom),
                                        self.beta1, self.beta2, self.eps / c2, a, b)


def _nadam_chain(params: np.ndarray, grads: np.ndarray, M: np.ndarray, V: np.ndarray,
                 work: np.ndarray, denom: np.ndarray, beta1: float, beta2: float, eps: float,
                 a: float, b: float) -> None:
    """NAdam over one block (p,): the moments, then ``params -= (a M + b g) / (sqrt(V) + eps)``
    as two shares."""
    _moments(grads, M, V, work, beta1, beta2)
    np.sqrt(V, out=denom)
    denom += eps
    np.multiply(grads, b, out=work)
    params -= np.divide(work, denom, out=work)  # the gradient's share
    np.multiply(M, a, out=work)
    params -= np.divide(work, denom, out=work)  # the momentum's share

def check(obj: Any) -> str | None:
    """None when ``obj`` is an ``Optimizer`` subclass, else what is wrong (for the registry)."""
    if not (isinstance(obj, type) and issubclass(obj, Optimizer)):
        return f"expected a subclass of plugins.mlp.optim.Optimizer; got {obj!r}"
    return None
